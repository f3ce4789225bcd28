package sim

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Strategy is one way to run a scenario's tests and analyse them.
type Strategy int

const (
	// OneAtATime runs each test alone, the others at their control, one
	// after the other; each is a two-sample comparison. Units needed: the
	// sum over tests.
	OneAtATime Strategy = iota
	// Orthogonal runs all tests at once on orthogonally hashed traffic and
	// analyses each alone with a two-sample comparison. Units needed: the
	// largest test's.
	Orthogonal
	// FullFactorial runs all tests at once and analyses one factorial
	// over all of them (a layer is one factor whose levels are its tests'
	// arms), with abmesh's per-cell stop rule. Only units that every test
	// randomizes count.
	FullFactorial
	// Subsets is abmesh: every test's subset (subset.Compute on the graph)
	// is a 2^k factorial on the same orthogonally hashed traffic, stopped
	// by the per-cell rule of its viewpoint's plan. Units needed: the
	// largest subset's.
	Subsets
)

// Strategies lists the strategies in report order.
var Strategies = []Strategy{OneAtATime, Orthogonal, FullFactorial, Subsets}

// String returns one-at-a-time, orthogonal, full-factorial or abmesh.
func (s Strategy) String() string {
	switch s {
	case OneAtATime:
		return "one-at-a-time"
	case Orthogonal:
		return "orthogonal"
	case FullFactorial:
		return "full-factorial"
	case Subsets:
		return "abmesh"
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler (String).
func (s Strategy) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, the inverse of
// MarshalText.
func (s *Strategy) UnmarshalText(b []byte) error {
	for _, x := range Strategies {
		if x.String() == string(b) {
			*s = x
			return nil
		}
	}
	return fmt.Errorf("unknown strategy %q", b)
}

// Label returns the strategy's name in the report, e.g. "(d) abmesh subsets".
func (s Strategy) Label() string {
	switch s {
	case OneAtATime:
		return "(a) one test at a time"
	case Orthogonal:
		return "(b) orthogonal, two-sample each"
	case FullFactorial:
		return "(c) one full factorial"
	case Subsets:
		return "(d) abmesh subset factorials"
	}
	return s.String()
}

// QuantityKind says what a Quantity estimates.
type QuantityKind int

const (
	// MainEffect is a test's main effect on its metric: with sum-to-zero
	// coding, the Type III main effect, i.e. the treatment-minus-control
	// difference of the unweighted marginal means, the simple effects
	// averaged with equal weight over the levels of the other factors.
	MainEffect QuantityKind = iota
	// SimpleEffect is a test's effect with one interacting test held at
	// one variant (averaged with equal weight over the other factors):
	// "the effect of T if U ships" or "if U does not ship".
	SimpleEffect
	// Interaction is an interaction contrast (analysis.Contrast): the
	// difference of differences (of differences …) of unweighted means.
	Interaction
)

// String returns main, simple or interaction.
func (k QuantityKind) String() string {
	switch k {
	case MainEffect:
		return "main"
	case SimpleEffect:
		return "simple"
	case Interaction:
		return "interaction"
	}
	return fmt.Sprintf("QuantityKind(%d)", int(k))
}

// MarshalText implements encoding.TextMarshaler (String).
func (k QuantityKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, the inverse of
// MarshalText.
func (k *QuantityKind) UnmarshalText(b []byte) error {
	for _, x := range []QuantityKind{MainEffect, SimpleEffect, Interaction} {
		if x.String() == string(b) {
			*k = x
			return nil
		}
	}
	return fmt.Errorf("unknown quantity kind %q", b)
}

// Quantity is one estimand with its true value.
type Quantity struct {
	Kind QuantityKind `json:"kind"`
	// Test is the test whose effect it is; for an interaction, the
	// viewpoint whose metric and subset it is read in.
	Test string `json:"test"`
	// Given and GivenVariant fix the interacting test of a simple effect.
	Given        string `json:"given,omitempty"`
	GivenVariant string `json:"given_variant,omitempty"`
	// Term lists an interaction's tests, in the viewpoint's subset order.
	Term []string `json:"term,omitempty"`
	// Metric is the metric's truth.Model.Key.
	Metric string `json:"metric"`
	// Truth is the true value: the same contrast applied to the true cell
	// means (every factor at each level with equal weight; tests outside
	// the factors do not change it, since interactions lie inside subsets).
	Truth float64 `json:"truth"`
}

// Name returns a short label: "rec-model", "rec-model | ui-layout=two-column",
// "rec-model:ui-layout".
func (q Quantity) Name() string {
	switch q.Kind {
	case SimpleEffect:
		return q.Test + " | " + q.Given + "=" + q.GivenVariant
	case Interaction:
		return strings.Join(q.Term, ":")
	}
	return q.Test
}

// Options configure Evaluate.
type Options struct {
	// Reps is the number of replications (at least 1).
	Reps int
	// Seed makes the run reproducible: replication r draws its units and
	// noise from a PCG stream seeded from (Seed, r) through SplitMix64, and
	// names its units "s<Seed>-r<r>-user-<i>".
	Seed uint64
	// Workers run replications in parallel (default 2). The results do
	// not depend on it.
	Workers int
	// MaxUnits caps the units one replication may draw (default 2e6); a
	// strategy not done by then is counted as not finished.
	MaxUnits int
	// Level is the confidence level of intervals (default 0.95).
	Level float64
	// Progress, when set, is called after each replication with the number
	// done, from one goroutine at a time.
	Progress func(done, total int)
}

func (o *Options) defaults() error {
	if o.Reps < 1 {
		return fmt.Errorf("evaluate: reps = %d (want ≥ 1)", o.Reps)
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.MaxUnits <= 0 {
		o.MaxUnits = 2_000_000
	}
	if o.Level == 0 {
		o.Level = 0.95
	}
	if !(o.Level > 0 && o.Level < 1) {
		return fmt.Errorf("evaluate: level %v not in (0, 1)", o.Level)
	}
	return nil
}

// Summary describes a sample of numbers.
type Summary struct {
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
	Min  float64 `json:"min"`
	P5   float64 `json:"p5"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	Max  float64 `json:"max"`
}

func summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	var sum, ss float64
	for _, x := range s {
		sum += x
	}
	mean := sum / float64(len(s))
	for _, x := range s {
		ss += (x - mean) * (x - mean)
	}
	out := Summary{Mean: mean, Min: s[0], Max: s[len(s)-1],
		P5: quantile(s, 0.05), P50: quantile(s, 0.5), P95: quantile(s, 0.95)}
	if len(s) > 1 {
		out.SD = math.Sqrt(ss / float64(len(s)-1))
	}
	return out
}

// quantile of sorted s, linear interpolation (R's type 7).
func quantile(s []float64, p float64) float64 {
	h := p * float64(len(s)-1)
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (h-lo)*(s[i+1]-s[i])
}

// EstimateStats summarise one strategy's estimates of one Quantity over
// the replications.
type EstimateStats struct {
	// Reps is the number of replications that produced an estimate; 0
	// when the strategy does not estimate the quantity.
	Reps int `json:"reps"`
	// Mean and SD of the estimates; Bias = Mean − Quantity.Truth.
	Mean float64 `json:"mean"`
	Bias float64 `json:"bias"`
	SD   float64 `json:"sd"`
	// Coverage is the fraction of intervals that contain the truth.
	Coverage float64 `json:"coverage"`
	// Rejected is the fraction of replications with p < the test's alpha:
	// the power (or detection rate) when the truth is not 0.
	Rejected float64 `json:"rejected"`
}

// StrategyResult is one strategy's outcome over all replications.
type StrategyResult struct {
	Strategy Strategy `json:"strategy"`
	Label    string   `json:"label"`
	// Cells is the number of cells of its largest design and PerCellN the
	// largest per-cell (per-arm) n its stop rule asks for.
	Cells    int   `json:"cells"`
	PerCellN int64 `json:"per_cell_n"`
	// PlannedUnits is what the stop rule needs if the cells filled exactly
	// evenly: cells × per-cell n / the fraction of units the design can
	// use, summed (one at a time) or maximised over its designs.
	PlannedUnits float64 `json:"planned_units"`
	// Units are the units drawn until every test's decision.
	Units Summary `json:"units"`
	// Finished counts the replications in which every decision was
	// reached within Options.MaxUnits.
	Finished int `json:"finished"`
	// TestUnits are, per test (Result.Tests order), the mean units until
	// that test's decision.
	TestUnits []float64 `json:"test_units"`
	// Estimates are per Quantity (Result.Quantities order).
	Estimates []EstimateStats `json:"estimates"`
	// InteractionTests is the number of interaction contrasts with true
	// value 0 tested per replication, FalseFindings the mean number of them
	// significant at the viewpoint's alpha, and FalseFindingRate their
	// ratio.
	InteractionTests float64 `json:"interaction_tests"`
	FalseFindings    float64 `json:"false_findings"`
	FalseFindingRate float64 `json:"false_finding_rate"`
}

// TestSummary describes one test of a scenario.
type TestSummary struct {
	ID             string   `json:"id"`
	ChangeService  string   `json:"change_service"`
	MeasureService string   `json:"measure_service"`
	Metric         string   `json:"metric"`
	MDE            float64  `json:"mde"`
	SD             float64  `json:"sd"`
	Alpha          float64  `json:"alpha"`
	Power          float64  `json:"power"`
	Eligible       float64  `json:"eligible"` // fraction of units the test randomizes
	Subset         []string `json:"subset"`   // viewpoint first
}

// Result is the evaluation of one scenario.
type Result struct {
	Scenario    string           `json:"scenario"`
	Description string           `json:"description"`
	Services    int              `json:"services"`
	Reps        int              `json:"reps"`
	Seed        uint64           `json:"seed"`
	Level       float64          `json:"level"`
	Tests       []TestSummary    `json:"tests"`
	Quantities  []Quantity       `json:"quantities"`
	Strategies  []StrategyResult `json:"strategies"`
}

// Strategy returns the result of s, or nil.
func (r *Result) Strategy(s Strategy) *StrategyResult {
	for i := range r.Strategies {
		if r.Strategies[i].Strategy == s {
			return &r.Strategies[i]
		}
	}
	return nil
}

// Quantity returns the index of the quantity with the given kind and
// Name (and, for interactions, viewpoint test), or -1.
func (r *Result) Quantity(kind QuantityKind, test, name string) int {
	for i, q := range r.Quantities {
		if q.Kind == kind && q.Test == test && q.Name() == name {
			return i
		}
	}
	return -1
}

// Evaluate simulates the scenario Options.Reps times and compares the
// strategies on the same traffic. In every replication one stream of
// units (ids "s<seed>-r<rep>-user-1", …, attributes and per-metric noise
// drawn from a PCG stream seeded from (seed, rep)) is assigned by the real assign.Engine and
// fed to every strategy until its own stop rule is met; estimates are
// taken at that moment. One-at-a-time runs each test on the stream from
// its start, with only that test active (the same units and noise, as if
// in its own period). Replications run on Options.Workers goroutines; the
// result does not depend on their scheduling.
func Evaluate(ctx context.Context, sc *Scenario, opt Options) (*Result, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	c, err := sc.compile()
	if err != nil {
		return nil, err
	}
	r, err := newRunner(c, opt)
	if err != nil {
		return nil, err
	}
	reps := make([]repResult, opt.Reps)
	newWork := func() func(context.Context, int) error {
		w := r.newWorker()
		return func(ctx context.Context, rep int) (err error) {
			reps[rep], err = w.replicate(ctx, rep)
			return err
		}
	}
	var progress func(int)
	if opt.Progress != nil {
		progress = func(done int) { opt.Progress(done, opt.Reps) }
	}
	if err := parallel(ctx, opt.Reps, opt.Workers, newWork, progress); err != nil {
		return nil, err
	}
	return r.aggregate(reps), nil
}

func (r *runner) aggregate(reps []repResult) *Result {
	c := r.c
	res := &Result{
		Scenario: c.sc.Name, Description: c.sc.Description, Services: countServices(c.sc.Edges),
		Reps: len(reps), Seed: r.opt.Seed, Level: r.opt.Level, Quantities: r.quant,
	}
	for i, t := range c.tests {
		res.Tests = append(res.Tests, TestSummary{
			ID: t.id, ChangeService: t.x.ChangeService, MeasureService: t.x.MeasureService,
			Metric: c.truths[t.metric].Key(), MDE: t.mde, SD: t.sd, Alpha: t.alpha, Power: t.power,
			Eligible: t.elig, Subset: c.subs[i].Tests(),
		})
	}
	for _, s := range Strategies {
		size := r.size.of(s)
		sr := StrategyResult{Strategy: s, Label: s.Label(),
			Cells: size.cells, PerCellN: size.perCell, PlannedUnits: size.planned}
		var units []float64
		tu := make([]float64, r.n)
		var nulls, hits int
		for i := range reps {
			rp := reps[i].of(s)
			units = append(units, float64(rp.units))
			if rp.finished {
				sr.Finished++
			}
			for i, u := range rp.testUnits {
				tu[i] += float64(u) / float64(len(reps))
			}
			nulls += rp.nullTests
			hits += rp.falseHits
		}
		sr.Units = summarize(units)
		sr.TestUnits = tu
		sr.InteractionTests = float64(nulls) / float64(len(reps))
		sr.FalseFindings = float64(hits) / float64(len(reps))
		if nulls > 0 {
			sr.FalseFindingRate = float64(hits) / float64(nulls)
		}
		for qi, q := range r.quant {
			alpha := c.tests[r.qplan[qi].test].alpha
			es := estimateStats(len(reps), q.Truth, alpha, func(i int) estimate { return reps[i].of(s).est[qi] })
			sr.Estimates = append(sr.Estimates, es)
		}
		res.Strategies = append(res.Strategies, sr)
	}
	return res
}

// criticalT returns the two-sided critical value of t at alpha on df.
func criticalT(alpha float64, df int64) float64 {
	if df <= 0 {
		return math.Inf(1)
	}
	return tQuantile(1-alpha/2, df)
}
