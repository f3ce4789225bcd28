package analysis

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/stat/distuv"
)

// unitPair is one unit of a ratio metric: its metric sum s over n requests.
type unitPair struct{ s, n float64 }

// dengVariance is Deng, Knoblich & Lu's delta-method variance of
// Σ s / Σ n, computed directly from the units with two-pass (K − 1)
// moments: an implementation independent of RatioStats.
func dengVariance(us []unitPair) (ratio, v float64) {
	k := float64(len(us))
	var ss, sn float64
	for _, u := range us {
		ss += u.s
		sn += u.n
	}
	ms, mn := ss/k, sn/k
	var vs, vn, c float64
	for _, u := range us {
		vs += (u.s - ms) * (u.s - ms)
		vn += (u.n - mn) * (u.n - mn)
		c += (u.s - ms) * (u.n - mn)
	}
	vs, vn, c = vs/(k-1), vn/(k-1), c/(k-1)
	ratio = ss / sn
	return ratio, (vs - 2*ratio*c + ratio*ratio*vn) / (k * mn * mn)
}

func ratioStatsOf(us []unitPair) RatioStats {
	var r RatioStats
	for _, u := range us {
		r.Add(u.s, u.n)
	}
	return r
}

func randomUnits(rng *rand.Rand, k int, mu float64) []unitPair {
	us := make([]unitPair, k)
	for i := range us {
		n := 1 + float64(rng.IntN(7))
		us[i] = unitPair{s: n*mu + 3*rng.NormFloat64()*math.Sqrt(n) + 0.5*n*n, n: n}
	}
	return us
}

// TestRatioLinearized: the linearised values l_u = R + (s_u − R·n_u)/n̄,
// computed one by one, have the count, mean and M2 Linearized reports,
// and M2/(K−1)/K is the delta-method variance.
func TestRatioLinearized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	us := randomUnits(rng, 57, 3)
	r := ratioStatsOf(us)
	ratio, v := dengVariance(us)
	var lin CellStats
	for _, u := range us {
		lin.Add(ratio + (u.s-ratio*u.n)/r.MeanN)
	}
	got := r.Linearized()
	eq := func(a, b float64) bool { return scalar.EqualWithinAbsOrRel(a, b, 1e-13, 1e-11) }
	if got.N != 57 || !eq(got.Mean, ratio) || got.Mean != r.Ratio() || !eq(got.M2, lin.M2) || !eq(lin.Mean, ratio) {
		t.Errorf("Linearized = %+v, direct %+v (ratio %v)", got, lin, ratio)
	}
	if !eq(r.Variance(), v) || !eq(got.M2/56/57, v) {
		t.Errorf("Variance %v, M2/(K−1)/K %v, direct %v", r.Variance(), got.M2/56/57, v)
	}
	if (RatioStats{}).Linearized() != (CellStats{}) {
		t.Error("empty RatioStats should linearise to empty CellStats")
	}
	one := ratioStatsOf(us[:1]).Linearized()
	if one.N != 1 || one.M2 != 0 || one.Mean != us[0].s/us[0].n {
		t.Errorf("one unit: %+v", one)
	}
}

