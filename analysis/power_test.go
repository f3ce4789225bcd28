package analysis

import (
	"encoding/csv"
	"errors"
	"math"
	"os"
	"strconv"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/stat/distuv"
)

func readCSVFloats(t *testing.T, path string) ([]string, [][]float64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float64
	for _, r := range recs[1:] {
		row := make([]float64, len(r))
		for i, s := range r {
			row[i], err = strconv.ParseFloat(s, 64)
			if err != nil {
				row[i] = math.NaN()
			}
		}
		rows = append(rows, row)
	}
	return recs[0], rows
}

// TestNoncentralFCDF checks the series against 40-digit mpmath values
// (testdata/gen/noncentral_f.py) and against R's pf, over x, df and
// noncentrality from 0 (central) to 150.
func TestNoncentralFCDF(t *testing.T) {
	_, mp := readCSVFloats(t, "testdata/power/noncentral_f_mpmath.csv")
	_, r := readCSVFloats(t, "testdata/power/noncentral_f.csv")
	if len(mp) != 225 || len(r) != len(mp) {
		t.Fatalf("%d mpmath rows, %d R rows", len(mp), len(r))
	}
	for i, row := range mp {
		x, d1, d2, ncp, cdf, sf := row[0], row[1], row[2], row[3], row[4], row[5]
		got := NoncentralFCDF(x, d1, d2, ncp)
		if !scalar.EqualWithinAbsOrRel(got, cdf, 1e-14, 1e-8) {
			t.Errorf("CDF(%v; %v, %v, %v) = %.17g, mpmath %.17g", x, d1, d2, ncp, got, cdf)
		}
		gotSF := NoncentralFSurvival(x, d1, d2, ncp)
		if !scalar.EqualWithinAbsOrRel(gotSF, sf, 1e-14, 1e-8) {
			t.Errorf("SF(%v; %v, %v, %v) = %.17g, mpmath %.17g", x, d1, d2, ncp, gotSF, sf)
		}
		// R's pnbeta is good to ~1e-9 absolute.
		if !scalar.EqualWithinAbsOrRel(got, r[i][4], 1e-9, 0) {
			t.Errorf("CDF(%v; %v, %v, %v) = %.17g, R %.17g", x, d1, d2, ncp, got, r[i][4])
		}
	}
}

func TestNoncentralFEdges(t *testing.T) {
	// λ = 0 is the central F.
	for _, x := range []float64{0.1, 1, 3, 20} {
		want := distuv.F{D1: 3, D2: 12}.CDF(x)
		if got := NoncentralFCDF(x, 3, 12, 0); !scalar.EqualWithinAbsOrRel(got, want, 1e-15, 1e-13) {
			t.Errorf("central CDF(%v) = %v, want %v", x, got, want)
		}
	}
	for _, tc := range []struct {
		name              string
		x, d1, d2, lambda float64
		cdf               float64
	}{
		{"x ≤ 0", -1, 2, 3, 4, 0},
		{"x = 0", 0, 2, 3, 4, 0},
		{"x = +Inf", math.Inf(1), 2, 3, 4, 1},
		{"d1 = 0", 1, 0, 3, 4, math.NaN()},
		{"d2 < 0", 1, 2, -3, 4, math.NaN()},
		{"λ < 0", 1, 2, 3, -1, math.NaN()},
		{"λ NaN", 1, 2, 3, math.NaN(), math.NaN()},
		{"x NaN", math.NaN(), 2, 3, 1, math.NaN()},
	} {
		got := NoncentralFCDF(tc.x, tc.d1, tc.d2, tc.lambda)
		if !(got == tc.cdf || math.IsNaN(got) && math.IsNaN(tc.cdf)) {
			t.Errorf("%s: CDF = %v, want %v", tc.name, got, tc.cdf)
		}
	}
	// A large noncentrality still converges, and CDF + SF = 1 (to the
	// accuracy of RegIncBeta at large parameters).
	for _, tc := range []struct{ lambda, tol float64 }{{1e3, 1e-12}, {1e5, 1e-10}} {
		lambda := tc.lambda
		c := NoncentralFCDF(lambda/2, 4, 200, lambda)
		s := NoncentralFSurvival(lambda/2, 4, 200, lambda)
		if math.IsNaN(c) || !scalar.EqualWithinAbsOrRel(c+s, 1, tc.tol, 0) {
			t.Errorf("λ = %v: CDF %v + SF %v", lambda, c, s)
		}
	}
}

