package analysis

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/integrate/quad"
	"gonum.org/v1/gonum/mat"
)

// rawDesign is raw rows of a factorial design for the independent
// computation: each row's levels and value.
type rawDesign struct {
	factors []Factor
	levels  [][]int
	y       []float64
}

func newRawDesign(t *testing.T, factors []Factor, ns []int, means []float64, seed uint64) (*rawDesign, *CellTable) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	tab, err := NewCellTable(factors)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawDesign{factors: factors}
	for c := range tab.Cells {
		lv := tab.Levels(c, nil)
		for j := 0; j < ns[c]; j++ {
			y := means[c] + 2*rng.NormFloat64()
			r.levels = append(r.levels, lv)
			r.y = append(r.y, y)
			tab.Cells[c].Add(y)
		}
	}
	return r, tab
}

// codingRow returns the contr.sum coding of one observation's levels for
// every term of the full factorial (intercept first, then the terms in
// allTerms order, each term's columns as products of its factors'
// contr.sum columns).
func codingRow(factors []Factor, lv []int) (row []float64, term []uint64) {
	row, term = []float64{1}, []uint64{0}
	for _, m := range allTerms(len(factors)) {
		cols := []float64{1}
		for f := range factors {
			if m&(1<<f) == 0 {
				continue
			}
			k := len(factors[f].Levels)
			var next []float64
			for _, c := range cols {
				for j := 0; j < k-1; j++ {
					v := 0.0
					switch lv[f] {
					case j:
						v = 1
					case k - 1:
						v = -1
					}
					next = append(next, c*v)
				}
			}
			cols = next
		}
		for _, c := range cols {
			row = append(row, c)
			term = append(term, m)
		}
	}
	return row, term
}

// mixtureLogE computes, by numerical integration on the raw rows, the log
// of Lindon et al.'s mixture likelihood ratio for term mask: the tested
// coefficients δ ~ N(0, σ²Φ⁻¹) with Φ = φ₀·(L L')⁻¹ (L the rows of the
// inverse cell coding that give δ from the cell means), the right-Haar
// prior (flat × dσ/σ) over the other coefficients and σ. The flat
// nuisance coefficients are integrated out by projection (a Gaussian
// integral); δ and log σ by Gauss–Legendre quadrature.
func mixtureLogE(t *testing.T, r *rawDesign, tab *CellTable, mask uint64, phi float64) float64 {
	t.Helper()
	n := len(r.y)
	var tested, nuis []int
	first, terms := codingRow(r.factors, tab.Levels(0, nil))
	for j, m := range terms {
		if m == mask {
			tested = append(tested, j)
		} else {
			nuis = append(nuis, j)
		}
	}
	p, d := len(nuis), len(tested)
	X := mat.NewDense(n, len(first), nil)
	for i, lv := range r.levels {
		row, _ := codingRow(r.factors, lv)
		X.SetRow(i, row)
	}
	// L: rows of K⁻¹ for the tested coefficients, K the cells × coefficients coding.
	C := len(tab.Cells)
	K := mat.NewDense(C, C, nil)
	for c := range tab.Cells {
		row, _ := codingRow(r.factors, tab.Levels(c, nil))
		K.SetRow(c, row)
	}
	var Kinv mat.Dense
	if err := Kinv.Inverse(K); err != nil {
		t.Fatal(err)
	}
	L := mat.NewDense(d, C, nil)
	for i, j := range tested {
		L.SetRow(i, Kinv.RawRowView(j))
	}
	var priorCov mat.Dense // Φ⁻¹ = L L'/φ₀
	priorCov.Mul(L, L.T())
	priorCov.Scale(1/phi, &priorCov)
	var chol mat.Cholesky
	if !chol.Factorize(mat.NewSymDense(d, priorCov.RawMatrix().Data)) {
		t.Fatal("prior covariance not positive definite")
	}
	var S mat.TriDense
	chol.LTo(&S)
	// Project out the nuisance columns: ỹ = (I − P_W) y, X̃ = (I − P_W) X_T.
	W := mat.NewDense(n, p, nil)
	for i, j := range nuis {
		W.SetCol(i, mat.Col(nil, j, X))
	}
	XT := mat.NewDense(n, d, nil)
	for i, j := range tested {
		XT.SetCol(i, mat.Col(nil, j, X))
	}
	resid := func(v *mat.Dense) *mat.Dense {
		var qr mat.QR
		qr.Factorize(W)
		var b, fit, out mat.Dense
		if err := qr.SolveTo(&b, false, v); err != nil {
			t.Fatal(err)
		}
		fit.Mul(W, &b)
		out.Sub(v, &fit)
		return &out
	}
	yt := resid(mat.NewDense(n, 1, r.y))
	xt := resid(XT)
	var rss0m, bm, Am mat.Dense
	rss0m.Mul(yt.T(), yt)
	bm.Mul(xt.T(), yt)
	Am.Mul(xt.T(), xt)
	rss0 := rss0m.At(0, 0)
	m := float64(n - p)
	// Integrands in s = log σ, relative to the H0 peak.
	s0 := 0.5 * math.Log(rss0/m)
	f0 := func(s float64) float64 { return -m*s - rss0*math.Exp(-2*s)/2 }
	peak := f0(s0)
	const nodes = 120
	sx, sw := make([]float64, nodes), make([]float64, nodes)
	quad.Legendre{}.FixedLocations(sx, sw, s0-2.5, s0+2.5)
	zx, zw := make([]float64, nodes), make([]float64, nodes)
	quad.Legendre{}.FixedLocations(zx, zw, -9, 9)
	var m0, m1 float64
	z := make([]float64, d)
	u := mat.NewVecDense(d, nil)
	idx := make([]int, d)
	for si, s := range sx {
		sig := math.Exp(s)
		m0 += sw[si] * math.Exp(f0(s)-peak)
		// Sum over the d-dimensional z grid (u = S z, z standard normal).
		for i := range idx {
			idx[i] = 0
		}
		for {
			wgt := sw[si]
			var zz float64
			for i, k := range idx {
				z[i] = zx[k]
				wgt *= zw[k]
				zz += z[i] * z[i]
			}
			u.MulVec(&S, mat.NewVecDense(d, z))
			ub := mat.Dot(u, mat.NewVecDense(d, mat.Col(nil, 0, &bm)))
			var Au mat.VecDense
			Au.MulVec(&Am, u)
			uAu := mat.Dot(u, &Au)
			q := rss0 - 2*sig*ub + sig*sig*uAu
			dens := math.Exp(-zz/2) / math.Pow(2*math.Pi, float64(d)/2)
			m1 += wgt * dens * math.Exp(-m*s-q*math.Exp(-2*s)/2-peak)
			i := d - 1
			for ; i >= 0; i-- {
				if idx[i]++; idx[i] < nodes {
					break
				}
				idx[i] = 0
			}
			if i < 0 {
				break
			}
		}
	}
	return math.Log(m1) - math.Log(m0)
}