// ratioTable2x2 builds a 2×2 ratio table from units, merging each cell's
// units in chunks (as several consumers would).
func ratioTable2x2(t *testing.T, cells [4][]unitPair) *CellTable {
	t.Helper()
	tab, err := NewCellTable([]Factor{{Name: "a", Levels: []string{"ctl", "v"}}, {Name: "b", Levels: []string{"ctl", "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, us := range cells {
		lv := tab.Levels(i, nil)
		names := []string{tab.Factors[0].Levels[lv[0]], tab.Factors[1].Levels[lv[1]]}
		for lo := 0; lo < len(us); lo += 7 {
			if err := tab.MergeRatioCell(names, ratioStatsOf(us[lo:min(lo+7, len(us))])); err != nil {
				t.Fatal(err)
			}
		}
	}
	return tab
}

// TestRatioTableDirect checks a 2×2 ratio table's Wald tests and
// estimates against the direct formulas: with cells 00, 01, 10, 11 (a
// first), ratios R and variances v, the a effect is
// ((R10 + R11) − (R00 + R01))/2 with variance Σv/4, a 1-df Wald statistic
// of (effect/SE)², and the a:b contrast R11 − R10 − R01 + R00 with
// variance Σv.
func TestRatioTableDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var cells [4][]unitPair
	var R, v [4]float64
	for i := range cells {
		cells[i] = randomUnits(rng, 40+10*i, 2+0.3*float64(i*i))
		R[i], v[i] = dengVariance(cells[i])
	}
	tab := ratioTable2x2(t, cells)
	eq := func(a, b float64) bool { return scalar.EqualWithinAbsOrRel(a, b, 1e-14, 1e-10) }
	sumV := v[0] + v[1] + v[2] + v[3]
	effA := (R[2] + R[3] - R[0] - R[1]) / 2
	effB := (R[1] + R[3] - R[0] - R[2]) / 2
	ab := R[3] - R[2] - R[1] + R[0]
	mean := (R[0] + R[1] + R[2] + R[3]) / 4

	a, err := Anova(tab, TypeIII)
	if err != nil {
		t.Fatal(err)
	}
	if a.Test != TestWald || a.N != 40+50+60+70 {
		t.Errorf("test %q, N %d", a.Test, a.N)
	}
	for _, c := range []struct {
		term string
		want float64
	}{
		{"(Intercept)", mean * mean / (sumV / 16)},
		{"a", effA * effA / (sumV / 4)},
		{"b", effB * effB / (sumV / 4)},
		{"a:b", ab * ab / sumV},
	} {
		row := a.Term(c.term)
		p := distuv.ChiSquared{K: 1}.Survival(c.want)
		if row == nil || !row.Tested || row.DF != 1 || !eq(row.Chisq, c.want) || !scalar.EqualWithinAbsOrRel(row.P, p, 1e-14, 1e-9) ||
			row.SS != 0 || row.F != 0 {
			t.Errorf("%s = %+v, want χ² %v p %v", c.term, row, c.want, p)
		}
	}
	// The residual row is the pooled variance of the linearised values.
	var m2 float64
	for i := range cells {
		m2 += v[i] * float64(len(cells[i])) * float64(len(cells[i])-1)
	}
	if a.Residual.DF != 220-4 || !eq(a.Residual.SS, m2) || !eq(a.Residual.MS, m2/216) {
		t.Errorf("residual %+v, want df 216 SS %v", a.Residual, m2)
	}

	e, err := Estimate(tab, 0.95)
	if err != nil {
		t.Fatal(err)
	}
	z := distuv.UnitNormal.Quantile(0.975)
	ea := e.Effect("a", "v")
	if e.Test != TestZ || e.DF != 0 || e.MSE != 0 || ea.Note != "" || !eq(ea.Diff, effA) || !eq(ea.DiffSE, math.Sqrt(sumV)/2) ||
		!eq(ea.DiffCI.Lo, effA-z*math.Sqrt(sumV)/2) || !eq(ea.T, effA/(math.Sqrt(sumV)/2)) ||
		!scalar.EqualWithinAbsOrRel(ea.P, 2*distuv.UnitNormal.Survival(math.Abs(ea.T)), 1e-14, 1e-9) {
		t.Errorf("effect a = %+v (test %q)", ea, e.Test)
	}
	if c := e.Interaction("a:b"); !eq(c.Estimate, ab) || !eq(c.SE, math.Sqrt(sumV)) || !eq(c.CI.Hi, ab+z*math.Sqrt(sumV)) {
		t.Errorf("a:b = %+v, want %v ± %v", c, ab, math.Sqrt(sumV))
	}
	if c := e.Cells[3]; c.N != 70 || !eq(c.Mean, R[3]) || !eq(c.SE, math.Sqrt(v[3])) {
		t.Errorf("cell 11 = %+v, want %v ± %v", c, R[3], math.Sqrt(v[3]))
	}
	if m := e.Marginal[1]; !eq(m.Mean, (R[2]+R[3])/2) || !eq(m.SE, math.Sqrt(v[2]+v[3])/2) {
		t.Errorf("marginal a=v = %+v", m)
	}
}

// TestRatioTableRules: Types I and II are an error, ratio and ordinary
// observations do not mix, invalid statistics are refused, tables merge,
// and cells that cannot be tested say why.
func TestRatioTableRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var cells [4][]unitPair
	for i := range cells {
		cells[i] = randomUnits(rng, 20, 2)
	}
	tab := ratioTable2x2(t, cells)
	for _, typ := range []SSType{TypeI, TypeII} {
		if _, err := Anova(tab, typ); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "only Type III") {
			t.Errorf("Type %s on a ratio table: %v", typ, err)
		}
	}
	lv := []string{"ctl", "v"}
	if err := tab.Add(lv, 1); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Add on a ratio table: %v", err)
	}
	if err := tab.MergeCell(lv, CellStats{N: 1, Mean: 1}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("MergeCell on a ratio table: %v", err)
	}
	plain, _ := NewCellTable(tab.Factors)
	_ = plain.Add(lv, 1)
	if err := plain.MergeRatioCell(lv, ratioStatsOf(cells[0])); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("MergeRatioCell on an ordinary table: %v", err)
	}
	if err := plain.Merge(tab); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("merging a ratio table into an ordinary one: %v", err)
	}
	for _, bad := range []RatioStats{{K: -1}, {K: 2, MeanS: 1}, {K: 2, MeanN: 1, M2S: math.NaN()}, {K: 2, MeanN: 1, M2N: -1}} {
		if err := tab.MergeRatioCell(lv, bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("MergeRatioCell(%+v): %v", bad, err)
		}
	}
	// Merging two half tables gives the whole table.
	var first, second [4][]unitPair
	for i := range cells {
		first[i], second[i] = cells[i][:9], cells[i][9:]
	}
	merged, _ := NewCellTable(tab.Factors)
	for _, part := range []*CellTable{ratioTable2x2(t, first), ratioTable2x2(t, second)} {
		if err := merged.Merge(part); err != nil {
			t.Fatal(err)
		}
	}
	for i := range tab.Cells {
		if g, w := merged.Cells[i], tab.Cells[i]; g.N != w.N || !scalar.EqualWithinAbsOrRel(g.Mean, w.Mean, 0, 1e-12) ||
			!scalar.EqualWithinAbsOrRel(g.M2, w.M2, 0, 1e-10) {
			t.Errorf("merged cell %d = %+v, want %+v", i, g, w)
		}
	}
	// A cell with one unit: means, no tests or intervals.
	one := cells
	one[2] = cells[2][:1]
	a, err := Anova(ratioTable2x2(t, one), TypeIII)
	if err != nil {
		t.Fatal(err)
	}
	if r := a.Term("a"); r.Tested || !r.Estimable || r.DF != 1 || r.P != 1 || !strings.Contains(r.Note, "cell a=v,b=ctl has one unit") {
		t.Errorf("one-unit cell: a = %+v", r)
	}
	e, _ := Estimate(ratioTable2x2(t, one), 0.9)
	if ef := e.Effect("a", "v"); ef.DiffSE != 0 || ef.Diff == 0 || !strings.Contains(ef.Note, "has one unit") {
		t.Errorf("one-unit cell: effect a = %+v", ef)
	}
	if ef := e.Effect("b", "v"); !strings.Contains(ef.Note, "has one unit") {
		t.Errorf("one-unit cell: effect b = %+v", ef)
	}
	// An empty cell: Type III not estimable, as for ordinary tables.
	empty := cells
	empty[1] = nil
	a, _ = Anova(ratioTable2x2(t, empty), TypeIII)
	if r := a.Term("a:b"); r.Estimable || a.Test != TestWald || !strings.Contains(r.Note, "cell a=ctl,b=v is empty") {
		t.Errorf("empty cell: a:b = %+v", r)
	}
}

