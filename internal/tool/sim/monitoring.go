package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
)

// MonitoringOptions configure EvaluateMonitoring, the monitoring scenario:
// a 2×2×2 subset read after every 1/Looks of its planned horizon.
type MonitoringOptions struct {
	// Reps are the A/A replications; DecisionReps the replications with a
	// real effect of the planned size.
	Reps, DecisionReps int
	// Looks are the readings over the planned horizon (100: after every
	// 1%); the decision replications keep reading at the same spacing up
	// to MaxHorizons times the horizon.
	Looks       int
	MaxHorizons int
	// Plan is the viewpoint's plan (MDE, SD, alpha, power); the horizon is
	// the per-cell n of its main effect in the 8 cells.
	Plan assign.Plan
	// Seed makes the run reproducible: replication i draws from a PCG
	// stream seeded from (Seed, the check, i).
	Seed uint64
	// Workers run replications in parallel (default GOMAXPROCS); the
	// results do not depend on it.
	Workers int
	// Progress, when set, is called after each replication with the
	// check ("a/a" or "decision") and the replications done, from one
	// goroutine at a time.
	Progress func(check string, done, total int)
}

// DefaultMonitoringOptions are issue 11's: 2,000 A/A replications read
// after every 1% of the horizon, 500 with a real effect read up to 3
// horizons, a plan of MDE 0.2 SD units at α 0.05 and power 80% (100 units
// per cell, 800 in the subset).
func DefaultMonitoringOptions() MonitoringOptions {
	return MonitoringOptions{Reps: 2000, DecisionReps: 500, Looks: 100, MaxHorizons: 3,
		Plan: assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 0.2, SD: 1}, Seed: 1}
}

func (o *MonitoringOptions) validate() error {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	o.Plan.Defaults()
	switch {
	case o.Reps < 1 || o.DecisionReps < 1:
		return fmt.Errorf("monitoring: %d A/A and %d decision replications: want at least 1 each", o.Reps, o.DecisionReps)
	case o.Looks < 2 || o.MaxHorizons < 1:
		return fmt.Errorf("monitoring: %d looks, %d horizons: want at least 2 and 1", o.Looks, o.MaxHorizons)
	}
	return o.Plan.Validate()
}

// MonitoringResult is the monitoring scenario's outcome.
type MonitoringResult struct {
	Reps         int         `json:"reps"`
	DecisionReps int         `json:"decision_reps"`
	Looks        int         `json:"looks"`
	Plan         assign.Plan `json:"plan"`
	// HorizonPerCell is the planned per-cell n; Horizon the subset's units
	// at it (8 cells).
	HorizonPerCell int64   `json:"horizon_per_cell"`
	Horizon        int64   `json:"horizon"`
	Phi            float64 `json:"phi"`
	Seed           uint64  `json:"seed"`
	// Command, when set, reproduces the result alone; Runtime is how long
	// EvaluateMonitoring took.
	Command string        `json:"command,omitempty"`
	Runtime time.Duration `json:"runtime_ns"`
	// Main and Interactions are the A/A rates over the 3 main-effect and
	// the 4 interaction terms (and their contrasts' sequences).
	Main         TermRates `json:"main"`
	Interactions TermRates `json:"interactions"`
	// AnyTermFixed and AnyTermAnytime: some of the 7 terms rejects at
	// some look.
	AnyTermFixed   float64 `json:"any_term_fixed"`
	AnyTermAnytime float64 `json:"any_term_anytime"`
	// Decision is the real-effect check.
	Decision MonitoringDecision `json:"decision"`
}

// TermRates are rejection rates per term (averaged over a class of terms)
// in A/A replications.
type TermRates struct {
	Terms int `json:"terms"`
	// FixedAnyLook: the fixed-horizon p < α at some look; FixedHorizon:
	// at the horizon's look only (the one read it is valid for).
	FixedAnyLook float64 `json:"fixed_any_look"`
	FixedHorizon float64 `json:"fixed_horizon"`
	// AnytimeAnyLook: the anytime-valid p ≤ α at some look.
	AnytimeAnyLook float64 `json:"anytime_any_look"`
	// Coverage: the contrast's confidence sequence covers the truth (0)
	// at every look.
	Coverage float64 `json:"coverage"`
	// MCError is the Monte-Carlo standard error of a rate of α over
	// Reps·Terms term-replications.
	MCError float64 `json:"mc_error"`
}