// TestAnytimeMatchesMixtureIntegral checks the closed form of AnytimeValid
// against a direct numerical integration of the paper's mixture likelihood
// ratio on the raw rows, for two-level terms (d = 1) of an unbalanced 2×2
// and for the two-df main effect of a 3-level factor in an unbalanced 3×2.
func TestAnytimeMatchesMixtureIntegral(t *testing.T) {
	two := []Factor{{Name: "a", Levels: []string{"a0", "a1"}}, {Name: "b", Levels: []string{"b0", "b1"}}}
	three := []Factor{{Name: "a", Levels: []string{"a0", "a1", "a2"}}, {Name: "b", Levels: []string{"b0", "b1"}}}
	for _, tc := range []struct {
		name    string
		factors []Factor
		ns      []int
		means   []float64
		phi     float64
		terms   []uint64
	}{
		{"2x2", two, []int{5, 9, 6, 12}, []float64{10, 11, 10.5, 13}, 3, []uint64{1, 2, 3}},
		{"2x2 null", two, []int{7, 4, 8, 6}, []float64{10, 10, 10, 10}, 20, []uint64{1, 3}},
		{"3x2", three, []int{4, 6, 5, 7, 6, 5}, []float64{10, 11, 10.5, 12, 9, 11}, 2, []uint64{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, tab := newRawDesign(t, tc.factors, tc.ns, tc.means, uint64(len(tc.ns)))
			res, err := AnytimeValid(tab, AnytimeOptions{Alpha: 0.05, Phi: tc.phi})
			if err != nil {
				t.Fatal(err)
			}
			for _, mask := range tc.terms {
				got := res.Term(tab.TermName(mask))
				want := mixtureLogE(t, r, tab, mask, tc.phi)
				if !got.Tested || math.Abs(got.LogE-want) > 1e-6*math.Max(1, math.Abs(want)) {
					t.Errorf("%s: log E = %.10g (tested %v), numerical integral %.10g", got.Name, got.LogE, got.Tested, want)
				}
			}
		})
	}
}

