package analysis

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
)

type refEstimates struct {
	Dataset  string   `json:"dataset"`
	Response string   `json:"response"`
	Factors  []string `json:"factors"`
	Level    float64  `json:"level"`
	DF       int64    `json:"df"`
	MSE      float64  `json:"mse"`
	Effects  []struct {
		Factor, Control, Variant string
		Diff, SE, Lo, Hi, P      float64
		Rel                      float64 `json:"rel"`
		RelSE                    float64 `json:"rel_se"`
		RelLo                    float64 `json:"rel_lo"`
		RelHi                    float64 `json:"rel_hi"`
	} `json:"effects"`
	Marginal []struct {
		Factor, Level string
		Mean, SE      float64
	} `json:"marginal"`
	Interactions []struct {
		Term                 string
		Estimate, SE, Lo, Hi float64
		P                    *float64 // not in every reference
	} `json:"interactions"`
	// Cells, when present, are every cell in table order.
	Cells []struct {
		Levels           []string
		N                int64
		Mean, SE, Lo, Hi float64
	} `json:"cells"`
}

// estTol are the tolerances of a comparison of Estimates with R: values
// within abs or rel, p-values within pAbs or pRel.
type estTol struct{ abs, rel, pAbs, pRel float64 }

// checkEstimates compares e with R's reference ref, field by field.
func checkEstimates(t *testing.T, e *Estimates, ref refEstimates, tol estTol) {
	t.Helper()
	eq := func(a, b float64) bool { return scalar.EqualWithinAbsOrRel(a, b, tol.abs, tol.rel) }
	peq := func(a, b float64) bool { return scalar.EqualWithinAbsOrRel(a, b, tol.pAbs, tol.pRel) }
	if e.DF != ref.DF || !eq(e.MSE, ref.MSE) {
		t.Errorf("df %d MSE %v, want %d %v", e.DF, e.MSE, ref.DF, ref.MSE)
	}
	if len(e.Effects) != len(ref.Effects) || len(e.Interactions) != len(ref.Interactions) || len(e.Marginal) != len(ref.Marginal) {
		t.Fatalf("%d effects, %d interactions, %d marginal; want %d %d %d", len(e.Effects), len(e.Interactions), len(e.Marginal),
			len(ref.Effects), len(ref.Interactions), len(ref.Marginal))
	}
	for _, w := range ref.Effects {
		g := e.Effect(w.Factor, w.Variant)
		if g == nil || g.Control != w.Control || g.Note != "" {
			t.Errorf("effect %s %s: %+v", w.Factor, w.Variant, g)
			continue
		}
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"diff", g.Diff, w.Diff}, {"se", g.DiffSE, w.SE}, {"lo", g.DiffCI.Lo, w.Lo}, {"hi", g.DiffCI.Hi, w.Hi},
			{"rel", g.Rel, w.Rel}, {"rel se", g.RelSE, w.RelSE}, {"rel lo", g.RelCI.Lo, w.RelLo}, {"rel hi", g.RelCI.Hi, w.RelHi},
		} {
			if !eq(c.got, c.want) {
				t.Errorf("effect %s %s %s = %.15g, want %.15g", w.Factor, w.Variant, c.name, c.got, c.want)
			}
		}
		if !peq(g.P, w.P) {
			t.Errorf("effect %s %s p = %v, want %v", w.Factor, w.Variant, g.P, w.P)
		}
	}
	for i, w := range ref.Marginal {
		g := e.Marginal[i]
		if g.Factor != w.Factor || g.Level != w.Level || !eq(g.Mean, w.Mean) || !eq(g.SE, w.SE) {
			t.Errorf("marginal %+v, want %+v", g, w)
		}
	}
	for _, w := range ref.Interactions {
		g := e.Interaction(w.Term)
		if g == nil || !eq(g.Estimate, w.Estimate) || !eq(g.SE, w.SE) || !eq(g.CI.Lo, w.Lo) || !eq(g.CI.Hi, w.Hi) ||
			(w.P != nil && !peq(g.P, *w.P)) {
			t.Errorf("interaction %s = %+v, want %+v", w.Term, g, w)
		}
	}
	if ref.Cells != nil && len(ref.Cells) != len(e.Cells) {
		t.Fatalf("%d cells, want %d", len(e.Cells), len(ref.Cells))
	}
	for i, w := range ref.Cells {
		g := e.Cells[i]
		if strings.Join(g.Levels, ",") != strings.Join(w.Levels, ",") || g.N != w.N || !eq(g.Mean, w.Mean) || !eq(g.SE, w.SE) ||
			!eq(g.CI.Lo, w.Lo) || !eq(g.CI.Hi, w.Hi) {
			t.Errorf("cell %d = %+v, want %+v", i, g, w)
		}
	}
}

