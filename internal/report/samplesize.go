package report

import (
	"math"
	"sync"

	"github.com/abmesh/abmesh/analysis"
)

// A report needs the per-cell units of each planned term at the plan's SD
// (for the mixture) and at the observed SD (for progress), at every build:
// analysis.SampleSizeTerm's bisection costs about 1 ms each, more than the
// rest of a 64-cell report. Since only the rounded-up n is used, it is
// found as the smallest integer n whose power reaches the target, starting
// from the noncentrality λ* that solved the same (u, cells, α, power)
// before: λ = f²·cells·n needs about the same λ* whatever f (exactly so as
// the residual df grow), so the guess λ*/(f²·cells) is within an n or two
// and two or three power evaluations settle it.

// sizeKey is what λ* depends on besides f.
type sizeKey struct {
	u, cells     int
	alpha, power float64
}

// lambdas memoizes λ* per sizeKey, and units the answers per (sizeKey,
// f) (the plan's SD asks the same every build); each bounded by
// maxLambdas (cleared when full: distinct plans are few).
var (
	lambdasMu sync.Mutex
	lambdas   = map[sizeKey]float64{}
	units     = map[unitsKey]int64{}
)

type unitsKey struct {
	sizeKey
	f float64
}

const (
	maxLambdas = 1024
	// maxSteps bounds the integer search; beyond it the bisection runs.
	maxSteps = 16
)

// unitsPerCell returns ⌈analysis.SampleSizeTerm(u, cells, mde, sd, alpha, power)⌉:
// the smallest integer per-cell n whose F test power reaches power.
func unitsPerCell(u, cells int, mde, sd, alpha, power float64) (int64, error) {
	key := sizeKey{u, cells, alpha, power}
	f := analysis.MDEToF(mde, sd, u)
	C := float64(cells)
	lambdasMu.Lock()
	lam, ok := lambdas[key]
	known, done := units[unitsKey{key, f}]
	lambdasMu.Unlock()
	if done {
		return known, nil
	}
	if ok && f > 0 && !math.IsInf(f, 0) {
		if n, ok := searchUnits(u, cells, f, alpha, power, lam/(f*f*C)); ok {
			remember(key, f, 0, n)
			return n, nil
		}
	}
	n, err := analysis.SampleSizeTerm(u, cells, mde, sd, alpha, power)
	if err != nil {
		return 0, err
	}
	remember(key, f, f*f*C*n, int64(math.Ceil(n)))
	return int64(math.Ceil(n)), nil
}

// remember stores the answer n at f, and λ* when not 0.
func remember(key sizeKey, f, lambda float64, n int64) {
	lambdasMu.Lock()
	defer lambdasMu.Unlock()
	if len(lambdas) >= maxLambdas || len(units) >= maxLambdas {
		clear(lambdas)
		clear(units)
	}
	if lambda != 0 {
		lambdas[key] = lambda
	}
	units[unitsKey{key, f}] = n
}

// searchUnits walks from ⌈guess⌉ to the smallest integer n ≥ 2 with
// power(n) ≥ target; false when the guess is not finite or the walk
// takes more than maxSteps.
func searchUnits(u, cells int, f, alpha, target, guess float64) (int64, bool) {
	if math.IsNaN(guess) || guess > 1e9 {
		return 0, false
	}
	U, C := float64(u), float64(cells)
	reaches := func(n int64) bool {
		return analysis.Power(U, C*float64(n-1), f*f*C*float64(n), alpha) >= target
	}
	n := max(2, int64(math.Ceil(guess)))
	if reaches(n) {
		for range maxSteps {
			if n == 2 || !reaches(n-1) {
				return n, true
			}
			n--
		}
		return 0, false
	}
	for range maxSteps {
		n++
		if reaches(n) {
			return n, true
		}
	}
	return 0, false
}