// TestAnytimeBalancedFClosedForm: in a balanced design the log E of every
// term is Lindon et al.'s closed form in the F statistic of Anova with
// g = n/φ₀, and for two-level terms the effect's or contrast's confidence
// sequence excludes 0 exactly when the term's P ≤ α (same P).
func TestAnytimeBalancedFClosedForm(t *testing.T) {
	f := []Factor{{Name: "a", Levels: []string{"0", "1"}}, {Name: "b", Levels: []string{"0", "1", "2"}}, {Name: "c", Levels: []string{"0", "1"}}}
	tab, err := NewCellTable(f)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const n, phi = 40, 6.0
	for i := range tab.Cells {
		for j := 0; j < n; j++ {
			tab.Cells[i].Add(float64(i%3)*0.3 + rng.NormFloat64())
		}
	}
	an, err := Anova(tab, TypeIII)
	if err != nil {
		t.Fatal(err)
	}
	res, err := AnytimeValid(tab, AnytimeOptions{Alpha: 0.05, Phi: phi})
	if err != nil {
		t.Fatal(err)
	}
	nu, g := float64(an.Residual.DF), n/phi
	for i, row := range an.Terms {
		dd, F := float64(row.DF), row.F
		want := nu/2*math.Log1p(g) + (nu+dd)/2*(math.Log(nu+dd*F)-math.Log(nu*(1+g)+dd*F))
		if got := res.Terms[i]; math.Abs(got.LogE-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s: log E = %.12g, closed form %.12g", row.Name, got.LogE, want)
		}
	}
	check := func(e *AnytimeEstimate, term string) {
		tm := res.Term(term)
		if math.Abs(e.P-tm.P) > 1e-9*tm.P+1e-15 {
			t.Errorf("%s: contrast P %g, term P %g", term, e.P, tm.P)
		}
		if excl := e.CS.Lo > 0 || e.CS.Hi < 0; excl != (e.P <= 0.05) {
			t.Errorf("%s: CS %v excludes 0 = %v but P = %g", term, e.CS, excl, e.P)
		}
	}
	check(res.Effect("a", "1"), "a")
	check(res.Effect("c", "1"), "c")
	check(res.Interaction("a:c"), "a:c")
	if len(res.Interactions) != 1 {
		t.Errorf("interactions %d, want 1 (a:c)", len(res.Interactions))
	}
}

// TestAnytimeRobustMatchesIntegral checks the z version of a ratio
// table's effect against a numerical integral of the Gaussian mixture
// likelihood ratio with the delta-method variance plugged in.
func TestAnytimeRobustMatchesIntegral(t *testing.T) {
	f := []Factor{{Name: "a", Levels: []string{"0", "1"}}, {Name: "b", Levels: []string{"0", "1"}}}
	tab, err := NewCellTable(f)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for c := range tab.Cells {
		var rs RatioStats
		for u := 0; u < 30+10*c; u++ {
			k := 1 + rng.IntN(5)
			rs.Add(float64(k)*(2+0.2*float64(c))+rng.NormFloat64(), float64(k))
		}
		if err := tab.MergeRatioCell([]string{f[0].Levels[c/2], f[1].Levels[c%2]}, rs); err != nil {
			t.Fatal(err)
		}
	}
	const phi, sd = 4.0, 1.5
	res, err := AnytimeValid(tab, AnytimeOptions{Alpha: 0.05, Phi: phi, SD: sd})
	if err != nil {
		t.Fatal(err)
	}
	// Effect of a: θ = (R_{10} + R_{11})/2 − (R_{00} + R_{01})/2.
	w := []float64{-0.5, -0.5, 0.5, 0.5}
	var est, se2, sw2 float64
	for c, wc := range w {
		est += wc * tab.Ratios[c].Ratio()
		se2 += wc * wc * tab.Ratios[c].Variance()
		sw2 += wc * wc
	}
	tau2 := sd * sd / phi * sw2
	norm := func(x, v float64) float64 { return math.Exp(-x*x/(2*v)) / math.Sqrt(2*math.Pi*v) }
	e := quad.Fixed(func(th float64) float64 { return norm(est-th, se2) * norm(th, tau2) }, -20, 20, 2000, quad.Legendre{}, 0) / norm(est, se2)
	got := res.Effect("a", "1")
	if math.Abs(got.LogE-math.Log(e)) > 1e-8 {
		t.Errorf("log E = %.12g, integral %.12g", got.LogE, math.Log(e))
	}
	if res.Method != AnytimeZ || !got.Bounded {
		t.Errorf("method %q bounded %v", res.Method, got.Bounded)
	}
	// The CS boundary is where E = 1/α.
	at := func(th0 float64) float64 {
		return quad.Fixed(func(th float64) float64 { return norm(est-th, se2) * norm(th-th0, tau2) }, th0-20, th0+20, 2000, quad.Legendre{}, 0) / norm(est-th0, se2)
	}
	if v := at(got.CS.Hi); math.Abs(v*0.05-1) > 1e-6 {
		t.Errorf("E at the CS's upper end = %g, want 1/α = 20", v)
	}
}