func TestWriteWald(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var cells [4][]unitPair
	for i := range cells {
		cells[i] = randomUnits(rng, 30, float64(i))
	}
	tab := ratioTable2x2(t, cells)
	a, _ := Anova(tab, TypeIII)
	var b bytes.Buffer
	if err := WriteAnova(&b, a); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type III Wald chi-square (delta method) tests (contr.sum), N = 120 units", "Chisq", "Pr(>Chisq)", "a:b"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("Wald table lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "Sum Sq") {
		t.Errorf("Wald table shows sums of squares:\n%s", b.String())
	}
	e, _ := Estimate(tab, 0.95)
	b.Reset()
	if err := WriteEstimates(&b, e); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "normal intervals from each cell's delta-method variance") || strings.Contains(b.String(), "residual df") {
		t.Errorf("ratio estimates:\n%s", b.String())
	}
}

// ratioSim draws one window of a 2×2 ratio experiment with known truth.
// Unit u in cell c makes n_u = 1 + Geometric(1/4) requests (mean 4,
// variance 12); request j has value
//
//	y = μ_c + γ·(n_u − 4) + b_u + e_j,  b_u ~ N(0, 0.6²), e_j ~ N(0, 1)
//
// so requests of a unit are correlated (through b_u and n_u) and the cell's
// request-level ratio E[Σ y]/E[Σ n] is μ_c + γ·Var(n)/E[n] = μ_c + 3γ.
type ratioSim struct {
	mu    [4]float64 // cells 00, 01, 10, 11 (a first)
	gamma float64
	units [4]int
}

