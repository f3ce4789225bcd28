package analysis

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchTable is a 2^k design with every cell present, unbalanced (n in
// 20..200) and effects in the means.
func benchTable(k int) *CellTable {
	rng := rand.New(rand.NewPCG(uint64(k), 42))
	factors := make([]Factor, k)
	for f := range factors {
		factors[f] = Factor{Name: fmt.Sprintf("t%d", f), Levels: []string{"control", "variant"}}
	}
	tab, err := NewCellTable(factors)
	if err != nil {
		panic(err)
	}
	for i := range tab.Cells {
		n := int64(20 + rng.IntN(181))
		tab.Cells[i] = CellStats{N: n, Mean: 100 + rng.NormFloat64(), M2: float64(n-1) * (4 + rng.Float64())}
	}
	return tab
}

func BenchmarkAnova(b *testing.B) {
	for _, tc := range []struct {
		k   int
		typ SSType
	}{
		{6, TypeIII}, {10, TypeIII}, {6, TypeI}, {6, TypeII}, {3, TypeII},
	} {
		tab := benchTable(tc.k)
		b.Run(fmt.Sprintf("type%s/factors=%d/cells=%d", tc.typ, tc.k, len(tab.Cells)), func(b *testing.B) {
			for b.Loop() {
				if _, err := Anova(tab, tc.typ); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEstimate(b *testing.B) {
	tab := benchTable(10)
	for b.Loop() {
		if _, err := Estimate(tab, 0.95); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSampleSizeTerm(b *testing.B) {
	for b.Loop() {
		if _, err := SampleSizeTerm(1, 64, 0.5, 5, 0.05, 0.8); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnytimeValid: the anytime-valid tests and confidence sequences
// of a 2^6 (64 cells) and a 2^10 (1,024 cells) design.
func BenchmarkAnytimeValid(b *testing.B) {
	for _, k := range []int{6, 10} {
		tab := benchTable(k)
		b.Run(fmt.Sprintf("cells=%d", len(tab.Cells)), func(b *testing.B) {
			for b.Loop() {
				if _, err := AnytimeValid(tab, AnytimeOptions{Alpha: 0.05, Phi: 12}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
