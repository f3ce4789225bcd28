// Package truth is the ground truth of a simulated system: who its units
// are (Attribute) and what each unit's value of a metric is, given the
// variants it was served (Model). The evaluation (internal/tool/sim) judges
// estimates against it and the demo (internal/tool/demo) gives its simulated
// users outcomes from it; internal/tool/shop holds the shop's.
package truth

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/abmesh/abmesh/analysis"
)

// Dist is how a metric's values scatter around their mean.
type Dist int

const (
	// Normal values are mean + SD·z for standard normal noise z.
	Normal Dist = iota
	// Bernoulli values are 1 with probability mean (clamped to [0, 1]) and
	// 0 otherwise, e.g. a click; SD is then ignored (it is √(p(1−p))).
	Bernoulli
)

// String returns "normal" or "bernoulli".
func (d Dist) String() string {
	switch d {
	case Normal:
		return "normal"
	case Bernoulli:
		return "bernoulli"
	}
	return fmt.Sprintf("Dist(%d)", int(d))
}

// Term is one effect of a Model: Effect is added to the mean of a unit
// that is served, in every test Tests[i], the variant Variants[i]. One
// test makes a main effect; two or more an interaction, added on top of
// the lower-order terms of the same tests (treatment coding):
//
//	mean = Baseline + Σ_terms Effect · Π_i 1{served(Tests[i]) = Variants[i]}
//
// So with a main effect a for rec-model, b for ui-layout and an
// interaction c between them, a unit served both treatments has mean
// Baseline + a + b + c.
type Term struct {
	Tests    []string
	Variants []string
	Effect   float64
}

// Main returns the main-effect term of serving variant of test.
func Main(test, variant string, effect float64) Term {
	return Term{Tests: []string{test}, Variants: []string{variant}, Effect: effect}
}

// Model is the ground-truth outcome model of one metric, measured on one
// service: what a simulated unit's value of that metric is, given the
// variants it was served:
//
//	value = Baseline + Σ_terms Effect·1{every test of the term serves its variant} + noise
//
// with noise SD·z (Normal) or a Bernoulli draw (Bernoulli). Tests that a
// unit is not served (or that are not mentioned) count as their control.
// A Model is read-only once built and safe for concurrent use.
type Model struct {
	// Service is the measure service the metric is read from.
	Service string
	// Metric is the metric key as subset.Test.Metric spells it:
	// "latency_ms", "error" or "attribute:<name>".
	Metric   string
	Dist     Dist
	Baseline float64
	// SD is the within-cell standard deviation of Normal values.
	SD    float64
	Terms []Term
}

// Key returns "service/metric", the identity of the metric.
func (m *Model) Key() string { return m.Service + "/" + m.Metric }

// Mean returns the expected value for a unit served the given variants:
// served maps a test id to the name of the variant the unit was served;
// absent tests serve their control.
func (m *Model) Mean(served map[string]string) float64 { return addTerms(m.Baseline, m.Terms, served) }

// addTerms returns base plus the effects of the terms whose every test
// serves the term's variant.
func addTerms(base float64, terms []Term, served map[string]string) float64 {
	mean := base
	for _, term := range terms {
		all := true
		for i, test := range term.Tests {
			if served[test] != term.Variants[i] {
				all = false
				break
			}
		}
		if all {
			mean += term.Effect
		}
	}
	return mean
}

// Value returns the value a unit with expected value mean gets for the
// standard normal draw z: mean + SD·z (Normal), or 1 when Φ(z) < mean and
// else 0 (Bernoulli, so P(1) = mean clamped to [0, 1]). Feeding the same z
// to different means gives common random numbers: the same unit under
// different variants.
func (m *Model) Value(mean, z float64) float64 {
	if m.Dist == Bernoulli {
		if normalCDF(z) < mean {
			return 1
		}
		return 0
	}
	return mean + m.SD*z
}

// Outcome draws one unit's value: Value(Mean(served), rng.NormFloat64()).
func (m *Model) Outcome(rng *rand.Rand, served map[string]string) float64 {
	return m.Value(m.Mean(served), rng.NormFloat64())
}

// Variance returns the within-cell variance of values with the given mean:
// SD² (Normal) or p(1−p) with p clamped to [0, 1] (Bernoulli).
func (m *Model) Variance(mean float64) float64 {
	if m.Dist == Bernoulli {
		p := math.Min(1, math.Max(0, mean))
		return p * (1 - p)
	}
	return m.SD * m.SD
}

func normalCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// Factorial returns the true values of what analysis.Estimate reports for
// a factorial over factors (each a test, its levels the test's variants,
// control first): the estimates of the table whose every cell holds one
// unit at the cell's true mean, tests outside the factors at their
// control. Its effects' Diff are the true main effects (differences of
// unweighted marginal means) and its interactions' Estimate the true
// interaction contrasts; it has no intervals. Tests outside the factors
// change none of these as long as they interact with no factor, which is
// what the subset rule assumes.
func (m *Model) Factorial(factors []analysis.Factor) (*analysis.Estimates, error) {
	return factorial(factors, func(served map[string]string) (float64, error) { return m.Mean(served), nil })
}

// factorial returns the estimates of the table over factors whose every
// cell holds one unit at mean(served), served naming each factor's level
// of the cell (see Model.Factorial).
func factorial(factors []analysis.Factor, mean func(served map[string]string) (float64, error)) (*analysis.Estimates, error) {
	t := &analysis.CellTable{Factors: factors}
	cells := 1
	for _, f := range factors {
		cells *= len(f.Levels)
	}
	t.Cells = make([]analysis.CellStats, cells)
	levels := make([]int, len(factors))
	served := make(map[string]string, len(factors))
	for i := range t.Cells {
		t.Levels(i, levels)
		for f, l := range levels {
			served[factors[f].Name] = factors[f].Levels[l]
		}
		mu, err := mean(served)
		if err != nil {
			return nil, err
		}
		t.Cells[i] = analysis.CellStats{N: 1, Mean: mu}
	}
	return analysis.Estimate(t, 0.95)
}

// Attribute is a unit attribute with its distribution: Values[i] is drawn
// with probability Weights[i] / Σ Weights.
type Attribute struct {
	Name    string
	Values  []string
	Weights []float64
}

// Draw returns the index in Values of one draw.
func (a *Attribute) Draw(rng *rand.Rand) int {
	var sum float64
	for _, w := range a.Weights {
		sum += w
	}
	u := rng.Float64() * sum
	for i, w := range a.Weights {
		if u < w {
			return i
		}
		u -= w
	}
	return len(a.Weights) - 1
}

// DrawAttributes draws one unit's attributes, one value per attribute in
// order (nil when there are none).
func DrawAttributes(rng *rand.Rand, attrs []Attribute) map[string]string {
	if len(attrs) == 0 {
		return nil
	}
	out := make(map[string]string, len(attrs))
	for i := range attrs {
		out[attrs[i].Name] = attrs[i].Values[attrs[i].Draw(rng)]
	}
	return out
}