// TestMixturePhi: φ₀/horizon minimises the known-variance boundary.
func TestMixturePhi(t *testing.T) {
	for _, alpha := range []float64{0.05, 0.01, 0.2} {
		r := MixturePhi(alpha, 1)
		width := func(r float64) float64 { return (1 + r) * math.Log((1+r)/(r*alpha*alpha)) }
		if !(width(r) < width(r*1.01) && width(r) < width(r*0.99)) {
			t.Errorf("alpha %v: r = %v is not the minimiser", alpha, r)
		}
	}
	if r := MixturePhi(0.05, 1000); math.Abs(r-121.5) > 0.5 {
		t.Errorf("MixturePhi(0.05, 1000) = %v, want ≈ 121.5", r)
	}
	if !math.IsNaN(MixturePhi(0, 10)) || !math.IsNaN(MixturePhi(0.05, 0)) {
		t.Error("invalid input should be NaN")
	}
}

// TestAnytimeAASimulation: A/A replications of a 2×2×2 design read after
// every 2% of a horizon of 100 units per cell. The fixed-horizon p-values
// read at every look reject (p < 0.05 at some look) far more often than
// 5%; the anytime-valid P rejects in at most 5% (+ Monte Carlo error)
// for every term, and the confidence sequences of the effects and
// contrasts cover 0 at every look in ≥ 95% of replications. Both the t
// version (normal data) and the z version (binary data) are checked.
func TestAnytimeAASimulation(t *testing.T) {
	reps := 400
	if testing.Short() {
		reps = 150
	}
	const horizon, looks, alpha = 100, 50, 0.05
	f := []Factor{{Name: "a", Levels: []string{"0", "1"}}, {Name: "b", Levels: []string{"0", "1"}}, {Name: "c", Levels: []string{"0", "1"}}}
	for _, robust := range []bool{false, true} {
		rng := rand.New(rand.NewPCG(11, uint64(len(f))+b2u(robust)))
		phi := MixturePhi(alpha, horizon)
		var fixedAny, avAny, csMiss int
		avTerm := make([]int, 7)
		for rep := 0; rep < reps; rep++ {
			tab, _ := NewCellTable(f)
			fixedHit, avHit, miss := false, make([]bool, 7), false
			for look := 1; look <= looks; look++ {
				for u := 0; u < 8*horizon/looks; u++ {
					y := rng.NormFloat64()
					if robust {
						y = b2f(rng.Float64() < 0.3)
					}
					tab.Cells[rng.IntN(8)].Add(y)
				}
				if tab.Cells[minCell(tab)].N < 3 {
					continue
				}
				an, _ := Anova(tab, TypeIII)
				for _, row := range an.Terms {
					fixedHit = fixedHit || (row.Tested && row.P < alpha)
				}
				res, err := AnytimeValid(tab, AnytimeOptions{Alpha: alpha, Phi: phi, Robust: robust, SD: 0.5})
				if err != nil {
					t.Fatal(err)
				}
				for i, row := range res.Terms {
					avHit[i] = avHit[i] || row.P <= alpha
				}
				for _, e := range append(res.Effects, res.Interactions...) {
					miss = miss || (e.Bounded && (e.CS.Lo > 0 || e.CS.Hi < 0))
				}
			}
			fixedAny += int(b2u(fixedHit))
			csMiss += int(b2u(miss))
			any := false
			for i, h := range avHit {
				avTerm[i] += int(b2u(h))
				any = any || h
			}
			avAny += int(b2u(any))
		}
		R := float64(reps)
		mc := 3 * math.Sqrt(alpha*(1-alpha)/R)
		t.Logf("robust=%v: %d reps, %d looks: fixed-horizon any term rejects at some look %.1f%%; anytime-valid per term %v (any term %.1f%%); CS of 7 contrasts missing 0 at some look %.1f%%",
			robust, reps, looks, 100*float64(fixedAny)/R, avTerm, 100*float64(avAny)/R, 100*float64(csMiss)/R)
		if float64(fixedAny)/R < 0.3 {
			t.Errorf("fixed-horizon p-values read at every look reject in only %.1f%% (expected far above 5%%)", 100*float64(fixedAny)/R)
		}
		for i, n := range avTerm {
			if float64(n)/R > alpha+mc {
				t.Errorf("term %d: anytime-valid rejection rate %.3f > %.3f", i, float64(n)/R, alpha+mc)
			}
		}
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func minCell(t *CellTable) int {
	m := 0
	for i, c := range t.Cells {
		if c.N < t.Cells[m].N {
			m = i
		}
	}
	return m
}
