package sim

import (
	"context"
	"math"
	"math/rand/v2"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/internal/tool/truth"
)

// DecisionResult compares the per-cell stop rule of the report service
// (COMPLETE when every cell of the viewpoint's 2^k design reaches the
// per-cell n of analysis.SampleSizeTerm for the plan's mde, α and power,
// with the plan's SD until report.MinResidualDF residual df and the
// observed pooled SD after) counting requests, as before per-unit
// analysis, and counting units, on the same repeat traffic: the mean
// aggregate of the Normal metric in the 2×2×2 design, viewpoint a, whose
// true main effect is the plan's mde (so the plan promises Power).
type DecisionResult struct {
	Design  string  `json:"design"`
	Test    string  `json:"test"`
	MDE     float64 `json:"mde"`
	PlanSD  float64 `json:"plan_sd"`
	Alpha   float64 `json:"alpha"`
	Power   float64 `json:"power"`
	Windows int     `json:"windows"`
	// Request: cells count requests and the SD is the requests'; Unit:
	// cells count units and the SD is the unit means'.
	Request DecisionStats `json:"request"`
	Unit    DecisionStats `json:"unit"`
}

// DecisionStats describe one stop rule's decisions over the windows.
type DecisionStats struct {
	// Units are the units drawn until COMPLETE.
	Units Summary `json:"units"`
	// PerCell is the mean n of the emptiest cell at COMPLETE (requests or
	// units): the per-cell n the rule asked for, rounded up to a count.
	PerCell float64 `json:"per_cell"`
	// Rejected and Coverage are the rule's own analysis of a's main
	// effect at COMPLETE (per request or per unit): the fraction of windows
	// with p < α and with an interval containing the truth.
	Rejected float64 `json:"rejected"`
	Coverage float64 `json:"coverage"`
	// UnitPower is the fraction of windows in which the unit-level
	// analysis at COMPLETE rejects: the power really reached.
	UnitPower float64 `json:"unit_power"`
}

// Decision plan: α and power are assign's defaults.
const (
	decisionTest = "a"
	decisionK    = 3
)

// CheckDecision runs DecisionWindows windows of units streaming into the
// 2×2×2 design until both stop rules are met (see DecisionResult).
func CheckDecision(ctx context.Context, opt RepeatOptions) (DecisionResult, error) {
	if err := opt.validate(); err != nil {
		return DecisionResult{}, err
	}
	m, rep := aggregateMetric(assign.AggregateMean), repeatTraffic(&opt)
	d := newRepeatDesign(decisionK, m, rep)
	tr, err := rep.Factorial(m, assign.AggregateMean, d.factors)
	if err != nil {
		return DecisionResult{}, err
	}
	res := DecisionResult{Design: d.name, Test: decisionTest, MDE: tr.Effect(decisionTest, repeatTreatment).Diff,
		PlanSD: m.SD, Alpha: assign.DefaultAlpha, Power: assign.DefaultPower, Windows: opt.DecisionWindows}
	// Every rule starts from the plan's n, scaled as the SD changes.
	start, err := analysis.SampleSizeTerm(1, len(d.mean), res.MDE, res.PlanSD, res.Alpha, res.Power)
	if err != nil {
		return res, err
	}
	seed := repeatSeed(opt.Seed, "decision")
	wins := make([][2]decision, opt.DecisionWindows)
	newWork := func() func(context.Context, int) error {
		var s unitSampler
		return func(ctx context.Context, w int) (err error) {
			wins[w], err = s.decisionWindow(ctx, repRand(seed, w), &d, &res, start, m, rep, opt.Level)
			return err
		}
	}
	if err := parallel(ctx, len(wins), opt.Workers, newWork, opt.progress("decision", len(wins))); err != nil {
		return res, err
	}
	res.Request = decisionStats(wins, 0)
	res.Unit = decisionStats(wins, 1)
	return res, nil
}

// decision is one stop rule's decision in one window.
type decision struct {
	units   int64
	minCell int64    // the emptiest cell's n
	own     estimate // the rule's own analysis of the viewpoint's main effect
	unitEst estimate // the unit-level analysis at the same moment
	truth   float64
}

