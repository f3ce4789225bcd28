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
	// the per-cell n of its main effect in the 8 cells. Its Interactions
	// are ignored: the second decision check plans the a:b interaction
	// with InteractionMDE (a difference of differences).
	Plan           assign.Plan
	InteractionMDE float64
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
// after every 1% of the horizon, 500 with a real effect read up to 4
// horizons, a plan of MDE 0.2 SD units at α 0.05 and power 80% (99 units
// per cell, 792 in the subset); the planned interaction's MDE 0.4 (a
// difference of differences, the same per-cell need).
func DefaultMonitoringOptions() MonitoringOptions {
	return MonitoringOptions{Reps: 2000, DecisionReps: 500, Looks: 100, MaxHorizons: 4,
		Plan: assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 0.2, SD: 1}, InteractionMDE: 0.4, Seed: 1}
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
	case !(o.InteractionMDE > 0) || math.IsInf(o.InteractionMDE, 0):
		return fmt.Errorf("monitoring: interaction MDE %v: want a positive number", o.InteractionMDE)
	}
	o.Plan.Interactions = nil
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
	// Decision is the real-effect check with the main effect planned;
	// DecisionInteraction on the same traffic with the a:b interaction
	// (null in truth) planned too, so it must be found futile.
	Decision            MonitoringDecision `json:"decision"`
	DecisionInteraction MonitoringDecision `json:"decision_interaction"`
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
	// InteractionMDE is the planned a:b interaction's MDE; 0 when only
	// the main effect is planned. Futile is then the share decided with
	// the interaction futile.
	InteractionMDE float64 `json:"interaction_mde,omitempty"`
	Futile         float64 `json:"futile,omitempty"`
	// Decided is the share of replications DECIDED within MaxHorizons;
	// Significant the share decided with the effect significant (the
	// rest: futile, a wrong decision here).
	Decided     float64 `json:"decided"`
	Significant float64 `json:"significant"`
	// Units summarises the subset's units at the first DECIDED look
	// (replications not decided count at MaxHorizons of the main
	// effect's horizon).
	Units Summary `json:"units"`
	// Horizon is the rule's fixed horizon in units (its largest planned
	// need). ByHorizon: the share DECIDED by it; FixedPower the main
	// effect's fixed-horizon power at the main effect's horizon.
	Horizon     int64   `json:"horizon"`
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
	main, err := newRule(tab, p, []report.PlannedTerm{{Name: "a", Factors: []int{0}, MDE: p.MDE}})
	if err != nil {
		return nil, err
	}
	both, err := newRule(tab, p, []report.PlannedTerm{{Name: "a", Factors: []int{0}, MDE: p.MDE}, {Name: "a:b", Factors: []int{0, 1}, MDE: opt.InteractionMDE}})
	if err != nil {
		return nil, err
	}
	res := &MonitoringResult{Reps: opt.Reps, DecisionReps: opt.DecisionReps, Looks: opt.Looks, Plan: p, Seed: opt.Seed,
		HorizonPerCell: int64(math.Ceil(n)), Phi: main.av.Phi}
	res.Horizon = 8 * res.HorizonPerCell
	m := &monitor{opt: opt, av: main.av, horizon: res.Horizon}

	aa := make([]aaOutcome, opt.Reps)
	if err := parallel(ctx, opt.Reps, opt.Workers, func() func(context.Context, int) error {
		return func(_ context.Context, i int) error { return m.aa(i, &aa[i]) }
	}, opt.progress("a/a", opt.Reps)); err != nil {
		return nil, err
	}
	res.Main, res.Interactions, res.AnyTermFixed, res.AnyTermAnytime = summarizeAA(aa, p.Alpha)

	for _, c := range []struct {
		rule  rule
		check string
		out   *MonitoringDecision
	}{{main, "decision", &res.Decision}, {both, "decision with a:b", &res.DecisionInteraction}} {
		dec := make([]decisionOutcome, opt.DecisionReps)
		if err := parallel(ctx, opt.DecisionReps, opt.Workers, func() func(context.Context, int) error {
			return func(_ context.Context, i int) error { return m.decide(i, c.rule, &dec[i]) }
		}, opt.progress(c.check, opt.DecisionReps)); err != nil {
			return nil, err
		}
		*c.out = summarizeDecision(dec, p.MDE, opt.MaxHorizons, res.Horizon, c.rule.horizon)
		if len(c.rule.terms) > 1 {
			c.out.InteractionMDE = opt.InteractionMDE
		}
	}
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
	av      analysis.AnytimeOptions // of the A/A check: the main effect's
	horizon int64                   // of the main effect, in units
}

// rule is a stopping rule: the planned terms, the report's anytime-valid
// options for them and their horizon (the largest need, in units).
type rule struct {
	terms   []report.PlannedTerm
	av      analysis.AnytimeOptions
	horizon int64
}

func newRule(t *analysis.CellTable, p assign.Plan, terms []report.PlannedTerm) (rule, error) {
	av, err := report.AnytimeOptions(t, p, terms, assign.AggregateMean)
	if err != nil {
		return rule{}, err
	}
	var need float64
	for _, term := range terms {
		mde := term.MDE / math.Exp2(float64(len(term.Factors)-1))
		n, err := analysis.SampleSizeTerm(1, len(t.Cells), mde, p.SD, p.Alpha, p.Power)
		if err != nil {
			return rule{}, err
		}
		need = max(need, math.Ceil(n))
	}
	return rule{terms: terms, av: av, horizon: int64(need) * int64(len(t.Cells))}, nil
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
	significant bool  // a's main effect, at the decision
	futile      bool  // the planned interaction, at the decision
	fixedEnd    bool  // the fixed-horizon test of a rejects at the horizon
}

// decide reads replication i (the same traffic whatever the rule) until
// r decides, or MaxHorizons of the main effect's horizon.
func (m *monitor) decide(i int, r rule, out *decisionOutcome) error {
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
			av, err := analysis.AnytimeValid(t, r.av)
			if err != nil {
				return err
			}
			if d := report.Decide(av, r.terms); d.Decided {
				out.units = t.N()
				out.significant = d.Terms[0].Verdict == report.Significant
				out.futile = len(d.Terms) > 1 && d.Terms[1].Verdict == report.Futile
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

// summarizeDecision summarises the outcomes of a rule whose horizon
// (largest planned need) is horizon units, read up to maxHorizons of the
// main effect's horizon mainHorizon.
func summarizeDecision(dec []decisionOutcome, effect float64, maxHorizons int, mainHorizon, horizon int64) MonitoringDecision {
	d := MonitoringDecision{Effect: effect, MaxHorizons: maxHorizons, Horizon: horizon}
	units := make([]float64, len(dec))
	for i, o := range dec {
		units[i] = float64(int64(maxHorizons) * mainHorizon)
		if o.units > 0 {
			units[i] = float64(o.units)
			d.Decided++
			d.Significant += b2f(o.significant)
			d.Futile += b2f(o.futile)
			d.ByHorizon += b2f(o.units <= horizon)
		}
		d.FixedPower += b2f(o.fixedEnd)
	}
	n := float64(len(dec))
	d.Decided /= n
	d.Significant /= n
	d.Futile /= n
	d.ByHorizon /= n
	d.FixedPower /= n
	d.Units = summarize(units)
	return d
}
