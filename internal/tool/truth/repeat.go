package truth

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
)

// Repeat is repeat traffic: how many requests a unit makes and how alike
// one unit's requests are. A unit served the variants s makes N ≥ 1
// requests, geometric with mean Requests(s):
//
//	P(N = k) = (1 − q)^(k−1) · q,   q = 1 / Requests(s)
//
// and its requests' values of a metric share one draw of the unit:
//
//	z_r = √ρ · z_u + √(1 − ρ) · e_r      (z_u, e_r independent standard normal)
//	value_r = Model.Value(Model.Mean(s), z_r)
//
// For a Normal metric a request's value is the cell's mean plus a unit
// effect of variance ρ·SD² plus noise of variance (1 − ρ)·SD², so ρ is
// the intra-class correlation of one unit's requests. For a Bernoulli
// metric ρ is the correlation of the latent normals z_r (the 0/1 values'
// own correlation is smaller). N is independent of the values given s.
// A Repeat is read-only once built and safe for concurrent use.
type Repeat struct {
	// MeanRequests is the mean number of requests of a unit served every
	// test's control (at least 1; 1 is one request per unit).
	MeanRequests float64
	// RequestTerms add to the mean number of requests, with Model.Terms'
	// meaning: treatments that change how often a unit comes back.
	RequestTerms []Term
	// ICC is ρ, in [0, 1).
	ICC float64
}

// Validate reports a Repeat whose MeanRequests is not a finite number ≥ 1
// or whose ICC is outside [0, 1).
func (r *Repeat) Validate() error {
	if !(r.MeanRequests >= 1) || math.IsInf(r.MeanRequests, 0) {
		return fmt.Errorf("repeat: mean requests %v: want a number ≥ 1", r.MeanRequests)
	}
	if !(r.ICC >= 0 && r.ICC < 1) {
		return fmt.Errorf("repeat: within-unit correlation %v: want a number in [0, 1)", r.ICC)
	}
	return nil
}

// Requests returns the mean number of requests of a unit served the given
// variants (absent tests serve their control).
func (r *Repeat) Requests(served map[string]string) float64 {
	return addTerms(r.MeanRequests, r.RequestTerms, served)
}

// Geometric draws N ≥ 1 with P(N = k) = (1 − q)^(k−1)·q, q = 1/mean, by
// inversion; mean ≤ 1 gives 1.
func Geometric(rng *rand.Rand, mean float64) int {
	if mean <= 1 {
		return 1
	}
	u := 1 - rng.Float64() // (0, 1]
	return 1 + int(math.Log(u)/math.Log1p(-1/mean))
}

// Unit draws one unit of a cell whose metric m has the given mean and
// whose units make requests requests on average: it appends the values
// of the unit's N requests to dst (see Repeat).
func (r *Repeat) Unit(rng *rand.Rand, m *Model, mean, requests float64, dst []float64) []float64 {
	n := Geometric(rng, requests)
	a, b := math.Sqrt(r.ICC), math.Sqrt(1-r.ICC)
	zu := a * rng.NormFloat64()
	for range n {
		dst = append(dst, m.Value(mean, zu+b*rng.NormFloat64()))
	}
	return dst
}

// UnitValue is a unit's value under agg for the values of its requests
// (at least one): their mean, sum, 1 when any is non-zero (else 0), or
// their count. For AggregateRatio it is their sum, the numerator of the
// unit's (sum, requests) pair.
func UnitValue(agg assign.Aggregate, values []float64) float64 {
	switch agg {
	case assign.AggregateCount:
		return float64(len(values))
	case assign.AggregateAny:
		for _, v := range values {
			if v != 0 {
				return 1
			}
		}
		return 0
	}
	var s float64
	for _, v := range values {
		s += v
	}
	if agg == assign.AggregateMean {
		return s / float64(len(values))
	}
	return s
}

