package sim

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/tool/truth"
)

// RepeatOptions configure EvaluateRepeat, the repeat-traffic scenario:
// units that make several requests each, analysed per request (as abmesh
// did before per-unit analysis) and per unit.
type RepeatOptions struct {
	// Requests is the mean number of requests per unit (geometric, at
	// least 1) of a unit served every control.
	Requests float64
	// ICC is the within-unit correlation ρ of a unit's requests, in [0, 1).
	ICC float64
	// Windows is the number of windows of the coverage check, per
	// aggregate and design.
	Windows int
	// NullWindows and DetectWindows are the windows of the sample-ratio
	// check with a true split and with an imbalance.
	NullWindows, DetectWindows int
	// DecisionWindows are the windows of the units-to-decision check.
	DecisionWindows int
	// Units is the number of units per coverage window and per SRM window
	// with a true split.
	Units int
	// DetectUnits are the window sizes (units) at which the imbalance's
	// detection is measured.
	DetectUnits []int
	// Seed makes the run reproducible: every window draws from a PCG
	// stream seeded from (Seed, the check, the window).
	Seed uint64
	// Workers run windows in parallel (default GOMAXPROCS); the results
	// do not depend on it.
	Workers int
	// Level is the confidence level of intervals (default 0.95).
	Level float64
	// Progress, when set, is called after each window of a check with the
	// check's name ("srm null", "srm imbalance", "coverage mean", …,
	// "decision") and the windows done, from one goroutine at a time.
	Progress func(check string, done, total int)
}

// DefaultRepeatOptions are the sizes of issue 10's acceptance: 5 requests
// per unit, ρ = 0.3, 2,000 coverage windows, 5,000 SRM windows with a true
// split and 200 with a 50.5/49.5 imbalance read at 200k, 250k and 300k
// units, and 500 windows to decision.
func DefaultRepeatOptions() RepeatOptions {
	return RepeatOptions{Requests: 5, ICC: 0.3, Windows: 2000, NullWindows: 5000, DetectWindows: 200, DecisionWindows: 500,
		Units: 2000, DetectUnits: []int{200_000, 250_000, 300_000}, Seed: 1, Level: 0.95}
}

func (o *RepeatOptions) validate() error {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Level == 0 {
		o.Level = 0.95
	}
	rep := truth.Repeat{MeanRequests: o.Requests, ICC: o.ICC}
	switch err := rep.Validate(); {
	case err != nil:
		return err
	case o.Windows < 1 || o.NullWindows < 1 || o.DetectWindows < 1 || o.DecisionWindows < 1:
		return fmt.Errorf("repeat: windows %d, %d, %d, %d: want at least 1 each", o.Windows, o.NullWindows, o.DetectWindows, o.DecisionWindows)
	case o.Units < 16:
		return fmt.Errorf("repeat: %d units per window: want at least 16", o.Units)
	case !(o.Level > 0 && o.Level < 1):
		return fmt.Errorf("repeat: level %v not in (0, 1)", o.Level)
	}
	for _, n := range o.DetectUnits {
		if n < 2 {
			return fmt.Errorf("repeat: detection at %d units: want at least 2", n)
		}
	}
	return nil
}

// progress returns a per-window progress function for check, or nil.
func (o *RepeatOptions) progress(check string, total int) func(int) {
	if o.Progress == nil {
		return nil
	}
	return func(done int) { o.Progress(check, done, total) }
}

// RepeatResult is the repeat-traffic evaluation: the sample-ratio check,
// interval coverage per aggregate, and units to decision, each per
// request and per unit on the same simulated traffic.
type RepeatResult struct {
	Requests float64 `json:"requests_per_unit"`
	ICC      float64 `json:"within_unit_corr"`
	Units    int     `json:"units"` // per coverage window and SRM window with a true split
	Level    float64 `json:"level"`
	Seed     uint64  `json:"seed"`
	// Command, when set, reproduces the result alone; Runtime is how long
	// EvaluateRepeat took.
	Command string        `json:"command,omitempty"`
	Runtime time.Duration `json:"runtime_ns"`
	// Truth describes the simulated truth (tests, effects, metrics).
	Truth    string              `json:"truth"`
	SRM      SRMResult           `json:"srm"`
	Coverage []AggregateCoverage `json:"coverage"`
	Decision DecisionResult      `json:"decision"`
}

// EvaluateRepeat runs the repeat-traffic checks: SRM on units and on
// requests (CheckSRM), interval coverage for every aggregate
// (CheckCoverage) and units to decision (CheckDecision).
func EvaluateRepeat(ctx context.Context, opt RepeatOptions) (*RepeatResult, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := &RepeatResult{Requests: opt.Requests, ICC: opt.ICC, Units: opt.Units, Level: opt.Level, Seed: opt.Seed, Truth: repeatTruthText}
	var err error
	if res.SRM, err = CheckSRM(ctx, opt); err != nil {
		return nil, err
	}
	if res.Coverage, err = CheckCoverage(ctx, opt); err != nil {
		return nil, err
	}
	if res.Decision, err = CheckDecision(ctx, opt); err != nil {
		return nil, err
	}
	res.Runtime = time.Since(start)
	return res, nil
}

