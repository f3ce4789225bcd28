package sim

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"

	"github.com/abmesh/abmesh/analysis"
)

// randomTable fills a 2^k table with unbalanced random cells.
func randomTable(rng *rand.Rand, k int) *analysis.CellTable {
	var factors []analysis.Factor
	for f := range k {
		name := string(rune('a' + f))
		factors = append(factors, analysis.Factor{Name: name, Levels: []string{name + "0", name + "1"}})
	}
	t, _ := analysis.NewCellTable(factors)
	for i := range t.Cells {
		n := 3 + rng.IntN(20)
		for range n {
			t.Cells[i].Add(float64(i) + 5*rng.NormFloat64())
		}
	}
	return t
}

// contrast.on reproduces analysis.Estimate's main effects and interaction
// contrasts (factor f is cell bit k−1−f), and its intervals and p values.
func TestContrastMatchesEstimate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, k := range []int{1, 2, 3, 4} {
		tab := randomTable(rng, k)
		est, err := analysis.Estimate(tab, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		pl := poolCells(tab.Cells, 0.95)
		if pl.df != est.DF || !scalar.EqualWithinAbsOrRel(pl.mse, est.MSE, 1e-12, 1e-12) {
			t.Fatalf("k=%d: pooled df %d mse %v, Estimate %d %v", k, pl.df, pl.mse, est.DF, est.MSE)
		}
		for _, fm := range termMasks(k) {
			var sign uint64
			for f := range k {
				if fm&(1<<f) != 0 {
					sign |= 1 << (k - 1 - f)
				}
			}
			got := contrast{sign: sign}.on(tab.Cells, pl)
			var want estimate
			if fm&(fm-1) == 0 {
				f := 0
				for fm>>f != 1 {
					f++
				}
				want = fromEffect(est.Effect(tab.Factors[f].Name, tab.Factors[f].Levels[1]))
			} else {
				want = fromContrast(est.Interaction(tab.TermName(fm)))
			}
			for _, pair := range [][2]float64{{got.est, want.est}, {got.lo, want.lo}, {got.hi, want.hi}, {got.p, want.p}} {
				if !scalar.EqualWithinAbsOrRel(pair[0], pair[1], 1e-10, 1e-10) {
					t.Errorf("k=%d term %s: got %+v, Estimate %+v", k, tab.TermName(fm), got, want)
					break
				}
			}
		}
	}
}

// For two-level factors the Type III F test of a term is the square of
// its contrast's t test, so the p values agree.
func TestContrastPIsTypeIIIP(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	tab := randomTable(rng, 3)
	a, err := analysis.Anova(tab, analysis.TypeIII)
	if err != nil {
		t.Fatal(err)
	}
	pl := poolCells(tab.Cells, 0.95)
	for _, fm := range termMasks(3) {
		var sign uint64
		for f := range 3 {
			if fm&(1<<f) != 0 {
				sign |= 1 << (2 - f)
			}
		}
		got := contrast{sign: sign}.on(tab.Cells, pl)
		term := a.Term(tab.TermName(fm))
		if !scalar.EqualWithinAbsOrRel(got.p, term.P, 1e-9, 1e-9) {
			t.Errorf("%s: contrast p %v, Type III p %v", term.Name, got.p, term.P)
		}
	}
}

func TestSimpleEffectContrast(t *testing.T) {
	// 2×2 with A on bit 1 and B on bit 0: cells 00, 01, 10, 11.
	means := []float64{10, 12, 15, 25}
	a := uint64(2)
	b := uint64(1)
	if got := (contrast{sign: a, cond: b, val: 0}).onMeans(means); got != 5 {
		t.Errorf("effect of A at B=0 = %v, want 15−10", got)
	}
	if got := (contrast{sign: a, cond: b, val: b}).onMeans(means); got != 13 {
		t.Errorf("effect of A at B=1 = %v, want 25−12", got)
	}
	if got := (contrast{sign: a}).onMeans(means); got != 9 {
		t.Errorf("main effect of A = %v, want 9", got)
	}
	if got := (contrast{sign: a | b}).onMeans(means); got != 8 {
		t.Errorf("interaction = %v, want 13−5", got)
	}
}

// fromWHT gives the same sums as the direct loop, with and without
// conditions.
func TestFromWHT(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const k = 6
	x := make([]float64, 1<<k)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	w := append([]float64(nil), x...)
	wht(w)
	for range 500 {
		cond := rng.Uint64() & (1<<k - 1) & rng.Uint64()
		sign := rng.Uint64() & (1<<k - 1) &^ cond
		val := rng.Uint64() & cond
		kk := contrast{sign: sign, cond: cond, val: val}
		var direct float64
		for c := range x {
			if kk.used(uint64(c)) {
				direct += kk.cellSign(uint64(c)) * x[c]
			}
		}
		if got := kk.fromWHT(w); math.Abs(got-direct) > 1e-9 {
			t.Fatalf("%+v: fromWHT %v, direct %v", kk, got, direct)
		}
	}
}

func TestRepRandIndependentStreams(t *testing.T) {
	a, b := repRand(1, 0), repRand(1, 1)
	same := 0
	for range 100 {
		if a.Uint64() == b.Uint64() {
			same++
		}
	}
	if same > 0 {
		t.Error("neighbouring replications share draws")
	}
	if repRand(1, 5).Uint64() != repRand(1, 5).Uint64() {
		t.Error("repRand is not deterministic")
	}
}