func decisionStats(wins [][2]decision, r int) DecisionStats {
	var s DecisionStats
	units := make([]float64, len(wins))
	n := float64(len(wins))
	alpha := assign.DefaultAlpha
	for i := range wins {
		d := &wins[i][r]
		units[i] = float64(d.units)
		s.PerCell += float64(d.minCell) / n
		if d.own.ok && d.own.p < alpha {
			s.Rejected += 1 / n
		}
		if d.own.ok && d.own.lo <= d.truth && d.truth <= d.own.hi {
			s.Coverage += 1 / n
		}
		if d.unitEst.ok && d.unitEst.p < alpha {
			s.UnitPower += 1 / n
		}
	}
	s.Units = summarize(units)
	return s
}

// stopRule is the report service's per-cell rule over one table.
type stopRule struct {
	t    *analysis.CellTable
	need float64 // the plan's per-cell n
	sdAt float64 // the plan's SD
	done bool
}

// minCell is the n of the emptiest cell.
func (r *stopRule) minCell() int64 {
	minN := int64(math.MaxInt64)
	for _, c := range r.t.Cells {
		minN = min(minN, c.N)
	}
	return minN
}

// sd is the SD the rule sizes with: the plan's until
// report.MinResidualDF residual df, the pooled within-cell SD after.
func (r *stopRule) sd(planSD float64) float64 {
	if mse, df := pooledVariance(r.t.Cells); df >= report.MinResidualDF && mse > 0 {
		return math.Sqrt(mse)
	}
	return planSD
}

// ready reports whether every cell has reached the per-cell n of
// analysis.SampleSizeTerm at the current SD, i.e. (the power being
// increasing in n) whether the term's power with the emptiest cell's n
// in every cell reaches the plan's. It evaluates the power only once the
// emptiest cell reaches 95% of the plan's n scaled by (SD / plan SD)² (n
// is proportional to SD² up to the change of the F quantile with the
// residual df, far below 5% at these sizes).
func (r *stopRule) ready(res *DecisionResult) bool {
	minN := r.minCell()
	sd := r.sd(res.PlanSD)
	if minN < 2 || float64(minN) < 0.95*r.need*(sd/r.sdAt)*(sd/r.sdAt) {
		return false
	}
	f := analysis.MDEToF(res.MDE, sd, 1)
	n, cells := float64(minN), float64(len(r.t.Cells))
	return analysis.Power(1, cells*(n-1), f*f*cells*n, res.Alpha) >= res.Power
}

// decisionWindow streams units into a request-level and a unit-level
// table of design d until both stop rules are met, and returns each
// rule's decision (0: requests, 1: units).
func (s *unitSampler) decisionWindow(ctx context.Context, rng *rand.Rand, d *repeatDesign, res *DecisionResult, start float64,
	m *truth.Model, rep *truth.Repeat, level float64) ([2]decision, error) {
	var out [2]decision
	var rules [2]stopRule
	for r := range rules {
		rules[r] = stopRule{t: &analysis.CellTable{Factors: d.factors, Cells: make([]analysis.CellStats, len(d.mean))},
			need: start, sdAt: res.PlanSD}
	}
	key := quantityKey{MainEffect, res.Test}
	for units := int64(1); !rules[0].done || !rules[1].done; units++ {
		if units&1023 == 0 && ctx.Err() != nil {
			return out, ctx.Err()
		}
		cell := rng.IntN(len(d.mean))
		s.vals = rep.Unit(rng, m, d.mean[cell], d.reqs[cell], s.vals[:0])
		for _, v := range s.vals {
			rules[0].t.Cells[cell].Add(v)
		}
		rules[1].t.Cells[cell].Add(truth.UnitValue(assign.AggregateMean, s.vals))
		for r := range rules {
			if rules[r].done {
				continue
			}
			if !rules[r].ready(res) {
				continue
			}
			rules[r].done = true
			out[r] = decision{units: units, minCell: rules[r].minCell(), truth: res.MDE}
			var err error
			if out[r].own, err = estimateOne(rules[r].t, key, level); err != nil {
				return out, err
			}
			if out[r].unitEst, err = estimateOne(rules[1].t, key, level); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// estimateOne runs analysis.Estimate on t and reads one quantity.
func estimateOne(t *analysis.CellTable, k quantityKey, level float64) (estimate, error) {
	e, err := analysis.Estimate(t, level)
	if err != nil {
		return estimate{}, err
	}
	return k.in(e), nil
}
