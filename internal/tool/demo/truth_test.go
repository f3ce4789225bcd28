package demo

import (
	"slices"
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/internal/tool/shop"
	"github.com/abmesh/abmesh/internal/tool/truth"
	"github.com/abmesh/abmesh/subset"
)

// TestTruthRowsKeepsEffectsWithRelativeNotes: an effect whose absolute
// interval is valid but whose relative one is not (a control mean not
// significantly different from 0) still gets its truth row; only effects
// without an interval are left out.
func TestTruthRowsKeepsEffectsWithRelativeNotes(t *testing.T) {
	x := assign.Experiment{
		ID: "vp", ChangeService: "svc", MeasureService: "svc",
		Metric:   assign.Metric{Kind: assign.MetricAttribute, Attribute: "delta", HigherIsBetter: true},
		Variants: []assign.Variant{{Name: "control", Weight: 50}, {Name: "treat", Weight: 50}},
		Plan:     assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 0.5, SD: 1},
	}
	eng, err := assign.Compile(assign.Config{Experiments: []assign.Experiment{x}})
	if err != nil {
		t.Fatal(err)
	}
	// Control mean 0.01 with SE 0.1: the relative interval is unbounded.
	cell := func(n int64, mean float64) analysis.CellStats {
		return analysis.CellStats{N: n, Mean: mean, M2: float64(n - 1)}
	}
	w := subset.WindowCells{
		Viewpoint: "vp", Seq: 1, Start: time.Unix(0, 0), MeasureService: "svc", Metric: "attribute:delta",
		Members: []subset.WindowMember{{Test: "vp", Phase: 1, Variants: []string{"control", "treat"}}},
		Cells:   []subset.Cell{{Variants: []int{0}, Stats: cell(100, 0.01)}, {Variants: []int{1}, Stats: cell(100, 0.6)}},
	}
	r := report.Build(w, eng.Experiment, report.Options{Now: time.Unix(3600, 0)})
	e := r.Estimates.Effect("vp", "treat")
	if e == nil || e.Note == "" || e.DiffSE == 0 {
		t.Fatalf("test setup: want an effect with an interval and a note, got %+v", e)
	}
	truths := []truth.Model{{Service: "svc", Metric: "attribute:delta", SD: 1, Terms: []truth.Term{truth.Main("vp", "treat", 0.5)}}}
	rows := truthRows(r, eng, truths)
	if len(rows) != 1 || rows[0].Truth != 0.5 || rows[0].Estimate != e.Diff || !rows[0].Covered {
		t.Errorf("rows %+v, want one covered row with truth 0.5 and estimate %v", rows, e.Diff)
	}
}

// TestTruthRowsOfTheShop: in rec-model's report of the shop, the truth of
// each main effect is its effect averaged over the other test's variants
// (half the interaction added) and the interaction's truth is the
// interaction, as the shop's truth has them.
func TestTruthRowsOfTheShop(t *testing.T) {
	set, err := shop.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := assign.Compile(assign.Config{Experiments: set.Experiments, Layers: set.Layers})
	if err != nil {
		t.Fatal(err)
	}
	// Cells at the truth's means, 50 units each with SD about 20.
	frontend := shop.Truths()[0]
	members := []subset.WindowMember{
		{Test: "rec-model", Phase: 1, Variants: []string{"control", "ml-v2"}},
		{Test: "ui-layout", Phase: 1, Variants: []string{"control", "two-column"}},
	}
	var cells []subset.Cell
	for _, rec := range []int{0, 1} {
		for _, ui := range []int{0, 1} {
			mean := frontend.Mean(map[string]string{"rec-model": members[0].Variants[rec], "ui-layout": members[1].Variants[ui]})
			cells = append(cells, subset.Cell{Variants: []int{rec, ui}, Stats: analysis.CellStats{N: 50, Mean: mean, M2: 49 * 400}})
		}
	}
	w := subset.WindowCells{Viewpoint: "rec-model", Seq: 1, Start: time.Unix(0, 0), MeasureService: "frontend",
		Metric: "attribute:shop.order.value", Members: members, Cells: cells}
	r := report.Build(w, eng.Experiment, report.Options{Now: time.Unix(3600, 0)})
	want := map[string]float64{"rec-model": 1 + 14.0/2, "ui-layout": 3 + 14.0/2, "rec-model:ui-layout": 14}
	rows := truthRows(r, eng, shop.Truths())
	if len(rows) != len(want) {
		t.Fatalf("rows %+v, want %d", rows, len(want))
	}
	for _, row := range rows {
		if got := row.Truth; got != want[row.Term] || !row.Covered || row.Estimate != got {
			t.Errorf("%s: truth %v, estimate %v, covered %v; want truth and estimate %v", row.Term, got, row.Estimate, row.Covered, want[row.Term])
		}
	}
}

// The mesh refuses a truth it cannot produce.
func TestOutcomesByServiceRejects(t *testing.T) {
	for _, m := range []truth.Model{
		{Service: "warehouse", Metric: "latency_ms", SD: 1},
		{Service: "checkout", Metric: "error"},
	} {
		if _, err := outcomesByService([]truth.Model{m}); err == nil {
			t.Errorf("truth %s accepted", m.Key())
		}
	}
	got, err := outcomesByService(shop.Truths())
	if err != nil || len(got["frontend"]) != 1 || len(got["productcatalog"]) != 1 || len(got["cart"]) != 0 {
		t.Errorf("shop truths by service: %v, %v", got, err)
	}
}

// A service's node evaluates the tests its outcomes' terms name: on
// checkout, ui-layout's variant as well as the checkout tests'.
func TestTermTests(t *testing.T) {
	byService, err := outcomesByService(shop.Truths())
	if err != nil {
		t.Fatal(err)
	}
	got := termTests(byService["checkout"])
	want := []string{"pay-button", "ship-promo", "currency-rounding", "ui-layout"}
	if !slices.Equal(got, want) {
		t.Errorf("termTests(checkout) = %v, want %v", got, want)
	}
	if got := termTests(byService["cart"]); got != nil {
		t.Errorf("termTests(cart) = %v, want none", got)
	}
}