// TestEstimateMatchesR compares with R's lm under contr.sum: marginal
// means as (Intercept) + α, contrasts from coefficients and vcov, the
// relative effect's delta-method SE from the gradient (testdata/gen).
func TestEstimateMatchesR(t *testing.T) {
	files, _ := filepath.Glob("testdata/estimates/*.json")
	if len(files) == 0 {
		t.Fatal("no reference estimates")
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var ref refEstimates
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatal(err)
		}
		t.Run(ref.Dataset, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata/anova", ref.Dataset))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tab, err := ReadCSV(f, ref.Response, ref.Factors)
			if err != nil {
				t.Fatal(err)
			}
			e, err := Estimate(tab, ref.Level)
			if err != nil {
				t.Fatal(err)
			}
			checkEstimates(t, e, ref, estTol{abs: 1e-12, rel: 1e-9, pAbs: 1e-12, pRel: 1e-6})
		})
	}
}

// TestEstimateHand: a 2×2 table small enough to check by hand.
func TestEstimateHand(t *testing.T) {
	tab, _ := NewCellTable([]Factor{{Name: "a", Levels: []string{"ctl", "v"}}, {Name: "b", Levels: []string{"ctl", "v"}}})
	// Cell values: a0b0 {1,3}, a0b1 {2,4}, a1b0 {5,7}, a1b1 {10,12}: every
	// cell has M2 = 2, so MSE = 8/4 = 2 on 4 df.
	for i, vals := range [][]float64{{1, 3}, {2, 4}, {5, 7}, {10, 12}} {
		for _, v := range vals {
			tab.Cells[i].Add(v)
		}
	}
	e, err := Estimate(tab, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	const t975df4 = 2.7764451051977987 // qt(0.975, 4)
	eq := func(a, b float64) bool { return scalar.EqualWithinAbsOrRel(a, b, 1e-13, 1e-12) }
	if e.DF != 4 || e.MSE != 2 {
		t.Fatalf("df %d MSE %v", e.DF, e.MSE)
	}
	// Cell a0b0: mean 2, SE = √(2/2) = 1.
	if c := e.Cells[0]; c.Mean != 2 || !eq(c.SE, 1) || !eq(c.CI.Lo, 2-t975df4) || !eq(c.CI.Hi, 2+t975df4) {
		t.Errorf("cell = %+v", c)
	}
	// a: control mean (2+3)/2 = 2.5, variant (6+11)/2 = 8.5, diff 6,
	// SE = √(2·(1/2+1/2+1/2+1/2))/2 = 1, rel = 6/2.5 = 2.4.
	a := e.Effect("a", "v")
	if !eq(a.Diff, 6) || !eq(a.DiffSE, 1) || !eq(a.DiffCI.Lo, 6-t975df4) || !eq(a.Rel, 2.4) {
		t.Errorf("a = %+v", a)
	}
	// Delta method: SE_rel² = MSE·(v_v/m0² + m1²·v_c/m0⁴), v = (1/2+1/2)/4 = 1/4.
	wantRelSE := math.Sqrt(2 * (0.25/(2.5*2.5) + 8.5*8.5*0.25/(2.5*2.5*2.5*2.5)))
	if !eq(a.RelSE, wantRelSE) {
		t.Errorf("a rel SE = %v, want %v", a.RelSE, wantRelSE)
	}
	// Fieller: both ends ρ = 1 + rel solve (m1 − ρ·m0)² = t²·MSE·(v1 + ρ²·v0).
	for _, rel := range []float64{a.RelCI.Lo, a.RelCI.Hi} {
		rho := 1 + rel
		lhs := (8.5 - rho*2.5) * (8.5 - rho*2.5)
		rhs := t975df4 * t975df4 * 2 * (0.25 + rho*rho*0.25)
		if !eq(lhs, rhs) {
			t.Errorf("Fieller end %v: %v ≠ %v", rel, lhs, rhs)
		}
	}
	if !(a.RelCI.Lo < a.Rel && a.Rel < a.RelCI.Hi) || a.RelCI.Hi-a.Rel <= a.Rel-a.RelCI.Lo {
		t.Errorf("Fieller interval %+v around %v should be skewed up", a.RelCI, a.Rel)
	}
	// a:b = (11 − 6) − (3 − 2) = 4, SE = √(2·4·(1/2)) = 2.
	ab := e.Interaction("a:b")
	if !eq(ab.Estimate, 4) || !eq(ab.SE, 2) || !eq(ab.T, 2) {
		t.Errorf("a:b = %+v", ab)
	}
	// p = 2·pt(−2, 4) = 0.11611652351681559.
	if !scalar.EqualWithinAbsOrRel(ab.P, 0.11611652351681559, 0, 1e-10) {
		t.Errorf("a:b p = %v", ab.P)
	}
}

func TestEstimateEmptyAndDegenerate(t *testing.T) {
	tab, _ := NewCellTable([]Factor{{Name: "a", Levels: []string{"ctl", "v"}}, {Name: "b", Levels: []string{"ctl", "v", "w"}}})
	for i := range tab.Cells {
		tab.Cells[i].Add(float64(i))
		tab.Cells[i].Add(float64(i) + 1)
	}
	tab.Cells[tab.Index(1, 2)] = CellStats{} // a=v,b=w empty
	e, err := Estimate(tab, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	if ef := e.Effect("a", "v"); ef.Note != "not estimable: cell a=v,b=w is empty" || ef.P != 1 || ef.Diff != 0 {
		t.Errorf("a = %+v", ef)
	}
	if ef := e.Effect("b", "v"); ef.Note != "" || !scalar.EqualWithinAbsOrRel(ef.Diff, 1, 0, 1e-12) {
		t.Errorf("b v = %+v", ef)
	}
	if ef := e.Effect("b", "w"); !strings.HasPrefix(ef.Note, "not estimable") {
		t.Errorf("b w = %+v", ef)
	}
	if c := e.Cells[tab.Index(1, 2)]; c.Note != "empty cell" || c.N != 0 {
		t.Errorf("empty cell = %+v", c)
	}
	if len(e.Interactions) != 0 {
		t.Errorf("b has three levels: no contrasts, got %+v", e.Interactions)
	}

	// One observation per cell: means but no intervals.
	single, _ := NewCellTable([]Factor{{Name: "a", Levels: []string{"ctl", "v"}}, {Name: "b", Levels: []string{"ctl", "v"}}})
	for i := range single.Cells {
		single.Cells[i].Add(float64(i * i))
	}
	e, err = Estimate(single, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	if ef := e.Effect("a", "v"); ef.Diff != 6 || ef.DiffSE != 0 || !strings.Contains(ef.Note, "residual df is 0") {
		t.Errorf("a = %+v", ef)
	}
	if ab := e.Interaction("a:b"); ab.Estimate != 4 || !strings.Contains(ab.Note, "residual df is 0") {
		t.Errorf("a:b = %+v", ab)
	}

	// Zero control mean: no relative effect.
	z, _ := NewCellTable([]Factor{{Name: "a", Levels: []string{"ctl", "v"}}})
	for _, v := range []float64{-1, 1} {
		z.Cells[0].Add(v)
		z.Cells[1].Add(v + 2)
	}
	e, _ = Estimate(z, 0.95)
	if ef := e.Effect("a", "v"); ef.Diff != 2 || ef.RelSE != 0 || !strings.Contains(ef.Note, "control mean is 0") {
		t.Errorf("zero control = %+v", ef)
	}

	for _, level := range []float64{0, 1, -0.5, 95} {
		if _, err := Estimate(tab, level); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("level %v: %v", level, err)
		}
	}
}
