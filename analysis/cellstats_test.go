package analysis

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
)

// twoPass returns the mean and M2 of xs around offset+xs, computed on the
// small deviations xs so the reference itself loses nothing to the offset.
func twoPass(xs []float64) (mean, m2 float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		m2 += (x - mean) * (x - mean)
	}
	return mean, m2
}

func TestCellStatsAddLargeOffset(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset float64
		n      int
	}{
		{"zero", 0, 1000},
		{"1e6", 1e6, 1000},
		{"1e9", 1e9, 10000},
		{"1e9 small n", 1e9, 3},
		{"-1e9", -1e9, 5000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.n)))
			xs := make([]float64, tc.n)
			var c CellStats
			for i := range xs {
				v := tc.offset + rng.NormFloat64() // variance 1 around the offset
				c.Add(v)
				xs[i] = v - tc.offset // exact: the deviation of the stored value
			}
			mean, m2 := twoPass(xs)
			if c.N != int64(tc.n) {
				t.Fatalf("N = %d", c.N)
			}
			// The stored mean is rounded to ulp(offset) (1.2e-7 at 1e9), which
			// bounds Welford's relative error near 1e-7; the naive
			// (Σx² − n·x̄²)/(n−1) loses every digit there (checked below).
			tol := 1e-12 + 20*math.Abs(tc.offset)*0x1p-52
			want := m2 / float64(tc.n-1)
			if got := c.Variance(); !scalar.EqualWithinAbsOrRel(got, want, 0, tol) {
				t.Errorf("variance = %.12g, want %.12g (rel tol %g)", got, want, tol)
			}
			if tc.offset >= 1e9 {
				var sum, sum2 float64
				for _, x := range xs {
					sum += tc.offset + x
					sum2 += (tc.offset + x) * (tc.offset + x)
				}
				naive := (sum2 - sum*sum/float64(tc.n)) / float64(tc.n-1)
				if scalar.EqualWithinAbsOrRel(naive, want, 0, 0.01) {
					t.Errorf("naive variance %v is close to %v: the test does not exercise precision", naive, want)
				}
			}
			if !scalar.EqualWithinAbsOrRel(c.Mean, tc.offset+mean, 0, 1e-14) {
				t.Errorf("mean = %.17g, want %.17g", c.Mean, tc.offset+mean)
			}
			if sd := c.SD(); !scalar.EqualWithinAbsOrRel(sd*sd, c.Variance(), 0, 1e-14) {
				t.Errorf("SD² = %v, variance %v", sd*sd, c.Variance())
			}
		})
	}
}

func TestCellStatsMergeEqualsOnePass(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset float64
		parts  int
	}{
		{"2 parts", 0, 2},
		{"7 parts", 50, 7},
		{"1e9 offset, 13 parts", 1e9, 13},
		{"single-value parts", 3, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(2, uint64(tc.parts)))
			const n = 200
			var one CellStats
			xs := make([]float64, n)
			for i := range xs {
				xs[i] = tc.offset + 2*rng.NormFloat64()
				one.Add(xs[i])
			}
			// Random cut points, some parts possibly empty.
			cuts := []int{0, n}
			for len(cuts) < tc.parts+1 {
				cuts = append(cuts, rng.IntN(n+1))
			}
			sortInts(cuts)
			var merged CellStats
			for i := 0; i+1 < len(cuts); i++ {
				var part CellStats
				for _, x := range xs[cuts[i]:cuts[i+1]] {
					part.Add(x)
				}
				merged.Merge(part)
			}
			if merged.N != one.N {
				t.Fatalf("N = %d, want %d", merged.N, one.N)
			}
			if !scalar.EqualWithinAbsOrRel(merged.Mean, one.Mean, 0, 1e-14) {
				t.Errorf("mean = %.17g, want %.17g", merged.Mean, one.Mean)
			}
			tol := 1e-11
			if tc.offset >= 1e9 {
				tol = 1e-6 // both sides round the 1e9 values to 1.2e-7
			}
			if !scalar.EqualWithinAbsOrRel(merged.M2, one.M2, 0, tol) {
				t.Errorf("M2 = %.15g, want %.15g", merged.M2, one.M2)
			}
		})
	}
}

func sortInts(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

func TestCellStatsEdges(t *testing.T) {
	var empty CellStats
	if !math.IsNaN(empty.Variance()) || !math.IsNaN(empty.SD()) {
		t.Error("variance of an empty cell should be NaN")
	}
	one := CellStats{}
	one.Add(4)
	if !math.IsNaN(one.Variance()) || one.Mean != 4 || one.M2 != 0 {
		t.Errorf("one value: %+v", one)
	}
	// Merging an empty cell changes nothing; merging into an empty cell copies.
	c := one
	c.Merge(CellStats{})
	if c != one {
		t.Errorf("merge of empty: %+v", c)
	}
	var d CellStats
	d.Merge(one)
	if d != one {
		t.Errorf("merge into empty: %+v", d)
	}
	// Hand-computable: {1, 2, 3, 4} → mean 2.5, M2 5, variance 5/3.
	var a, b CellStats
	a.Add(1)
	a.Add(2)
	b.Add(3)
	b.Add(4)
	a.Merge(b)
	if a.N != 4 || a.Mean != 2.5 || !scalar.EqualWithinAbsOrRel(a.M2, 5, 0, 1e-15) || !scalar.EqualWithinAbsOrRel(a.Variance(), 5.0/3, 0, 1e-15) {
		t.Errorf("merge {1,2}+{3,4} = %+v", a)
	}
}
