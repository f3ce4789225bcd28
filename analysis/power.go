package analysis

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
	"gonum.org/v1/gonum/stat/distuv"
)

// ErrNoConvergence: a series or a root search did not converge within its
// bounds (for example a sample size beyond 1e9).
var ErrNoConvergence = errors.New("no convergence")

// ncfTol bounds the Poisson mass left out of the noncentral F series, and
// so the absolute error of NoncentralFCDF (on top of the error of the
// incomplete beta function, ~1e-15).
const ncfTol = 1e-15

// ncfMaxTerms bounds the number of series terms; it is reached only for
// λ beyond ~1e9.
const ncfMaxTerms = 1 << 20

// NoncentralFCDF returns P(X ≤ x) for X following the noncentral F
// distribution with d1 and d2 degrees of freedom and noncentrality λ ≥ 0,
// as a Poisson mixture of regularized incomplete beta functions:
//
//	P(X ≤ x) = Σ_{j≥0} e^{−λ/2} (λ/2)^j / j! · I_y(d1/2 + j, d2/2),  y = d1·x / (d1·x + d2)
//
// The sum starts at the Poisson mode and walks outwards in both directions
// until the Poisson mass not yet summed is below 1e-15 on each side
// (bounded by a geometric series), so the truncation error is at most
// 2e-15; the rest is the error of mathext.RegIncBeta (checked here against
// 40-digit values to 1e-8 relative for λ ≤ 150, and to ~1e-10 absolute at
// λ = 1e5). λ = 0 is the central F. It returns NaN for invalid parameters (d1, d2 ≤ 0,
// λ < 0, NaN) or if the series needs more than 2^20 terms.
func NoncentralFCDF(x, d1, d2, lambda float64) float64 {
	return ncf(x, d1, d2, lambda, false)
}

// NoncentralFSurvival returns P(X > x) for X ~ F(d1, d2, λ), summed
// directly from the upper incomplete beta (not as 1 − CDF), so small tail
// probabilities keep their relative precision:
//
//	P(X > x) = Σ_{j≥0} e^{−λ/2} (λ/2)^j / j! · I_{1−y}(d2/2, d1/2 + j)
//
// Parameters and errors as NoncentralFCDF.
func NoncentralFSurvival(x, d1, d2, lambda float64) float64 {
	return ncf(x, d1, d2, lambda, true)
}

func ncf(x, d1, d2, lambda float64, upper bool) float64 {
	if !(d1 > 0 && d2 > 0 && lambda >= 0) || math.IsNaN(x) || math.IsInf(lambda, 0) {
		return math.NaN()
	}
	if x <= 0 {
		return b2f(upper)
	}
	if math.IsInf(x, 1) {
		return b2f(!upper)
	}
	a, b := d1/2, d2/2
	// y and 1−y computed separately to keep precision at both ends.
	y := d1 * x / (d1*x + d2)
	y1 := d2 / (d1*x + d2)
	term := func(j int) float64 {
		if upper {
			return mathext.RegIncBeta(b, a+float64(j), y1)
		}
		return mathext.RegIncBeta(a+float64(j), b, y)
	}
	mu := lambda / 2
	if mu == 0 {
		return term(0)
	}
	j0 := int(math.Floor(mu))
	lg, _ := math.Lgamma(float64(j0) + 1)
	w0 := math.Exp(-mu + float64(j0)*math.Log(mu) - lg)
	sum := w0 * term(j0)
	// Downwards: w_{j−1} = w_j·j/μ; the ratio j/μ falls as j falls, so the
	// mass below j is at most w_j·r/(1−r) with r = j/μ.
	w := w0
	n := 1
	for j := j0; j > 0; j-- {
		r := float64(j) / mu
		if w*r/(1-r) < ncfTol {
			break
		}
		w *= r
		sum += w * term(j-1)
		if n++; n > ncfMaxTerms {
			return math.NaN()
		}
	}
	// Upwards: w_{j+1} = w_j·μ/(j+1); beyond the mode the ratio falls too.
	w = w0
	for j := j0; ; j++ {
		r := mu / float64(j+1)
		if r < 1 && w*r/(1-r) < ncfTol {
			break
		}
		w *= r
		sum += w * term(j+1)
		if n++; n > ncfMaxTerms {
			return math.NaN()
		}
	}
	return math.Min(math.Max(sum, 0), 1)
}

