package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/subset"
)

// TestWriteReportUnits: the text report says the aggregate, counts cells,
// progress and sample ratios in units, shows requests beside them, prints
// the joint check over the cells and every non-zero quality counter.
func TestWriteReportUnits(t *testing.T) {
	exps := map[string]*assign.Experiment{
		"vp":  {ID: "vp", Variants: []assign.Variant{{Name: "c", Weight: 1}, {Name: "t", Weight: 1}}, Plan: assign.Plan{MDE: 0.1, SD: 1}},
		"mem": {ID: "mem", Variants: []assign.Variant{{Name: "c", Weight: 1}, {Name: "t", Weight: 1}}},
	}
	w := subset.WindowCells{Viewpoint: "vp", Seq: 2, Start: time.Unix(0, 0), Metric: "attribute:order.value", Aggregate: assign.AggregateSum,
		Members: []subset.WindowMember{{Test: "vp", Variants: []string{"c", "t"}}, {Test: "mem", Variants: []string{"c", "t"}}},
		Quality: subset.Quality{Seen: 1300, Counted: 1200, CellChanged: 3, UnitTooLong: 2}}
	// Units 1:1 on vp, requests 1:3.
	for i, units := range []int64{100, 100, 100, 100} {
		w.Cells = append(w.Cells, subset.Cell{Variants: []int{i / 2, i % 2}, Stats: analysis.CellStats{N: units, Mean: 5, M2: 99},
			Requests: int64(150 + 300*(i/2))})
	}
	r := report.Build(w, func(id string) (*assign.Experiment, bool) { x, ok := exps[id]; return x, ok }, report.Options{Now: time.Unix(3600, 0)})
	var b bytes.Buffer
	if err := writeReport(&b, protoconv.ReportToProto(r)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"metric attribute:order.value (per unit: sum)",
		"cells have ≥ ", "(smallest cell 100 units)",
		"UNITS", "REQUESTS",
		"vp    [200 200]", "[300 900]",
		"SAMPLE RATIO OF THE CELLS", "c × t", "df = 3",
		"cell_changed=3", "unit_too_long=2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "MISMATCH") || strings.Contains(out, "WARNING") {
		t.Errorf("units split 1:1 with requests 1:3 is flagged:\n%s", out)
	}
}

// TestWriteReportLayer: `abmesh report` and `abmesh cells` name a layer
// factor as the layer, list its tests with "(layer L)", show its
// test/variant levels, and estimate each test's variant against that
// test's control.
func TestWriteReportLayer(t *testing.T) {
	w := subset.WindowCells{Viewpoint: "fx", Seq: 1, Start: time.Unix(0, 0), Metric: "latency_ms", Members: []subset.WindowMember{
		{Test: "fx", Variants: []string{"control", "rounded"}},
		{Test: "checkout-flow", Layer: "checkout-flow", Variants: []string{"pay/control", "pay/one-click", "ship/control", "ship/free", "outside"},
			Tests: []subset.WindowMember{
				{Test: "pay", Variants: []string{"control", "one-click"}, Layer: "checkout-flow"},
				{Test: "ship", Variants: []string{"control", "free"}, Layer: "checkout-flow"},
			}},
	}}
	for i := range 2 {
		for l := range 5 {
			w.Cells = append(w.Cells, subset.Cell{Variants: []int{i, l}, Stats: analysis.CellStats{N: 50, Mean: float64(10 + l), M2: 49}, Requests: 50})
		}
	}
	r := report.Build(w, func(string) (*assign.Experiment, bool) { return nil, false }, report.Options{Now: time.Unix(3600, 0)})
	var b bytes.Buffer
	if err := writeReport(&b, protoconv.ReportToProto(r)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"pay (layer checkout-flow)", "ship (layer checkout-flow)", "CHECKOUT-FLOW", "rounded  ship/free",
		"checkout-flow  pay/one-click", "checkout-flow  ship/free"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "checkout-flow  ship/control") || strings.Contains(out, "checkout-flow  outside") {
		t.Errorf("a control or outside estimated as a variant:\n%s", out)
	}
}

