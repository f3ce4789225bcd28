package report

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/abmesh/abmesh/analysis"
)

// TestUnitsPerCellMatchesBisection: the integer search from the memoized
// noncentrality gives ⌈SampleSizeTerm⌉ for SDs far from the first one's,
// across designs, levels and powers, and errors as SampleSizeTerm does.
func TestUnitsPerCellMatchesBisection(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, d := range []struct {
		u, cells     int
		alpha, power float64
	}{{1, 2, 0.05, 0.8}, {1, 4, 0.05, 0.8}, {1, 64, 0.01, 0.9}, {2, 6, 0.05, 0.8}, {3, 16, 0.1, 0.95}, {1, 1024, 0.05, 0.8}} {
		for i := range 40 {
			mde, sd := 1.0, math.Exp(rng.Float64()*6-3) // f over three orders of magnitude
			want, err := analysis.SampleSizeTerm(d.u, d.cells, mde, sd, d.alpha, d.power)
			if err != nil {
				t.Fatal(err)
			}
			got, err := unitsPerCell(d.u, d.cells, mde, sd, d.alpha, d.power)
			if err != nil || got != int64(math.Ceil(want)) {
				t.Fatalf("%+v sd %v (call %d): %d, %v; want ⌈%v⌉", d, sd, i, got, err, want)
			}
		}
	}
	if _, err := unitsPerCell(1, 4, 0, 1, 0.05, 0.8); err == nil {
		t.Error("mde 0: no error")
	}
	if _, err := unitsPerCell(3, 3, 1, 1, 0.05, 0.8); err == nil {
		t.Error("cells < u + 1: no error")
	}
}

// BenchmarkUnitsPerCell: a per-cell n at a new SD once the design's λ* is
// known (what a report build pays per planned term).
func BenchmarkUnitsPerCell(b *testing.B) {
	if _, err := unitsPerCell(1, 64, 0.5, 5, 0.05, 0.8); err != nil {
		b.Fatal(err)
	}
	sd := 5.0
	for b.Loop() {
		sd += 1e-3
		if _, err := unitsPerCell(1, 64, 0.5, sd, 0.05, 0.8); err != nil {
			b.Fatal(err)
		}
	}
}
