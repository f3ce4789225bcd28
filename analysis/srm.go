package analysis

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// DefaultSRMThreshold is the p-value below which SRM flags a sample ratio
// mismatch.
const DefaultSRMThreshold = 0.001

// SRMFamilyThreshold is the threshold for each of n sample-ratio checks
// read together (a report's per-test checks and its joint check), so that
// a correct split flags any of them with probability at most
// DefaultSRMThreshold (Bonferroni): DefaultSRMThreshold / n, for n ≥ 1.
func SRMFamilyThreshold(n int) float64 {
	return DefaultSRMThreshold / float64(max(n, 1))
}

// SRMResult is a chi-square goodness-of-fit test of observed counts
// against the expected allocation.
type SRMResult struct {
	// ChiSquare is Pearson's statistic over the categories with a positive
	// expected proportion:
	//
	//	χ² = Σ (O_i − E_i)² / E_i,  E_i = N·p_i
	ChiSquare float64
	// DF is the number of categories with a positive expected proportion,
	// minus one.
	DF int
	// P = P(χ²(DF) > ChiSquare); 0 when a category expected to be empty
	// has observations.
	P float64
	// Expected are the expected counts N·p_i.
	Expected  []float64
	Threshold float64
	// Flagged reports P < Threshold.
	Flagged bool
}

// SRM tests whether observed counts fit the expected allocation. expected
// holds one non-negative weight per category (proportions or the variants'
// integer weights; they are normalised). threshold ≤ 0 means
// DefaultSRMThreshold. A category with weight 0 and no observations is
// left out; one with weight 0 and observations is a certain mismatch: P
// is 0 (ChiSquare still sums only the categories with positive weight). Errors wrap ErrInvalidInput (fewer than two
// categories, lengths differ, negative or non-finite values, weights
// summing to 0) or ErrNoData (no observations).
func SRM(observed []int64, expected []float64, threshold float64) (SRMResult, error) {
	if threshold <= 0 {
		threshold = DefaultSRMThreshold
	}
	res := SRMResult{Threshold: threshold}
	if len(observed) != len(expected) {
		return res, fmt.Errorf("%w: %d observed counts for %d expected proportions", ErrInvalidInput, len(observed), len(expected))
	}
	if len(observed) < 2 {
		return res, fmt.Errorf("%w: need at least two categories", ErrInvalidInput)
	}
	var n int64
	var wsum float64
	for i := range observed {
		if observed[i] < 0 {
			return res, fmt.Errorf("%w: observed[%d] = %d is negative", ErrInvalidInput, i, observed[i])
		}
		if !(expected[i] >= 0) || math.IsInf(expected[i], 0) {
			return res, fmt.Errorf("%w: expected[%d] = %v is not a finite non-negative weight", ErrInvalidInput, i, expected[i])
		}
		n += observed[i]
		wsum += expected[i]
	}
	if wsum == 0 {
		return res, fmt.Errorf("%w: expected proportions sum to 0", ErrInvalidInput)
	}
	if n == 0 {
		return res, fmt.Errorf("%w: no observations", ErrNoData)
	}
	res.Expected = make([]float64, len(observed))
	k := 0
	impossible := false
	for i, o := range observed {
		e := float64(n) * expected[i] / wsum
		res.Expected[i] = e
		if expected[i] == 0 {
			impossible = impossible || o > 0
			continue
		}
		k++
		d := float64(o) - e
		res.ChiSquare += d * d / e
	}
	res.DF = k - 1
	switch {
	case impossible:
		res.P = 0
	case res.DF == 0:
		res.P = 1 // one category carries every expected unit: nothing to test
	default:
		res.P = distuv.ChiSquared{K: float64(res.DF)}.Survival(res.ChiSquare)
	}
	res.Flagged = res.P < threshold
	return res, nil
}
