package protoconv

import (
	"slices"
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/subset"
)

// TestReportToProtoUnits: the API report carries the aggregate, each
// cell's units and requests, the per-test checks on units with requests
// beside them, and the joint check; every quality counter is listed.
func TestReportToProtoUnits(t *testing.T) {
	exps := map[string]*assign.Experiment{
		"vp":  {ID: "vp", Variants: []assign.Variant{{Name: "c", Weight: 1}, {Name: "t", Weight: 1}}, Plan: assign.Plan{MDE: 1, SD: 1}},
		"mem": {ID: "mem", Variants: []assign.Variant{{Name: "c", Weight: 1}, {Name: "t", Weight: 1}}},
	}
	w := subset.WindowCells{Viewpoint: "vp", Seq: 3, Start: time.Unix(0, 0), Aggregate: assign.AggregateAny,
		Members: []subset.WindowMember{{Test: "vp", Phase: 0, Variants: []string{"c", "t"}}, {Test: "mem", Phase: 0, Variants: []string{"c", "t"}}},
		Quality: subset.Quality{Seen: 99, Counted: 90, UnitTooLong: 4, CellChanged: 5}}
	units := [][]int64{{100, 110}, {120, 130}}
	for i := range 2 {
		for j := range 2 {
			s := analysis.CellStats{N: units[i][j], Mean: 0.5, M2: 0.25 * float64(units[i][j]-1)}
			w.Cells = append(w.Cells, subset.Cell{Variants: []int{i, j}, Stats: s, Requests: 3*units[i][j] + int64(i)})
		}
	}
	r := report.Build(w, func(id string) (*assign.Experiment, bool) { x, ok := exps[id]; return x, ok }, report.Options{Now: time.Unix(3600, 0)})
	p := ReportToProto(r)
	if p.GetAggregate() != pb.MetricAggregate_METRIC_AGGREGATE_ANY {
		t.Errorf("aggregate %v, want ANY", p.GetAggregate())
	}
	for _, c := range p.GetCells() {
		i, j := slices.Index([]string{"c", "t"}, c.GetVariants()[0]), slices.Index([]string{"c", "t"}, c.GetVariants()[1])
		if c.GetN() != units[i][j] || c.GetRequests() != 3*units[i][j]+int64(i) {
			t.Errorf("cell %v: n %d requests %d, want %d, %d", c.GetVariants(), c.GetN(), c.GetRequests(), units[i][j], 3*units[i][j]+int64(i))
		}
	}
	vp := p.GetSampleRatio()[0]
	if !slices.Equal(vp.GetObserved(), []int64{210, 250}) || !slices.Equal(vp.GetRequests(), []int64{630, 752}) {
		t.Errorf("vp check observed %v requests %v, want units [210 250], requests [630 752]", vp.GetObserved(), vp.GetRequests())
	}
	j := p.GetJointSampleRatio()
	if j == nil || len(j.GetCells()) != 4 || j.GetDf() != 3 || j.GetNote() != "" {
		t.Fatalf("joint check %v, want 4 cells, 3 df", j)
	}
	for k, c := range j.GetCells() {
		if c.GetExpected() != 460.0/4 || c.GetObserved() != r.JointSRM.Cells[k].Units || c.GetRequests() != r.JointSRM.Cells[k].Requests {
			t.Errorf("joint cell %v: %v, want expected 115 and the report's counts %+v", c.GetVariants(), c, r.JointSRM.Cells[k])
		}
	}
	if j.GetChiSquare() != r.JointSRM.Result.ChiSquare || j.GetP() != r.JointSRM.Result.P {
		t.Errorf("joint χ² %v p %v, want the report's %+v", j.GetChiSquare(), j.GetP(), r.JointSRM.Result)
	}
	got := map[string]int64{}
	for _, c := range p.GetDataQuality() {
		got[c.GetName()] = c.GetValue()
	}
	for name, v := range w.Quality.Counts() {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("quality %s = %d (listed %v), want %d", name, g, ok, v)
		}
	}
}