// TestWriteReportRatio: a ratio window's report says its tests are Wald
// chi-square and its intervals z on delta-method variances, and shows
// χ² instead of sums of squares.
func TestWriteReportRatio(t *testing.T) {
	exps := map[string]*assign.Experiment{
		"vp": {ID: "vp", Variants: []assign.Variant{{Name: "c", Weight: 1}, {Name: "t", Weight: 1}}, Plan: assign.Plan{MDE: 0.1, SD: 1}},
	}
	w := subset.WindowCells{Viewpoint: "vp", Seq: 1, Start: time.Unix(0, 0), Metric: "attribute:order.value", Aggregate: assign.AggregateRatio,
		Members: []subset.WindowMember{{Test: "vp", Variants: []string{"c", "t"}}}}
	for v := range 2 {
		var rs analysis.RatioStats
		for u := range 50 {
			n := float64(1 + u%4)
			rs.Add(n*(3+float64(v))+float64(u%5)-2, n)
		}
		w.Cells = append(w.Cells, subset.Cell{Variants: []int{v}, Stats: analysis.CellStats{N: rs.K}, Requests: int64(rs.Requests()), Ratio: &rs})
	}
	r := report.Build(w, func(id string) (*assign.Experiment, bool) { x, ok := exps[id]; return x, ok }, report.Options{Now: time.Unix(3600, 0)})
	p := protoconv.ReportToProto(r)
	if p.GetAnova().GetTest() != analysis.TestWald || p.GetEstimateTest() != analysis.TestZ || p.GetAnova().GetTerms()[0].GetChiSquare() <= 0 {
		t.Fatalf("ratio report: anova test %q, estimate test %q, terms %v", p.GetAnova().GetTest(), p.GetEstimateTest(), p.GetAnova().GetTerms())
	}
	var b bytes.Buffer
	if err := writeReport(&b, p); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"(per unit: ratio)", "Wald chi-square (delta method) tests", "TERM  DF  χ²", "95% CI, z (delta method)", "note: ratio metric"} {
		if !strings.Contains(out, want) {
			t.Errorf("ratio report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "PARTIAL η²") {
		t.Errorf("ratio report shows sums of squares:\n%s", out)
	}
}

// TestWriteReportAnytime: the text report marks the fixed-horizon tables
// as valid only at the planned sample size, prints the status line, the
// needs of each planned term, the stopping rule's verdicts and the
// anytime-valid confidence sequences.
func TestWriteReportAnytime(t *testing.T) {
	exps := map[string]*assign.Experiment{
		"vp": {ID: "vp", Variants: []assign.Variant{{Name: "c", Weight: 1}, {Name: "t", Weight: 1}},
			Plan: assign.Plan{MDE: 1, SD: 3, Interactions: []assign.PlannedInteraction{{With: "mem", MDE: 10}}}},
		"mem": {ID: "mem", Variants: []assign.Variant{{Name: "c", Weight: 1}, {Name: "t", Weight: 1}}},
	}
	w := subset.WindowCells{Viewpoint: "vp", Seq: 2, Start: time.Unix(0, 0), Metric: "latency_ms",
		Members: []subset.WindowMember{{Test: "vp", Variants: []string{"c", "t"}}, {Test: "mem", Variants: []string{"c", "t"}}}}
	for i := range 4 {
		w.Cells = append(w.Cells, subset.Cell{Variants: []int{i / 2, i % 2}, Stats: analysis.CellStats{N: 20, Mean: float64(5 * (i / 2)), M2: 9 * 19}, Requests: 20})
	}
	for _, plan := range []assign.Plan{exps["vp"].Plan, {MDE: 1}} {
		vp := *exps["vp"]
		vp.Plan = plan
		r := report.Build(w, func(id string) (*assign.Experiment, bool) {
			if id == "vp" {
				return &vp, true
			}
			x, ok := exps[id]
			return x, ok
		}, report.Options{Now: time.Unix(3600, 0)})
		var b bytes.Buffer
		if err := writeReport(&b, protoconv.ReportToProto(r)); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		wants := []string{"EFFECTS (fixed horizon, valid only at the planned sample size of ", "ANOVA (fixed horizon, valid only at"}
		if plan.SD > 0 {
			wants = append(wants, "REPORT vp  [DECIDED]", "status: DECIDED (anytime-valid", "units per cell needed by term: vp (MDE 1) ", "vp:mem (MDE 10)",
				"ANYTIME-VALID (valid whenever read;", "PLANNED TERM", "significant", "futile", "95% CONFIDENCE SEQUENCE", "vp=t ", "term vp:mem (1 df)")
		} else {
			wants = append(wants, "[COLLECTING]", "no anytime-valid results", "plan.sd")
		}
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Errorf("plan %+v: report lacks %q:\n%s", plan, want, out)
			}
		}
		if plan.SD == 0 && strings.Contains(out, "ANYTIME-VALID") {
			t.Errorf("anytime section without anytime-valid results:\n%s", out)
		}
	}
}