// MonitoringDecision is the real-effect check: the viewpoint's main
// effect is the plan's MDE, everything else 0.
type MonitoringDecision struct {
	Effect float64 `json:"effect"`
	// Decided is the share of replications DECIDED within MaxHorizons;
	// Significant the share decided with the effect significant (the
	// rest: futile, a wrong decision here).
	Decided     float64 `json:"decided"`
	Significant float64 `json:"significant"`
	// Units summarises the subset's units at the first DECIDED look
	// (replications not decided count at MaxHorizons·Horizon).
	Units Summary `json:"units"`
	// ByHorizon: the share DECIDED by the fixed horizon; FixedPower the
	// fixed-horizon test's power at the horizon (p < α there).
	ByHorizon   float64 `json:"by_horizon"`
	FixedPower  float64 `json:"fixed_power"`
	MaxHorizons int     `json:"max_horizons"`
}

// monitoringFactors are the subset's three two-level tests; a is the
// viewpoint.
var monitoringFactors = []analysis.Factor{
	{Name: "a", Levels: []string{"control", "treatment"}},
	{Name: "b", Levels: []string{"control", "treatment"}},
	{Name: "c", Levels: []string{"control", "treatment"}},
}

// EvaluateMonitoring runs the monitoring scenario. Units, each with a
// standard-normal outcome (times the plan's SD) around its cell's mean,
// are randomized uniformly to the 8 cells; after every Horizon/Looks units
// the report's analyses are read: the Type III ANOVA (fixed horizon) and
// analysis.AnytimeValid with the report's own options
// (report.AnytimeOptions) and stopping rule (report.Decide on the
// viewpoint's main effect).
func EvaluateMonitoring(ctx context.Context, opt MonitoringOptions) (*MonitoringResult, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	p := opt.Plan
	n, err := analysis.SampleSizeTerm(1, 8, p.MDE, p.SD, p.Alpha, p.Power)
	if err != nil {
		return nil, err
	}
	tab, err := analysis.NewCellTable(monitoringFactors)
	if err != nil {
		return nil, err
	}
	terms := []report.PlannedTerm{{Name: "a", Factors: []int{0}, MDE: p.MDE}}
	av, err := report.AnytimeOptions(tab, p, terms, assign.AggregateMean)
	if err != nil {
		return nil, err
	}
	res := &MonitoringResult{Reps: opt.Reps, DecisionReps: opt.DecisionReps, Looks: opt.Looks, Plan: p, Seed: opt.Seed,
		HorizonPerCell: int64(math.Ceil(n)), Phi: av.Phi}
	res.Horizon = 8 * res.HorizonPerCell
	m := &monitor{opt: opt, av: av, terms: terms, horizon: res.Horizon}

	aa := make([]aaOutcome, opt.Reps)
	if err := parallel(ctx, opt.Reps, opt.Workers, func() func(context.Context, int) error {
		return func(_ context.Context, i int) error { return m.aa(i, &aa[i]) }
	}, opt.progress("a/a", opt.Reps)); err != nil {
		return nil, err
	}
	res.Main, res.Interactions, res.AnyTermFixed, res.AnyTermAnytime = summarizeAA(aa, p.Alpha)

	dec := make([]decisionOutcome, opt.DecisionReps)
	if err := parallel(ctx, opt.DecisionReps, opt.Workers, func() func(context.Context, int) error {
		return func(_ context.Context, i int) error { return m.decide(i, &dec[i]) }
	}, opt.progress("decision", opt.DecisionReps)); err != nil {
		return nil, err
	}
	res.Decision = summarizeDecision(dec, p.MDE, opt.MaxHorizons, res.Horizon)
	res.Runtime = time.Since(start)
	return res, nil
}

func (o *MonitoringOptions) progress(check string, total int) func(int) {
	if o.Progress == nil {
		return nil
	}
	return func(done int) { o.Progress(check, done, total) }
}

// monitor is what the replications share (read only).
type monitor struct {
	opt     MonitoringOptions
	av      analysis.AnytimeOptions
	terms   []report.PlannedTerm
	horizon int64
}

// aaOutcome is one A/A replication: per term (Anova's order: a, b, c,
// a:b, a:c, b:c, a:b:c) whether each rule rejected, and per contrast
// (the 3 effects, then the 4 interactions) whether its sequence missed 0.
type aaOutcome struct {
	fixedAny, fixedEnd, avAny, miss [7]bool
}

// rng returns replication i's stream of check k.
func (m *monitor) rng(k, i int) *rand.Rand {
	return rand.New(rand.NewPCG(m.opt.Seed, uint64(k)<<40|uint64(i)))
}

// look adds the units up to look k (of Looks per horizon) to t.
func (m *monitor) feed(rng *rand.Rand, t *analysis.CellTable, k int, mean func(cell int) float64) {
	from, to := m.horizon*int64(k-1)/int64(m.opt.Looks), m.horizon*int64(k)/int64(m.opt.Looks)
	for range to - from {
		c := rng.IntN(len(t.Cells))
		t.Cells[c].Add(mean(c) + m.opt.Plan.SD*rng.NormFloat64())
	}
}