func (s ratioSim) truth(c int) float64 { return s.mu[c] + 3*s.gamma }

// draw returns the window's ratio table and, for comparison, the naive
// request-level table (every request an independent observation).
func (s ratioSim) draw(t *testing.T, rng *rand.Rand) (ratio, naive *CellTable) {
	var cells [4][]unitPair
	naive, _ = NewCellTable([]Factor{{Name: "a", Levels: []string{"ctl", "v"}}, {Name: "b", Levels: []string{"ctl", "v"}}})
	for c := range cells {
		cells[c] = make([]unitPair, s.units[c])
		for u := range cells[c] {
			n := 1
			for rng.Float64() >= 0.25 {
				n++
			}
			base := s.mu[c] + s.gamma*float64(n-4) + 0.6*rng.NormFloat64()
			var sum float64
			for j := 0; j < n; j++ {
				y := base + rng.NormFloat64()
				sum += y
				naive.Cells[c].Add(y)
			}
			cells[c][u] = unitPair{s: sum, n: float64(n)}
		}
	}
	return ratioTable2x2(t, cells), naive
}

// TestRatioCoverage: over 2,000 simulated windows with known truth, the
// 95% intervals of the ratio's main effects, interaction contrast and
// relative effect cover the truth 95% ± 2% of the time (±4 binomial SE),
// the Type III Wald test of a null main effect rejects at α = 0.05 in
// 5% ± 2%, while the naive request-level intervals (requests as
// independent rows) cover less than 90%: the check can tell.
func TestRatioCoverage(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	// b has no main effect (its marginal means are equal); a and a:b do.
	s := ratioSim{mu: [4]float64{1, 1.2, 1.5, 1.3}, gamma: 0.1, units: [4]int{300, 250, 350, 280}}
	truthA := (s.truth(2) + s.truth(3) - s.truth(0) - s.truth(1)) / 2
	truthAB := s.truth(3) - s.truth(2) - s.truth(1) + s.truth(0)
	truthRel := (s.truth(2)+s.truth(3))/(s.truth(0)+s.truth(1)) - 1
	const reps = 2000
	var covA, covB, covAB, covRel, rejectB, naiveA int
	rng := rand.New(rand.NewPCG(20260310, 1))
	for r := 0; r < reps; r++ {
		tab, naive := s.draw(t, rng)
		e, err := Estimate(tab, 0.95)
		if err != nil {
			t.Fatal(err)
		}
		a, err := Anova(tab, TypeIII)
		if err != nil {
			t.Fatal(err)
		}
		ne, _ := Estimate(naive, 0.95)
		in := func(ci Interval, x float64) int {
			if ci.Lo <= x && x <= ci.Hi {
				return 1
			}
			return 0
		}
		ea := e.Effect("a", "v")
		covA += in(ea.DiffCI, truthA)
		covB += in(e.Effect("b", "v").DiffCI, 0)
		covAB += in(e.Interaction("a:b").CI, truthAB)
		covRel += in(ea.RelCI, truthRel)
		naiveA += in(ne.Effect("a", "v").DiffCI, truthA)
		if a.Term("b").P < 0.05 {
			rejectB++
		}
	}
	rate := func(k int) float64 { return float64(k) / reps }
	t.Logf("coverage: a %.4f, b %.4f, a:b %.4f, rel a %.4f; naive a %.4f; Wald rejects null b at 5%%: %.4f",
		rate(covA), rate(covB), rate(covAB), rate(covRel), rate(naiveA), rate(rejectB))
	for _, c := range []struct {
		name string
		k    int
	}{{"a", covA}, {"b", covB}, {"a:b", covAB}, {"rel a", covRel}} {
		if r := rate(c.k); r < 0.93 || r > 0.97 {
			t.Errorf("coverage of %s = %.4f, want 0.95 ± 0.02", c.name, r)
		}
	}
	if r := rate(rejectB); r < 0.03 || r > 0.07 {
		t.Errorf("Wald test of the null b rejects %.4f at α = 0.05, want 0.05 ± 0.02", r)
	}
	if r := rate(naiveA); r >= 0.90 {
		t.Errorf("naive request-level coverage %.4f: the simulation does not discriminate", r)
	}
}

