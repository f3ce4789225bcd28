package analysis

import (
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
)

// layerLevels are the levels of a layer factor: two tests' (test, variant)
// pairs and "outside", with each test's variant referred to its control.
var (
	layerLevels = []string{"x/c", "x/t", "y/c", "y/t", "outside"}
	layerRef    = []int{-1, 0, -1, 2, 4} // outside refers to itself: no effect
)

// fillLayerTable fills a layer × b table (levels in the given order) with
// the same random cells for the same (layer level, b level) whatever the
// order: cell values depend on the level names only.
func fillLayerTable(t *testing.T, levels []string, ref []int) *CellTable {
	t.Helper()
	tab, err := NewCellTable([]Factor{{Name: "layer", Levels: levels, Reference: ref}, {Name: "b", Levels: []string{"c", "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	effect := map[string]float64{"x/c": 0, "x/t": 3, "y/c": 1, "y/t": -2, "outside": 0.5}
	for li, name := range levels {
		seed := uint64(slices.Index(layerLevels, name))
		for b := range 2 {
			rng := rand.New(rand.NewPCG(seed, uint64(b)))
			c := &tab.Cells[tab.Index(li, b)]
			for range 20 + rng.IntN(20) {
				c.Add(10 + effect[name] + float64(b) + rng.NormFloat64())
			}
		}
	}
	return tab
}

// TestEstimateReference: a factor with Reference compares each level with
// the level it names, and gives exactly what the default path (validated
// against R) gives when that level is the factor's first; levels without a
// reference have no effect.
func TestEstimateReference(t *testing.T) {
	e, err := Estimate(fillLayerTable(t, layerLevels, layerRef), 0.95)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ef := range e.Effects {
		got = append(got, ef.Factor+" "+ef.Variant+" vs "+ef.Control)
	}
	want := []string{"layer x/t vs x/c", "layer y/t vs y/c", "b v vs c"}
	if !slices.Equal(got, want) {
		t.Fatalf("effects %q, want %q", got, want)
	}
	eq := func(a, b float64) bool { return scalar.EqualWithinAbsOrRel(a, b, 1e-12, 1e-12) }
	for _, pair := range [][2]string{{"x/c", "x/t"}, {"y/c", "y/t"}} {
		// The same cells with the control first and no Reference.
		order := append([]string{pair[0]}, slices.DeleteFunc(slices.Clone(layerLevels), func(s string) bool { return s == pair[0] })...)
		plain, err := Estimate(fillLayerTable(t, order, nil), 0.95)
		if err != nil {
			t.Fatal(err)
		}
		g, w := e.Effect("layer", pair[1]), plain.Effect("layer", pair[1])
		if g.Control != pair[0] || w.Control != pair[0] || g.Note != "" {
			t.Fatalf("%s: control %q / %q, note %q", pair[1], g.Control, w.Control, g.Note)
		}
		for _, c := range [][2]float64{{g.Diff, w.Diff}, {g.DiffSE, w.DiffSE}, {g.DiffCI.Lo, w.DiffCI.Lo}, {g.DiffCI.Hi, w.DiffCI.Hi},
			{g.P, w.P}, {g.Rel, w.Rel}, {g.RelCI.Lo, w.RelCI.Lo}, {g.RelCI.Hi, w.RelCI.Hi}} {
			if !eq(c[0], c[1]) {
				t.Errorf("%s: %+v, want %+v", pair[1], *g, *w)
				break
			}
		}
	}
}