// Expected returns the true value of what a cell of units served the
// given variants estimates under agg, for the metric m:
//
//	mean   E[unit mean]          = μ                   (μ = m.Mean, clamped to [0, 1] for Bernoulli)
//	sum    E[N]·μ                = Requests·μ
//	count  E[N]                  = Requests
//	any    P(some request ≠ 0)   = 1 − E_z[G(1 − p(z))]  (Bernoulli; 1 for Normal with SD > 0)
//	ratio  E[Σ values]/E[N]      = μ                   (the request-level mean)
//
// with G(s) = q·s / (1 − (1 − q)·s) the geometric N's generating function
// and p(z) = Φ((Φ⁻¹(μ) − √ρ·z)/√(1 − ρ)) a Bernoulli request's chance of
// 1 given the unit's draw z, integrated over z ~ N(0, 1) numerically.
// Errors: an invalid Repeat, a mean number of requests below 1, or an
// unknown aggregate.
func (r *Repeat) Expected(m *Model, agg assign.Aggregate, served map[string]string) (float64, error) {
	if err := r.Validate(); err != nil {
		return 0, err
	}
	reqs := r.Requests(served)
	if !(reqs >= 1) {
		return 0, fmt.Errorf("repeat: mean requests %v for %v: want ≥ 1", reqs, served)
	}
	mu := m.Mean(served)
	if m.Dist == Bernoulli {
		mu = math.Min(1, math.Max(0, mu))
	}
	switch agg {
	case assign.AggregateMean, assign.AggregateRatio:
		return mu, nil
	case assign.AggregateSum:
		return reqs * mu, nil
	case assign.AggregateCount:
		return reqs, nil
	case assign.AggregateAny:
		return r.probAny(m, mu, reqs), nil
	}
	return 0, fmt.Errorf("repeat: unknown aggregate %v", agg)
}

// probAny is P(some request ≠ 0) for a unit of a cell with mean mu and
// mean requests reqs (see Expected).
func (r *Repeat) probAny(m *Model, mu, reqs float64) float64 {
	if m.Dist != Bernoulli {
		if m.SD > 0 || mu != 0 {
			return 1
		}
		return 0
	}
	if mu <= 0 || mu >= 1 {
		return mu
	}
	q := 1 / reqs
	gen := func(s float64) float64 { return q * s / (1 - (1-q)*s) }
	if r.ICC == 0 {
		return 1 - gen(1-mu)
	}
	c := math.Sqrt2 * math.Erfinv(2*mu-1) // Φ⁻¹(μ)
	a, b := math.Sqrt(r.ICC), math.Sqrt(1-r.ICC)
	return 1 - gaussExpect(func(z float64) float64 { return gen(1 - normalCDF((c-a*z)/b)) })
}

// gaussExpect returns E[f(Z)] for standard normal Z by the trapezoidal
// rule on [−10, 10] with step 1/64 (for smooth bounded f its error is far
// below 1e-12: the rule converges exponentially on Gaussian integrands).
func gaussExpect(f func(float64) float64) float64 {
	const h, steps = 1.0 / 64, 640 // z = i·h for |i| ≤ steps
	var s float64
	for i := -steps; i <= steps; i++ {
		z := float64(i) * h
		s += f(z) * math.Exp(-z*z/2)
	}
	return s * h / math.Sqrt(2*math.Pi)
}

// Factorial returns the true values of what analysis.Estimate reports for
// a unit-level factorial over factors under agg, as Model.Factorial does
// for one request per unit: the estimates of the table whose every cell
// holds one unit at the cell's Expected value. Its effects' Diff are the
// true main effects and its interactions' Estimate the true interaction
// contrasts of the aggregated metric; it has no intervals.
func (r *Repeat) Factorial(m *Model, agg assign.Aggregate, factors []analysis.Factor) (*analysis.Estimates, error) {
	return factorial(factors, func(served map[string]string) (float64, error) {
		return r.Expected(m, agg, served)
	})
}