// TestRatioMatchesR: the ratio table (per-cell RatioStats of the units'
// (Σ y, requests), merged from chunks) gives R's Type III Wald
// chi-square tests and estimates from the request-level lm with the
// cluster-robust covariance scaled by K/(K − 1) per cell.
func TestRatioMatchesR(t *testing.T) {
	for _, path := range unitLevelFiles(t) {
		ref, units := loadUnitLevel(t, path)
		t.Run(strings.TrimSuffix(filepath.Base(path), ".expected.json"), func(t *testing.T) {
			tab := newRefTable(t, ref)
			rng := rand.New(rand.NewPCG(uint64(len(units)), 7))
			for i, us := range byCell(t, tab, units) {
				levels := tab.Levels(i, nil)
				names := make([]string, len(levels))
				for f, l := range levels {
					names[f] = tab.Factors[f].Levels[l]
				}
				chunks(rng, len(us), func(lo, hi int) {
					var r RatioStats
					for _, u := range us[lo:hi] {
						r.Add(u.sum, float64(u.n))
					}
					if err := tab.MergeRatioCell(names, r); err != nil {
						t.Fatal(err)
					}
				})
			}
			a, err := Anova(tab, TypeIII)
			if err != nil {
				t.Fatal(err)
			}
			if a.Test != TestWald || len(a.Terms)+1 != len(ref.Ratio.Type3) {
				t.Fatalf("test %q, %d terms; want %d rows", a.Test, len(a.Terms), len(ref.Ratio.Type3))
			}
			for _, w := range ref.Ratio.Type3 {
				g := a.Term(w.Term)
				if g == nil || !g.Tested || g.DF != w.DF || !scalar.EqualWithinAbsOrRel(g.Chisq, w.Chisq, 0, unitTol.rel) ||
					!scalar.EqualWithinAbsOrRel(g.P, w.P, unitTol.pAbs, unitTol.pRel) {
					t.Errorf("%s = %+v, want df %d χ² %.15g p %.15g", w.Term, g, w.DF, w.Chisq, w.P)
				}
			}
			e, err := Estimate(tab, ref.Ratio.Estimates.Level)
			if err != nil {
				t.Fatal(err)
			}
			if e.Test != TestZ {
				t.Errorf("estimates test %q", e.Test)
			}
			checkEstimates(t, e, ref.Ratio.Estimates, unitTol)
		})
	}
}