func TestPower(t *testing.T) {
	// λ = 0: the power is the level.
	if p := Power(2, 30, 0, 0.05); !scalar.EqualWithinAbsOrRel(p, 0.05, 1e-12, 0) {
		t.Errorf("Power(λ=0) = %v", p)
	}
	// Increasing in λ and in v.
	prev := 0.0
	for _, l := range []float64{0, 1, 2, 5, 10, 20, 50} {
		p := Power(3, 40, l, 0.05)
		if p <= prev {
			t.Errorf("Power(λ=%v) = %v not above %v", l, p, prev)
		}
		prev = p
	}
	// R: pwr.f2.test(u=1, v=784.8114, f2=0.01)$power = 0.8.
	if p := Power(1, 784.811391875656, 0.01*(1+784.811391875656+1), 0.05); !scalar.EqualWithinAbsOrRel(p, 0.8, 1e-7, 0) {
		t.Errorf("Power = %v, want 0.8", p)
	}
	for _, bad := range [][4]float64{{0, 1, 1, 0.05}, {1, 0, 1, 0.05}, {1, 1, -1, 0.05}, {1, 1, 1, 0}, {1, 1, 1, 1}} {
		if p := Power(bad[0], bad[1], bad[2], bad[3]); !math.IsNaN(p) {
			t.Errorf("Power%v = %v, want NaN", bad, p)
		}
	}
}

