package demo

import (
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
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
	truth := []Outcome{{Service: "svc", Metric: "attribute:delta", SD: 1, Effects: []Effect{{"vp", "treat", 0.5}}}}
	rows := truthRows(r, eng, truth)
	if len(rows) != 1 || rows[0].Truth != 0.5 || rows[0].Estimate != e.Diff || !rows[0].Covered {
		t.Errorf("rows %+v, want one covered row with truth 0.5 and estimate %v", rows, e.Diff)
	}
}