// Power returns the power of the F test with u numerator and v denominator
// degrees of freedom at level alpha when the noncentrality is λ:
//
//	power = P(F(u, v, λ) > F⁻¹_{u,v}(1 − alpha))
//
// It returns NaN for invalid parameters (u, v ≤ 0, λ < 0, alpha outside
// (0, 1)).
func Power(u, v, lambda, alpha float64) float64 {
	if !(u > 0 && v > 0 && lambda >= 0 && alpha > 0 && alpha < 1) {
		return math.NaN()
	}
	crit := distuv.F{D1: u, D2: v}.Quantile(1 - alpha)
	return NoncentralFSurvival(crit, u, v, lambda)
}

// SampleSizeF2 returns the denominator df v at which the F test of u
// numerator df reaches the given power for Cohen's effect size f², as R's
// pwr.f2.test(u, f2, sig.level = alpha, power) solves it (the total sample
// size is then u + v + 1):
//
//	λ = f²·(u + v + 1),  Power(u, v, λ, alpha) = power
//
// v is continuous; round up for a count. Errors wrap ErrInvalidInput
// (u < 1, f² ≤ 0, alpha or power outside (0, 1)) or ErrNoConvergence
// (v would exceed 1e9).
func SampleSizeF2(u int, f2, alpha, power float64) (float64, error) {
	if u < 1 || !(f2 > 0) {
		return 0, fmt.Errorf("%w: u = %d, f2 = %v (want u ≥ 1, f2 > 0)", ErrInvalidInput, u, f2)
	}
	if err := checkLevels(alpha, power); err != nil {
		return 0, err
	}
	U := float64(u)
	return solveIncreasing(1+1e-10, 1e9, power, func(v float64) float64 {
		return Power(U, v, f2*(U+v+1), alpha)
	})
}

// SampleSizeANOVA returns the per-group n at which the one-way ANOVA of k
// groups reaches the given power for Cohen's effect size f, as R's
// pwr.anova.test(k, f = f, sig.level = alpha, power) solves it:
//
//	λ = k·n·f²,  Power(k − 1, k·(n − 1), λ, alpha) = power
//
// n is continuous; round up. Errors as SampleSizeF2 (k ≥ 2, f > 0).
func SampleSizeANOVA(k int, f, alpha, power float64) (float64, error) {
	if k < 2 || !(f > 0) {
		return 0, fmt.Errorf("%w: k = %d, f = %v (want k ≥ 2, f > 0)", ErrInvalidInput, k, f)
	}
	if err := checkLevels(alpha, power); err != nil {
		return 0, err
	}
	K := float64(k)
	return solveIncreasing(2+1e-10, 1e9, power, func(n float64) float64 {
		return Power(K-1, K*(n-1), K*n*f*f, alpha)
	})
}

// SampleSizeTTest returns the per-group n at which the two-sided
// two-sample t test reaches the given power for Cohen's d (difference of
// means over the common SD), as R's pwr.t.test(d = d, sig.level = alpha,
// power) solves it. Its power, which counts rejections in either tail,
// equals that of the F test with u = 1, since T² ~ F(1, ν, δ²):
//
//	ν = 2(n − 1),  δ = d·√(n/2)
//	power = P(T_ν,δ > t_c) + P(T_ν,δ < −t_c) = P(F(1, ν, δ²) > t_c²)
//
// n is continuous; round up. The sign of d is ignored. Errors as
// SampleSizeF2 (d ≠ 0).
func SampleSizeTTest(d, alpha, power float64) (float64, error) {
	d = math.Abs(d)
	if !(d > 0) || math.IsInf(d, 0) {
		return 0, fmt.Errorf("%w: d = %v (want d ≠ 0)", ErrInvalidInput, d)
	}
	if err := checkLevels(alpha, power); err != nil {
		return 0, err
	}
	return solveIncreasing(2+1e-10, 1e9, power, func(n float64) float64 {
		return Power(1, 2*(n-1), n*d*d/2, alpha)
	})
}