// TestSampleSizeMatchesPwr compares with R's pwr (testdata/power/pwr.csv),
// including the three values of the brief: v = 784.81, n = 273.54,
// n = 393.41. pwr's uniroot stops at a tolerance of ~1e-4, so 1e-2
// absolute.
func TestSampleSizeMatchesPwr(t *testing.T) {
	f, err := os.Open("testdata/power/pwr.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	for _, r := range recs[1:] {
		fn, a, b, alpha, power, want := r[0], num(r[1]), num(r[2]), num(r[3]), num(r[4]), num(r[5])
		var got float64
		var err error
		switch fn {
		case "f2":
			got, err = SampleSizeF2(int(a), b, alpha, power)
		case "anova":
			got, err = SampleSizeANOVA(int(a), b, alpha, power)
		case "t":
			got, err = SampleSizeTTest(a, alpha, power)
		default:
			t.Fatalf("unknown row %v", r)
		}
		if err != nil || !scalar.EqualWithinAbsOrRel(got, want, 1e-2, 0) {
			t.Errorf("%s(%v, %v, alpha %v, power %v) = %v, %v; want %v", fn, a, b, alpha, power, got, err, want)
		}
	}
	for _, tc := range []struct {
		name string
		got  func() (float64, error)
		want float64
	}{
		{"pwr.f2.test(u=1,f2=0.01)", func() (float64, error) { return SampleSizeF2(1, 0.01, 0.05, 0.8) }, 784.81},
		{"pwr.anova.test(k=4,f=0.1)", func() (float64, error) { return SampleSizeANOVA(4, 0.1, 0.05, 0.8) }, 273.54},
		{"pwr.t.test(d=0.2)", func() (float64, error) { return SampleSizeTTest(0.2, 0.05, 0.8) }, 393.41},
		{"pwr.t.test(d=-0.2)", func() (float64, error) { return SampleSizeTTest(-0.2, 0.05, 0.8) }, 393.41},
	} {
		got, err := tc.got()
		if err != nil || !scalar.EqualWithinAbsOrRel(got, tc.want, 1e-2, 0) {
			t.Errorf("%s = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// TestSampleSizeTerm: for a two-level main effect of a 2^k design, the
// per-cell n times the cells is the f² test's total N with f = mde/(2σ),
// and the power at the returned n is the target.
func TestSampleSizeTerm(t *testing.T) {
	for _, tc := range []struct {
		u, cells       int
		mde, sd, alpha float64
		power          float64
	}{
		{1, 4, 0.5, 2, 0.05, 0.8},
		{1, 8, 1, 5, 0.05, 0.8},
		{1, 32, 0.2, 1, 0.01, 0.9},
		{2, 6, 1, 2, 0.05, 0.8},
	} {
		n, err := SampleSizeTerm(tc.u, tc.cells, tc.mde, tc.sd, tc.alpha, tc.power)
		if err != nil {
			t.Fatal(err)
		}
		f := MDEToF(tc.mde, tc.sd, tc.u)
		if tc.u == 1 && !scalar.EqualWithinAbsOrRel(f, tc.mde/(2*tc.sd), 0, 1e-15) {
			t.Errorf("f = %v, want mde/(2σ)", f)
		}
		C := float64(tc.cells)
		if p := Power(float64(tc.u), C*(n-1), f*f*C*n, tc.alpha); !scalar.EqualWithinAbsOrRel(p, tc.power, 1e-9, 0) {
			t.Errorf("%+v: power at n = %v is %v", tc, n, p)
		}
		// Same design as pwr.f2.test with v = cells·(n − 1): the total N is
		// u + v + 1 only when u + 1 = cells; in general the term's λ = f²·N.
		if tc.u+1 == tc.cells {
			v, _ := SampleSizeF2(tc.u, f*f, tc.alpha, tc.power)
			if !scalar.EqualWithinAbsOrRel(C*n, float64(tc.u)+v+1, 1e-6, 0) {
				t.Errorf("%+v: N = %v, f2 test N = %v", tc, C*n, float64(tc.u)+v+1)
			}
		}
	}
	// A two-group design is the t test: per-cell n equals pwr.t.test's n
	// for d = mde/sd.
	n, _ := SampleSizeTerm(1, 2, 0.2, 1, 0.05, 0.8)
	if !scalar.EqualWithinAbsOrRel(n, 393.41, 1e-2, 0) {
		t.Errorf("two cells: n = %v, want 393.41", n)
	}
	// Doubling the cells of a 2^k design halves the per-cell n (about).
	n4, _ := SampleSizeTerm(1, 4, 0.2, 1, 0.05, 0.8)
	n8, _ := SampleSizeTerm(1, 8, 0.2, 1, 0.05, 0.8)
	if r := n4 / n8; r < 1.99 || r > 2.01 {
		t.Errorf("n4/n8 = %v", r)
	}
}

func TestSampleSizeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func() error
		is   error
	}{
		{"f2 u=0", func() error { _, err := SampleSizeF2(0, 0.1, 0.05, 0.8); return err }, ErrInvalidInput},
		{"f2 f2=0", func() error { _, err := SampleSizeF2(1, 0, 0.05, 0.8); return err }, ErrInvalidInput},
		{"alpha=0", func() error { _, err := SampleSizeF2(1, 0.1, 0, 0.8); return err }, ErrInvalidInput},
		{"power=1", func() error { _, err := SampleSizeF2(1, 0.1, 0.05, 1); return err }, ErrInvalidInput},
		{"power<alpha", func() error { _, err := SampleSizeF2(1, 0.1, 0.5, 0.4); return err }, ErrInvalidInput},
		{"anova k=1", func() error { _, err := SampleSizeANOVA(1, 0.1, 0.05, 0.8); return err }, ErrInvalidInput},
		{"t d=0", func() error { _, err := SampleSizeTTest(0, 0.05, 0.8); return err }, ErrInvalidInput},
		{"t d=NaN", func() error { _, err := SampleSizeTTest(math.NaN(), 0.05, 0.8); return err }, ErrInvalidInput},
		{"term cells<u+1", func() error { _, err := SampleSizeTerm(3, 3, 1, 1, 0.05, 0.8); return err }, ErrInvalidInput},
		{"term sd=0", func() error { _, err := SampleSizeTerm(1, 4, 1, 0, 0.05, 0.8); return err }, ErrInvalidInput},
		{"tiny effect", func() error { _, err := SampleSizeTTest(1e-6, 0.05, 0.8); return err }, ErrNoConvergence},
	} {
		if err := tc.err(); !errors.Is(err, tc.is) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.is)
		}
	}
}