func (m *monitor) aa(i int, out *aaOutcome) error {
	rng := m.rng(1, i)
	t, err := analysis.NewCellTable(monitoringFactors)
	if err != nil {
		return err
	}
	alpha := m.opt.Plan.Alpha
	for k := 1; k <= m.opt.Looks; k++ {
		m.feed(rng, t, k, func(int) float64 { return 0 })
		an, err := analysis.Anova(t, analysis.TypeIII)
		if err != nil {
			return err
		}
		for j, row := range an.Terms {
			rej := row.Tested && row.P < alpha
			out.fixedAny[j] = out.fixedAny[j] || rej
			if k == m.opt.Looks {
				out.fixedEnd[j] = rej
			}
		}
		av, err := analysis.AnytimeValid(t, m.av)
		if err != nil {
			return err
		}
		for j, row := range av.Terms {
			out.avAny[j] = out.avAny[j] || row.P <= alpha
		}
		for j, e := range append(av.Effects, av.Interactions...) {
			out.miss[j] = out.miss[j] || (e.Bounded && (e.CS.Lo > 0 || e.CS.Hi < 0))
		}
	}
	return nil
}

// decisionOutcome is one real-effect replication.
type decisionOutcome struct {
	units       int64 // at the first DECIDED look; 0 when never
	significant bool
	fixedEnd    bool // the fixed-horizon test of a rejects at the horizon
}

func (m *monitor) decide(i int, out *decisionOutcome) error {
	rng := m.rng(2, i)
	t, err := analysis.NewCellTable(monitoringFactors)
	if err != nil {
		return err
	}
	levels := make([]int, 3)
	mean := func(c int) float64 {
		t.Levels(c, levels)
		return m.opt.Plan.MDE * float64(levels[0])
	}
	for k := 1; k <= m.opt.Looks*m.opt.MaxHorizons; k++ {
		m.feed(rng, t, k, mean)
		if k == m.opt.Looks {
			an, err := analysis.Anova(t, analysis.TypeIII)
			if err != nil {
				return err
			}
			out.fixedEnd = an.Terms[0].Tested && an.Terms[0].P < m.opt.Plan.Alpha
		}
		if out.units == 0 {
			av, err := analysis.AnytimeValid(t, m.av)
			if err != nil {
				return err
			}
			if d := report.Decide(av, m.terms); d.Decided {
				out.units = t.N()
				out.significant = d.Terms[0].Verdict == report.Significant
			}
		}
		if out.units > 0 && k >= m.opt.Looks {
			break
		}
	}
	return nil
}

// summarizeAA averages the A/A outcomes over the main-effect terms (0–2)
// and the interaction terms (3–6).
func summarizeAA(aa []aaOutcome, alpha float64) (main, inter TermRates, anyFixed, anyAV float64) {
	rates := func(lo, hi int) TermRates {
		r := TermRates{Terms: hi - lo}
		for _, o := range aa {
			for j := lo; j < hi; j++ {
				r.FixedAnyLook += b2f(o.fixedAny[j])
				r.FixedHorizon += b2f(o.fixedEnd[j])
				r.AnytimeAnyLook += b2f(o.avAny[j])
				r.Coverage += 1 - b2f(o.miss[j])
			}
		}
		n := float64(len(aa) * (hi - lo))
		r.FixedAnyLook /= n
		r.FixedHorizon /= n
		r.AnytimeAnyLook /= n
		r.Coverage /= n
		r.MCError = math.Sqrt(alpha * (1 - alpha) / n)
		return r
	}
	for _, o := range aa {
		f, a := false, false
		for j := range 7 {
			f, a = f || o.fixedAny[j], a || o.avAny[j]
		}
		anyFixed += b2f(f)
		anyAV += b2f(a)
	}
	return rates(0, 3), rates(3, 7), anyFixed / float64(len(aa)), anyAV / float64(len(aa))
}

func summarizeDecision(dec []decisionOutcome, effect float64, maxHorizons int, horizon int64) MonitoringDecision {
	d := MonitoringDecision{Effect: effect, MaxHorizons: maxHorizons}
	units := make([]float64, len(dec))
	for i, o := range dec {
		units[i] = float64(int64(maxHorizons) * horizon)
		if o.units > 0 {
			units[i] = float64(o.units)
			d.Decided++
			d.Significant += b2f(o.significant)
			d.ByHorizon += b2f(o.units <= horizon)
		}
		d.FixedPower += b2f(o.fixedEnd)
	}
	n := float64(len(dec))
	d.Decided /= n
	d.Significant /= n
	d.ByHorizon /= n
	d.FixedPower /= n
	d.Units = summarize(units)
	return d
}
