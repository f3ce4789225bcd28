package analysis

import (
	"errors"
	"math"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
)

func TestSRM(t *testing.T) {
	for _, tc := range []struct {
		name      string
		observed  []int64
		expected  []float64
		threshold float64
		chi2, p   float64
		df        int
		flagged   bool
	}{
		// (60−50)²/50 + (40−50)²/50 = 4; P(χ²₁ > 4) = erfc(√2) = 0.04550026389635842.
		{"60/40 vs 50/50", []int64{60, 40}, []float64{0.5, 0.5}, 0, 4, math.Erfc(math.Sqrt2), 1, false},
		{"exact fit", []int64{50, 50}, []float64{1, 1}, 0, 0, 1, 1, false},
		// Integer weights are normalised: 1:3 of 400 → 100, 300; O = 130, 270:
		// 900/100 + 900/300 = 12; P(χ²₁ > 12) = erfc(√6).
		{"weights 1:3", []int64{130, 270}, []float64{1, 3}, 0, 12, math.Erfc(math.Sqrt(6)), 1, true},
		// Three groups of 300 expected: O = 330, 300, 270 → 900/300·2 = 6;
		// P(χ²₂ > 6) = e^{−3}.
		{"three groups", []int64{330, 300, 270}, []float64{1, 1, 1}, 0, 6, math.Exp(-3), 2, false},
		{"three groups, loose threshold", []int64{330, 300, 270}, []float64{1, 1, 1}, 0.1, 6, math.Exp(-3), 2, true},
		// A category with weight 0 and no units is left out.
		{"zero weight unused", []int64{60, 40, 0}, []float64{0.5, 0.5, 0}, 0, 4, math.Erfc(math.Sqrt2), 1, false},
		// … and one with units is a certain mismatch.
		{"zero weight used", []int64{50, 50, 1}, []float64{0.5, 0.5, 0}, 0, 0.0099009900990099, 0, 1, true},
		// 50,000 vs 50,600: (300²/50300)·2 = 3.578528827; p = erfc(√(χ²/2)).
		{"large counts", []int64{50000, 50600}, []float64{0.5, 0.5}, 0, 2 * 90000.0 / 50300, math.Erfc(math.Sqrt(90000.0 / 50300)), 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := SRM(tc.observed, tc.expected, tc.threshold)
			if err != nil {
				t.Fatal(err)
			}
			if !scalar.EqualWithinAbsOrRel(r.ChiSquare, tc.chi2, 1e-12, 1e-12) {
				t.Errorf("χ² = %.15g, want %.15g", r.ChiSquare, tc.chi2)
			}
			if !scalar.EqualWithinAbsOrRel(r.P, tc.p, 1e-14, 1e-10) {
				t.Errorf("p = %.15g, want %.15g", r.P, tc.p)
			}
			if r.DF != tc.df || r.Flagged != tc.flagged {
				t.Errorf("df %d flagged %v, want %d %v", r.DF, r.Flagged, tc.df, tc.flagged)
			}
			want := tc.threshold
			if want == 0 {
				want = DefaultSRMThreshold
			}
			if r.Threshold != want {
				t.Errorf("threshold = %v", r.Threshold)
			}
		})
	}
}

func TestSRMErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		observed []int64
		expected []float64
		is       error
	}{
		{"length", []int64{1, 2}, []float64{1}, ErrInvalidInput},
		{"one category", []int64{1}, []float64{1}, ErrInvalidInput},
		{"negative count", []int64{1, -2}, []float64{1, 1}, ErrInvalidInput},
		{"negative weight", []int64{1, 2}, []float64{1, -1}, ErrInvalidInput},
		{"NaN weight", []int64{1, 2}, []float64{1, math.NaN()}, ErrInvalidInput},
		{"zero weights", []int64{1, 2}, []float64{0, 0}, ErrInvalidInput},
		{"no units", []int64{0, 0}, []float64{1, 1}, ErrNoData},
	} {
		if _, err := SRM(tc.observed, tc.expected, 0); !errors.Is(err, tc.is) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.is)
		}
	}
}