// SampleSizeTerm returns the per-cell n at which the F test of one term of
// a full factorial ANOVA (Type III, every cell with n observations)
// reaches the given power for a minimum detectable effect mde with
// within-cell standard deviation sd.
//
// u is the term's numerator df and cells the number of cells of the
// design, so the residual df is cells·(n − 1) and the noncentrality
// λ = f²·cells·n. The mde is mapped to Cohen's f by the minimum-variability
// pattern of u + 1 means: two of them mde apart and the rest half-way, so
//
//	f = mde / (sd·√(2(u + 1)))
//
// For a two-level term (u = 1) in a 2^k design that is f = mde/(2·sd), and
// mde is the difference between the mean of the cells where the term's
// ±1 contrast is + and the mean where it is −: for a main effect the
// difference of the two marginal means (variant − control), for a:b half
// the difference of differences (Contrast.Estimate/2), for a term of order
// r the Contrast.Estimate / 2^(r−1). n is continuous; round up for a
// count. Errors wrap ErrInvalidInput (u < 1, cells < u + 1, mde or sd not
// positive, alpha or power outside (0, 1)) or ErrNoConvergence.
func SampleSizeTerm(u, cells int, mde, sd, alpha, power float64) (float64, error) {
	if u < 1 || cells < u+1 || !(mde > 0) || !(sd > 0) || math.IsInf(mde, 0) || math.IsInf(sd, 0) {
		return 0, fmt.Errorf("%w: u = %d, cells = %d, mde = %v, sd = %v (want u ≥ 1, cells > u, mde > 0, sd > 0)",
			ErrInvalidInput, u, cells, mde, sd)
	}
	if err := checkLevels(alpha, power); err != nil {
		return 0, err
	}
	f := MDEToF(mde, sd, u)
	U, C := float64(u), float64(cells)
	// Start where the residual df is 1, as pwr.f2.test starts at v = 1.
	return solveIncreasing(1+1/C, 1e9, power, func(n float64) float64 {
		return Power(U, C*(n-1), f*f*C*n, alpha)
	})
}

// MDEToF is the mapping SampleSizeTerm uses from a minimum detectable
// difference to Cohen's f for a term of u numerator df:
//
//	f = mde / (sd·√(2(u + 1)))
func MDEToF(mde, sd float64, u int) float64 {
	return mde / (sd * math.Sqrt(2*float64(u+1)))
}

func checkLevels(alpha, power float64) error {
	if !(alpha > 0 && alpha < 1) {
		return fmt.Errorf("%w: alpha = %v not in (0, 1)", ErrInvalidInput, alpha)
	}
	if !(power > 0 && power < 1) {
		return fmt.Errorf("%w: power = %v not in (0, 1)", ErrInvalidInput, power)
	}
	if power <= alpha {
		return fmt.Errorf("%w: power %v must exceed alpha %v", ErrInvalidInput, power, alpha)
	}
	return nil
}

// solveIncreasing finds x in [lo, hi] with f(x) = target for an increasing
// f: it doubles a bracket from lo, then bisects to a relative width of
// 1e-12. f(lo) ≥ target returns lo.
func solveIncreasing(lo, hi, target float64, f func(float64) float64) (float64, error) {
	if f(lo) >= target {
		return lo, nil
	}
	a, b := lo, math.Max(2*lo, lo+1)
	for {
		fb := f(b)
		if math.IsNaN(fb) {
			return 0, fmt.Errorf("%w: power not computable at %g", ErrNoConvergence, b)
		}
		if fb >= target {
			break
		}
		if b >= hi {
			return 0, fmt.Errorf("%w: the solution exceeds %g", ErrNoConvergence, hi)
		}
		a, b = b, math.Min(2*b, hi)
	}
	for i := 0; i < 200 && b-a > 1e-12*b; i++ {
		m := a + (b-a)/2
		if fm := f(m); math.IsNaN(fm) {
			return 0, fmt.Errorf("%w: power not computable at %g", ErrNoConvergence, m)
		} else if fm < target {
			a = m
		} else {
			b = m
		}
	}
	return a + (b-a)/2, nil
}