// The repeat scenario's truth: three tests a, b, c (two variants each),
// a Normal metric and a 0/1 metric with main effects and interactions,
// and treatments that change how often units come back.
const (
	repeatControl   = "control"
	repeatTreatment = "treatment"
)

// repeatTruthText describes repeatModels in words, for the report.
const repeatTruthText = "tests a, b, c (control/treatment, 50/50); a Normal metric (SD 4) with cell means " +
	"10 + 0.25·a + 0.5·b − 0.5·c + 0.5·ab − 0.5·bc + 0.5·abc (treatment coding; `any` uses a 0/1 metric with request rate " +
	"0.1 + 0.02·a + 0.01·b − 0.01·c + 0.02·ab + 0.01·abc); units make geometric requests with mean m at control and " +
	"m + 0.1·(m − 1)·(b + ab) otherwise; requests share a unit draw with correlation ρ"

func repeatTerm(effect float64, tests ...string) truth.Term {
	vs := make([]string, len(tests))
	for i := range vs {
		vs[i] = repeatTreatment
	}
	return truth.Term{Tests: tests, Variants: vs, Effect: effect}
}

// repeatModels returns the scenario's metric truths (see repeatTruthText).
func repeatModels() (normal, bernoulli *truth.Model) {
	normal = &truth.Model{Service: "app", Metric: "attribute:value", Dist: truth.Normal, Baseline: 10, SD: 4, Terms: []truth.Term{
		repeatTerm(0.25, "a"), repeatTerm(0.5, "b"), repeatTerm(-0.5, "c"),
		repeatTerm(0.5, "a", "b"), repeatTerm(-0.5, "b", "c"), repeatTerm(0.5, "a", "b", "c"),
	}}
	bernoulli = &truth.Model{Service: "app", Metric: "attribute:converted", Dist: truth.Bernoulli, Baseline: 0.1, Terms: []truth.Term{
		repeatTerm(0.02, "a"), repeatTerm(0.01, "b"), repeatTerm(-0.01, "c"),
		repeatTerm(0.02, "a", "b"), repeatTerm(0.01, "a", "b", "c"),
	}}
	return normal, bernoulli
}

// repeatTraffic returns the scenario's repeat traffic for the options.
func repeatTraffic(o *RepeatOptions) *truth.Repeat {
	d := 0.1 * (o.Requests - 1)
	return &truth.Repeat{MeanRequests: o.Requests, ICC: o.ICC,
		RequestTerms: []truth.Term{repeatTerm(d, "b"), repeatTerm(d, "a", "b")}}
}

// repeatFactors returns the first k of the tests a, b, c as factors.
func repeatFactors(k int) []analysis.Factor {
	out := make([]analysis.Factor, k)
	for i := range out {
		out[i] = analysis.Factor{Name: string(rune('a' + i)), Levels: []string{repeatControl, repeatTreatment}}
	}
	return out
}

// repeatDesign is one factorial of the scenario with its cells' truths.
type repeatDesign struct {
	name    string // "2x2", "2x2x2"
	factors []analysis.Factor
	mean    []float64  // per cell (analysis.CellTable order): the metric's mean
	reqs    []float64  // per cell: mean requests per unit
	levels  [][]string // per cell: its level names, one per factor
}

// newRepeatDesign tabulates the k-factor design's cells for metric m.
func newRepeatDesign(k int, m *truth.Model, rep *truth.Repeat) repeatDesign {
	d := repeatDesign{name: "2x2", factors: repeatFactors(k)}
	if k == 3 {
		d.name = "2x2x2"
	}
	t := analysis.CellTable{Factors: d.factors}
	cells := 1 << k
	levels := make([]int, k)
	for i := range cells {
		t.Levels(i, levels)
		served := make(map[string]string, k)
		names := make([]string, k)
		for f, l := range levels {
			names[f] = d.factors[f].Levels[l]
			served[d.factors[f].Name] = names[f]
		}
		d.levels = append(d.levels, names)
		d.mean = append(d.mean, m.Mean(served))
		d.reqs = append(d.reqs, rep.Requests(served))
	}
	return d
}

// repeatSeed returns the seed of one check's windows: the run's seed
// mixed with the check's name, so checks draw unrelated streams.
func repeatSeed(seed uint64, check string) uint64 {
	h := seed
	for _, c := range []byte(check) {
		h = splitmix64(h ^ uint64(c))
	}
	return h
}

// aggregateMetric returns the metric the scenario analyses under agg:
// the 0/1 metric for any, the Normal one otherwise.
func aggregateMetric(agg assign.Aggregate) *truth.Model {
	normal, bern := repeatModels()
	if agg == assign.AggregateAny {
		return bern
	}
	return normal
}

// twoSidedPower is P(|Z + δ| > z) for standard normal Z: the power of a
// two-sided z test (or of a 1-df chi-square, δ = √λ) at critical value z.
func twoSidedPower(delta, z float64) float64 {
	return normalCDF(delta-z) + normalCDF(-delta-z)
}

func normalCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }
