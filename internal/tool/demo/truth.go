package demo

import (
	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/internal/tool/truth"
)

// modelFor returns the model of metric measured on service, or nil.
func modelFor(truths []truth.Model, service, metric string) *truth.Model {
	for i := range truths {
		if truths[i].Service == service && truths[i].Metric == metric {
			return &truths[i]
		}
	}
	return nil
}

// truthRows lines up a report's estimates with the truth of the
// viewpoint's metric: each true value is the estimate's contrast applied
// to the true cell means of the report's factorial
// (truth.Model.Factorial), so a main effect's truth is its marginal effect
// averaged over the subset's other tests. Estimates without an interval
// get no row, and reports of aggregates other than mean and ratio none.
func truthRows(r *report.Report, eng *assign.Engine, truths []truth.Model) []Row {
	vp, ok := eng.Experiment(r.Test)
	if !ok || r.Estimates == nil {
		return nil
	}
	m := modelFor(truths, vp.MeasureService, r.Metric)
	if m == nil {
		return nil
	}
	// A unit's mean (and the ratio) estimate the request-level mean
	// whatever the number of requests; the other aggregates' truths
	// depend on how often the viewpoint's path is taken.
	if agg := r.Window.Aggregate; agg != assign.AggregateMean && agg != assign.AggregateRatio {
		return nil
	}
	factors := make([]analysis.Factor, len(r.Window.Members))
	for i, mb := range r.Window.Members {
		factors[i] = analysis.Factor{Name: mb.Test, Levels: mb.Variants}
	}
	exact, err := m.Factorial(factors)
	if err != nil {
		return nil
	}
	var rows []Row
	for _, e := range r.Estimates.Effects {
		// A note about the relative interval leaves the absolute one valid;
		// only an effect without an interval has no row.
		if e.Note != "" && e.DiffSE == 0 {
			continue
		}
		t := 0.0
		if x := exact.Effect(e.Factor, e.Variant); x != nil {
			t = x.Diff
		}
		rows = append(rows, Row{Report: r.Test, Term: e.Factor, Variant: e.Variant, Truth: t, Estimate: e.Diff,
			Lo: e.DiffCI.Lo, Hi: e.DiffCI.Hi, P: e.P, Covered: e.DiffCI.Lo <= t && t <= e.DiffCI.Hi, Significant: e.P < 0.05})
	}
	for _, c := range r.Estimates.Interactions {
		if c.Note != "" {
			continue
		}
		t := 0.0
		if x := exact.Interaction(c.Term); x != nil {
			t = x.Estimate
		}
		rows = append(rows, Row{Report: r.Test, Term: c.Term, Truth: t, Estimate: c.Estimate,
			Lo: c.CI.Lo, Hi: c.CI.Hi, P: c.P, Covered: c.CI.Lo <= t && t <= c.CI.Hi, Significant: c.P < 0.05})
	}
	return rows
}