// TestReportToProtoAnytime: the API report carries the anytime-valid
// results, the decision, DECIDED, the needs and the looks as the report
// has them.
func TestReportToProtoAnytime(t *testing.T) {
	exps := map[string]*assign.Experiment{
		"vp": {ID: "vp", Variants: []assign.Variant{{Name: "c", Weight: 1}, {Name: "t", Weight: 1}},
			Plan: assign.Plan{MDE: 1, SD: 3, Alpha: 0.05, Power: 0.8, Interactions: []assign.PlannedInteraction{{With: "mem", MDE: 10}}}},
		"mem": {ID: "mem", Variants: []assign.Variant{{Name: "c", Weight: 1}, {Name: "t", Weight: 1}}},
	}
	w := subset.WindowCells{Viewpoint: "vp", Seq: 3, Start: time.Unix(0, 0),
		Members: []subset.WindowMember{{Test: "vp", Phase: 0, Variants: []string{"c", "t"}}, {Test: "mem", Phase: 0, Variants: []string{"c", "t"}}}}
	for i := range 2 {
		for j := range 2 {
			// A large vp effect and an interaction of exactly 0.
			w.Cells = append(w.Cells, subset.Cell{Variants: []int{i, j}, Stats: analysis.CellStats{N: 20, Mean: 5 * float64(i), M2: 9 * 19}})
		}
	}
	r := report.Build(w, func(id string) (*assign.Experiment, bool) { x, ok := exps[id]; return x, ok }, report.Options{Now: time.Unix(3600, 0)})
	h := report.NewHistory()
	h.Record(r)
	p := ReportToProto(r)
	a := p.GetAnytime()
	if a == nil || a.GetPhi() != r.Anytime.Phi || len(a.GetTerms()) != 3 || len(a.GetEffects()) != 2 || len(a.GetInteractions()) != 1 {
		t.Fatalf("anytime %v, want the report's %+v", a, r.Anytime)
	}
	if e := a.GetEffects()[0]; e.GetTestId() != "vp" || e.GetVariant() != "t" || e.GetCsLow() != r.Anytime.Effects[0].CS.Lo || !e.GetBounded() {
		t.Errorf("effect %v, want %+v", e, r.Anytime.Effects[0])
	}
	if a.GetTerms()[0].GetP() != r.Anytime.Terms[0].P || a.GetInteractions()[0].GetTerm() != "vp:mem" {
		t.Errorf("terms %v interactions %v", a.GetTerms(), a.GetInteractions())
	}
	if p.GetStatus() != pb.ReportStatus_REPORT_STATUS_DECIDED || p.GetFixedHorizonReached() || !p.GetDecision().GetDecided() ||
		len(p.GetDecision().GetTerms()) != 2 || p.GetDecision().GetTerms()[1].GetVerdict() != report.Futile ||
		p.GetDecision().GetFirstDecidedUnits() != 80 || !p.GetDecision().GetFirstDecidedTime().AsTime().Equal(time.Unix(3600, 0)) {
		t.Errorf("status %v reached %v decision %v; want DECIDED with vp significant and vp:mem futile (report %+v)", p.GetStatus(),
			p.GetFixedHorizonReached(), p.GetDecision(), r.Decision)
	}
	if n := p.GetProgress().GetNeeds(); len(n) != 2 || n[1].GetTerm() != "vp:mem" || n[1].GetMde() != 10 || n[1].GetNeededPerCell() != r.Progress.Needs[1].NeededPerCell {
		t.Errorf("needs %v", n)
	}
	if l := p.GetLooks(); len(l) != 1 || l[0].GetUnits() != 80 || len(l[0].GetIntervals()) != 3 || l[0].GetIntervals()[2].GetName() != "vp:mem" {
		t.Errorf("looks %v", l)
	}
}
