package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
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

// Term is one effect of an outcome model: Effect is added to the mean of
// a unit that is served, in every test Tests[i], the variant Variants[i].
// One test makes a main effect; two or more an interaction, added on top
// of the lower-order terms of the same tests (treatment coding):
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

// Truth is the ground-truth outcome model of one metric, measured on one
// service: what a simulated unit's value of that metric is, given the
// variants it was served. It is the simulator's known answer, against
// which estimates are judged, and what a traffic driver uses to give
// simulated users outcomes:
//
//	value = Baseline + Σ_terms Effect·1{every test of the term serves its variant} + noise
//
// with noise SD·z (Normal) or a Bernoulli draw (Bernoulli). Tests that a
// unit is not served (or that are not mentioned) count as their control.
// A Truth is read-only once built and safe for concurrent use.
type Truth struct {
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
func (t *Truth) Key() string { return t.Service + "/" + t.Metric }

// Mean returns the expected value for a unit served the given variants:
// served maps a test id to the name of the variant the unit was served;
// absent tests serve their control.
func (t *Truth) Mean(served map[string]string) float64 {
	m := t.Baseline
	for _, term := range t.Terms {
		all := true
		for i, test := range term.Tests {
			if served[test] != term.Variants[i] {
				all = false
				break
			}
		}
		if all {
			m += term.Effect
		}
	}
	return m
}

// Value returns the value a unit with expected value mean gets for the
// standard normal draw z: mean + SD·z (Normal), or 1 when Φ(z) < mean and
// else 0 (Bernoulli, so P(1) = mean clamped to [0, 1]). Feeding the same z
// to different means gives common random numbers: the same unit under
// different variants.
func (t *Truth) Value(mean, z float64) float64 {
	if t.Dist == Bernoulli {
		if normalCDF(z) < mean {
			return 1
		}
		return 0
	}
	return mean + t.SD*z
}

// Outcome draws one unit's value: Value(Mean(served), rng.NormFloat64()).
func (t *Truth) Outcome(rng *rand.Rand, served map[string]string) float64 {
	return t.Value(t.Mean(served), rng.NormFloat64())
}

// Variance returns the within-cell variance of values with the given mean:
// SD² (Normal) or p(1−p) with p clamped to [0, 1] (Bernoulli).
func (t *Truth) Variance(mean float64) float64 {
	if t.Dist == Bernoulli {
		p := math.Min(1, math.Max(0, mean))
		return p * (1 - p)
	}
	return t.SD * t.SD
}

func normalCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// compiledTruth is a Truth over the scenario's test indices: a unit's
// served variants are a bitmask (bit i: test i serves its treatment), so
// the mean is a few mask tests.
type compiledTruth struct {
	*Truth
	masks   []uint64
	effects []float64
}

// compile maps t's terms to masks over tests (index by test id, each test
// with exactly two variants, treat[i] the name of test i's treatment).
func compileTruth(t *Truth, index map[string]int, treat []string) (compiledTruth, error) {
	c := compiledTruth{Truth: t}
	for k, term := range t.Terms {
		if len(term.Tests) == 0 || len(term.Tests) != len(term.Variants) {
			return c, fmt.Errorf("truth %s: term %d: %d tests and %d variants (want as many, at least one)",
				t.Key(), k, len(term.Tests), len(term.Variants))
		}
		var m uint64
		for i, test := range term.Tests {
			j, ok := index[test]
			if !ok {
				return c, fmt.Errorf("truth %s: term %d: unknown test %q", t.Key(), k, test)
			}
			if term.Variants[i] != treat[j] {
				return c, fmt.Errorf("truth %s: term %d: variant %q of %s is not its treatment %q",
					t.Key(), k, term.Variants[i], test, treat[j])
			}
			if m&(1<<j) != 0 {
				return c, fmt.Errorf("truth %s: term %d: test %s twice", t.Key(), k, test)
			}
			m |= 1 << j
		}
		c.masks = append(c.masks, m)
		c.effects = append(c.effects, term.Effect)
	}
	return c, nil
}

// mean is Mean for the served-treatment mask s.
func (c *compiledTruth) mean(s uint64) float64 {
	m := c.Baseline
	for i, mk := range c.masks {
		if s&mk == mk {
			m += c.effects[i]
		}
	}
	return m
}
