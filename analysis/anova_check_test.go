package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/mat"
)

// rawData is a factorial data set kept row by row, to check the
// cell-statistics ANOVA against least squares on the raw rows.
type rawData struct {
	nlev   []int
	levels [][]int // per row
	y      []float64
	table  *CellTable
}

// randomData draws a full factorial design with nlev levels per factor,
// n per cell uniform in [minN, maxN], with main effects and interactions.
func randomData(rng *rand.Rand, nlev []int, minN, maxN int, offset float64) *rawData {
	factors := make([]Factor, len(nlev))
	for f, k := range nlev {
		factors[f].Name = string(rune('a' + f))
		for l := 0; l < k; l++ {
			factors[f].Levels = append(factors[f].Levels, fmt.Sprintf("%c%d", 'a'+f, l))
		}
	}
	tab, err := NewCellTable(factors)
	if err != nil {
		panic(err)
	}
	d := &rawData{nlev: nlev, table: tab}
	eff := make([]float64, len(tab.Cells))
	for i := range eff {
		eff[i] = rng.NormFloat64()
	}
	var lv []int
	for i := range tab.Cells {
		lv = tab.Levels(i, lv)
		n := minN + rng.IntN(maxN-minN+1)
		for j := 0; j < n; j++ {
			y := offset + 0.8*eff[i] + float64(lv[0]) + rng.NormFloat64()
			d.levels = append(d.levels, append([]int(nil), lv...))
			d.y = append(d.y, y)
			tab.Cells[i].Add(y)
		}
	}
	return d
}

// columns returns the raw-row model columns of term mask (0: intercept).
func (d *rawData) columns(mask uint64, coding Coding) [][]float64 {
	fs := maskFactors(mask)
	var cols [][]float64
	j := make([]int, len(fs))
	for {
		col := make([]float64, len(d.y))
		for r := range col {
			v := 1.0
			for i, f := range fs {
				l, k := d.levels[r][f], d.nlev[f]
				switch {
				case coding == Treatment && l == j[i]+1:
				case coding == Treatment:
					v = 0
				case l == j[i]:
				case l == k-1:
					v = -v
				default:
					v = 0
				}
			}
			col[r] = v
		}
		cols = append(cols, col)
		i := len(fs) - 1
		for ; i >= 0; i-- {
			if j[i]++; j[i] < d.nlev[fs[i]]-1 {
				break
			}
			j[i] = 0
		}
		if i < 0 {
			return cols
		}
	}
}

// rss fits the columns of the given terms by QR least squares on the raw
// rows and returns the residual sum of squares.
func (d *rawData) rss(t *testing.T, terms []uint64, coding Coding) float64 {
	t.Helper()
	var cols [][]float64
	for _, m := range terms {
		cols = append(cols, d.columns(m, coding)...)
	}
	y := mat.NewVecDense(len(d.y), append([]float64(nil), d.y...))
	if len(cols) == 0 {
		return mat.Dot(y, y)
	}
	X := mat.NewDense(len(d.y), len(cols), nil)
	for c, col := range cols {
		X.SetCol(c, col)
	}
	var qr mat.QR
	qr.Factorize(X)
	var beta mat.VecDense
	if err := qr.SolveVecTo(&beta, false, y); err != nil {
		t.Fatalf("least squares: %v", err)
	}
	var fit, res mat.VecDense
	fit.MulVec(X, &beta)
	res.SubVec(y, &fit)
	return mat.Dot(&res, &res)
}

// TestAnovaMatchesRawLeastSquares checks every type, and Type III under
// both codings, against the definitions applied to the raw rows with
// gonum/mat QR: Type I sequential, Type II against the terms that do not
// contain the term, Type III dropping the term's columns from the full
// model. It exercises the claim that cell statistics are sufficient.
func TestAnovaMatchesRawLeastSquares(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, tc := range []struct {
		nlev       []int
		minN, maxN int
		offset     float64
	}{
		{[]int{2, 2}, 1, 9, 0},
		{[]int{3, 2}, 2, 6, 100},
		{[]int{2, 3, 4}, 1, 5, 10},
		{[]int{2, 2, 2, 2}, 1, 6, 1000},
		{[]int{4, 3}, 1, 3, -50},
		{[]int{5}, 1, 10, 3},
		{[]int{2, 2, 2, 2, 2}, 1, 4, 7},
	} {
		d := randomData(rng, tc.nlev, tc.minN, tc.maxN, tc.offset)
		masks := allTerms(len(tc.nlev))
		all := append([]uint64{0}, masks...)
		full := d.rss(t, all, SumToZero)
		tol := func(got, want float64) bool {
			return scalar.EqualWithinAbsOrRel(got, want, 1e-9*(1+full), 1e-7)
		}
		name := fmt.Sprint(tc.nlev)
		t.Run(name, func(t *testing.T) {
			a1, err := Anova(d.table, TypeI)
			if err != nil {
				t.Fatal(err)
			}
			if !tol(a1.Residual.SS, full) {
				t.Errorf("residual SS = %v, raw RSS %v", a1.Residual.SS, full)
			}
			if a1.Residual.DF != int64(len(d.y)-len(d.table.Cells)) {
				t.Errorf("residual df = %d", a1.Residual.DF)
			}
			prev := d.rss(t, all[:1], SumToZero)
			for i, m := range masks {
				cur := d.rss(t, all[:i+2], SumToZero)
				if !tol(a1.Terms[i].SS, prev-cur) {
					t.Errorf("type I %s: SS %v, raw %v", a1.Terms[i].Name, a1.Terms[i].SS, prev-cur)
				}
				prev = cur
				_ = m
			}
			a2, err := Anova(d.table, TypeII)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range masks {
				base := []uint64{0}
				for _, u := range masks {
					if u&m != m {
						base = append(base, u)
					}
				}
				want := d.rss(t, base, SumToZero) - d.rss(t, append(base, m), SumToZero)
				if !tol(a2.Terms[i].SS, want) {
					t.Errorf("type II %s: SS %v, raw %v", a2.Terms[i].Name, a2.Terms[i].SS, want)
				}
			}
			for _, coding := range []Coding{SumToZero, Treatment} {
				a3, err := Anova(d.table, TypeIII, WithCoding(coding))
				if err != nil {
					t.Fatal(err)
				}
				if a3.Coding != coding {
					t.Errorf("coding = %v", a3.Coding)
				}
				fullC := d.rss(t, all, coding)
				for i, m := range all {
					var rest []uint64
					for _, u := range all {
						if u != m {
							rest = append(rest, u)
						}
					}
					want := d.rss(t, rest, coding) - fullC
					row := a3.Intercept
					if m != 0 {
						row = &a3.Terms[i-1]
					}
					if !tol(row.SS, want) {
						t.Errorf("type III %v %s: SS %v, raw %v", coding, row.Name, row.SS, want)
					}
					if row.DF != nominalDF(tc.nlev, m) {
						t.Errorf("type III %s: df %d", row.Name, row.DF)
					}
				}
			}
		})
	}
}

// TestAnovaBalancedTypesAgree: with equal n in every cell the three types
// give the same table, and the SS add up to the total.
func TestAnovaBalancedTypesAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	d := randomData(rng, []int{2, 3, 2}, 4, 4, 20)
	var tabs [3]*AnovaTable
	for i, typ := range []SSType{TypeI, TypeII, TypeIII} {
		var err error
		if tabs[i], err = Anova(d.table, typ); err != nil {
			t.Fatal(err)
		}
	}
	var sum float64
	for i := range tabs[0].Terms {
		sum += tabs[0].Terms[i].SS
		for j := 1; j < 3; j++ {
			if !scalar.EqualWithinAbsOrRel(tabs[j].Terms[i].SS, tabs[0].Terms[i].SS, 1e-10, 1e-10) {
				t.Errorf("%s: type %d SS %v, type I %v", tabs[0].Terms[i].Name, j+1, tabs[j].Terms[i].SS, tabs[0].Terms[i].SS)
			}
		}
	}
	var mean, total float64
	for _, y := range d.y {
		mean += y
	}
	mean /= float64(len(d.y))
	for _, y := range d.y {
		total += (y - mean) * (y - mean)
	}
	if !scalar.EqualWithinAbsOrRel(sum+tabs[0].Residual.SS, total, 0, 1e-10) {
		t.Errorf("SS add up to %v, total %v", sum+tabs[0].Residual.SS, total)
	}
}

// TestAnovaInvariance: the table does not depend on the order of a
// factor's levels (the control is only a label for the ANOVA).
func TestAnovaInvariance(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	d := randomData(rng, []int{3, 2, 2}, 1, 5, 5)
	perm := []int{2, 0, 1}
	f := append([]Factor(nil), d.table.Factors...)
	f[0] = Factor{Name: "a", Levels: []string{"a2", "a0", "a1"}}
	p, _ := NewCellTable(f)
	var lv []int
	for i, c := range d.table.Cells {
		lv = d.table.Levels(i, lv)
		old := lv[0]
		for ni, o := range perm {
			if o == old {
				lv[0] = ni
			}
		}
		p.Cells[p.Index(lv...)] = c
	}
	for _, typ := range []SSType{TypeI, TypeII, TypeIII} {
		a, _ := Anova(d.table, typ)
		b, _ := Anova(p, typ)
		for i := range a.Terms {
			if !scalar.EqualWithinAbsOrRel(a.Terms[i].SS, b.Terms[i].SS, 1e-12, 1e-10) {
				t.Errorf("type %v %s: %v vs %v after permuting levels", typ, a.Terms[i].Name, a.Terms[i].SS, b.Terms[i].SS)
			}
		}
	}
}

func TestAllTermsOrder(t *testing.T) {
	tab, _ := NewCellTable([]Factor{{Name: "a", Levels: []string{"0", "1"}}, {Name: "b", Levels: []string{"0", "1"}}, {Name: "c", Levels: []string{"0", "1"}}, {Name: "d", Levels: []string{"0", "1"}}})
	var names []string
	for _, m := range allTerms(4) {
		names = append(names, tab.TermName(m))
	}
	// R: attr(terms(y ~ a*b*c*d), "term.labels")
	want := "a b c d a:b a:c b:c a:d b:d c:d a:b:c a:b:d a:c:d b:c:d a:b:c:d"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("terms = %s\nwant    %s", got, want)
	}
	for _, m := range allTerms(6) {
		if bits.OnesCount64(m) == 0 {
			t.Error("empty term")
		}
	}
}

func TestAnovaErrors(t *testing.T) {
	one, _ := NewCellTable([]Factor{{Name: "a", Levels: []string{"x", "y"}}, {Name: "solo", Levels: []string{"only"}}})
	one.Cells[0].Add(1)
	one.Cells[1].Add(2)
	empty, _ := NewCellTable([]Factor{{Name: "a", Levels: []string{"x", "y"}}})
	bad, _ := NewCellTable([]Factor{{Name: "a", Levels: []string{"x", "y"}}})
	bad.Cells[0] = CellStats{N: 2, Mean: math.NaN()}
	short := &CellTable{Factors: []Factor{{Name: "a", Levels: []string{"x", "y"}}}, Cells: make([]CellStats, 3)}
	for _, tc := range []struct {
		name string
		tab  *CellTable
		typ  SSType
		is   error
		want string
	}{
		{"one level", one, TypeIII, ErrInvalidDesign, `factor "solo" has only one level ("only")`},
		{"no data", empty, TypeIII, ErrNoData, "every cell is empty"},
		{"nil table", nil, TypeI, ErrNoData, "nil table"},
		{"NaN mean", bad, TypeII, ErrInvalidInput, "invalid statistics"},
		{"cells mismatch", short, TypeII, ErrInvalidDesign, "3 cells for a design of 2"},
		{"bad type", empty, SSType(4), ErrInvalidInput, "ANOVA type 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Anova(tc.tab, tc.typ)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %v containing %q", err, tc.is, tc.want)
			}
		})
	}
	if _, err := Anova(one, TypeI, WithCoding(Coding(9))); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("bad coding: %v", err)
	}
}

// TestAnovaSingleObservation: one observation per cell leaves no residual
// df; SS are still computed but no F test, and nothing is NaN.
func TestAnovaSingleObservation(t *testing.T) {
	tab, _ := NewCellTable([]Factor{{Name: "a", Levels: []string{"x", "y"}}, {Name: "b", Levels: []string{"p", "q", "r"}}})
	for i, v := range []float64{1, 2, 4, 3, 5, 9} {
		tab.Cells[i].Add(v)
	}
	for _, typ := range []SSType{TypeI, TypeII, TypeIII} {
		a, err := Anova(tab, typ)
		if err != nil {
			t.Fatal(err)
		}
		if a.Residual.DF != 0 || a.Residual.SS != 0 || a.Residual.MS != 0 {
			t.Errorf("residual %+v", a.Residual)
		}
		for _, r := range a.Terms {
			if !r.Estimable || r.Tested || r.F != 0 || r.P != 1 || !strings.Contains(r.Note, "F not computable: residual df is 0") {
				t.Errorf("type %v %s = %+v", typ, r.Name, r)
			}
			if math.IsNaN(r.SS) || math.IsNaN(r.PartialEta2) || r.SS <= 0 {
				t.Errorf("type %v %s: SS %v η² %v", typ, r.Name, r.SS, r.PartialEta2)
			}
		}
		// a: means x = 7/3, y = 17/3 → SS = 6·(5/3)² = 50/3 in every type (balanced).
		if a := a.Term("a"); !scalar.EqualWithinAbsOrRel(a.SS, 50.0/3, 0, 1e-12) {
			t.Errorf("type %v: SS(a) = %v", typ, a.SS)
		}
	}
}

// TestAnovaEmptyCells: with empty cells, terms lose df or become not
// estimable with a reason; nothing panics and nothing is NaN.
func TestAnovaEmptyCells(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	for _, tc := range []struct {
		name  string
		nlev  []int
		empty [][]int
		// term → want df (-1: not estimable) for Type I
		df   map[string]int
		note map[string]string
	}{
		{"2x2 one empty", []int{2, 2}, [][]int{{1, 1}},
			map[string]int{"a": 1, "b": 1, "a:b": -1},
			map[string]string{"a:b": "not estimable: cell a=a1,b=b1 is empty"}},
		{"2x2x2 one empty", []int{2, 2, 2}, [][]int{{0, 1, 1}},
			map[string]int{"a": 1, "b": 1, "c": 1, "a:b": 1, "a:c": 1, "b:c": 1, "a:b:c": -1},
			map[string]string{"a:b:c": "not estimable: cell a=a0,b=b1,c=c1 is empty"}},
		{"2x2x2 a slice of b:c empty", []int{2, 2, 2}, [][]int{{0, 1, 1}, {1, 1, 1}},
			map[string]int{"a": 1, "b": 1, "c": 1, "a:b": 1, "a:c": 1, "b:c": -1, "a:b:c": -1},
			map[string]string{"b:c": "not estimable: cell b=b1,c=c1 is empty"}},
		{"3x3 two empty", []int{3, 3}, [][]int{{0, 2}, {2, 0}},
			map[string]int{"a": 2, "b": 2, "a:b": 2},
			map[string]string{"a:b": "df reduced from 4 to 2: cells a=a0,b=b2 and a=a2,b=b0 are empty"}},
		{"whole level empty", []int{3, 2}, [][]int{{2, 0}, {2, 1}},
			map[string]int{"a": 1, "b": 1, "a:b": 1},
			map[string]string{"a": "df reduced from 2 to 1: cell a=a2 is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := randomData(rng, tc.nlev, 2, 5, 3)
			for _, lv := range tc.empty {
				d.table.Cells[d.table.Index(lv...)] = CellStats{}
			}
			for _, typ := range []SSType{TypeI, TypeII, TypeIII} {
				a, err := Anova(d.table, typ)
				if err != nil {
					t.Fatal(err)
				}
				if len(a.EmptyCells) != len(tc.empty) {
					t.Errorf("EmptyCells = %v", a.EmptyCells)
				}
				rows := a.Terms
				if a.Intercept != nil {
					rows = append(rows, *a.Intercept)
				}
				for _, r := range rows {
					if math.IsNaN(r.SS) || math.IsNaN(r.F) || math.IsNaN(r.P) || math.IsNaN(r.MS) || math.IsNaN(r.PartialEta2) {
						t.Errorf("type %v %s has NaN: %+v", typ, r.Name, r)
					}
					if typ == TypeIII {
						if r.Estimable || !strings.Contains(r.Note, "Type III needs every cell") {
							t.Errorf("type III %s = %+v", r.Name, r)
						}
						continue
					}
					want := tc.df[r.Name]
					switch {
					case want < 0 && (r.Estimable || r.DF != 0 || r.P != 1):
						t.Errorf("type %v %s should not be estimable: %+v", typ, r.Name, r)
					case want >= 0 && (!r.Estimable || r.DF != want || !r.Tested):
						t.Errorf("type %v %s: df %d estimable %v, want df %d (%s)", typ, r.Name, r.DF, r.Estimable, want, r.Note)
					}
					if n, ok := tc.note[r.Name]; ok && typ == TypeI && r.Note != n {
						t.Errorf("type I %s note %q, want %q", r.Name, r.Note, n)
					}
				}
			}
		})
	}
}

// TestAnovaRandomEmptyCells: on random designs with random empty cells,
// no type panics or returns NaN, the results encode as JSON, Type I's df
// add up to the rank (non-empty cells − 1) and its SS to the total SS.
func TestAnovaRandomEmptyCells(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	for iter := 0; iter < 60; iter++ {
		k := 1 + rng.IntN(4)
		nlev := make([]int, k)
		for f := range nlev {
			nlev[f] = 2 + rng.IntN(3)
		}
		d := randomData(rng, nlev, 1, 3, 50)
		// Empty a random share of the cells, keeping at least one.
		share := rng.Float64()
		nonEmpty := 0
		for i := range d.table.Cells {
			if rng.Float64() < share {
				d.table.Cells[i] = CellStats{}
			} else {
				nonEmpty++
			}
		}
		if nonEmpty == 0 {
			d.table.Cells[0].Add(1)
			nonEmpty = 1
		}
		var total, sum, n float64
		for _, c := range d.table.Cells {
			sum += float64(c.N) * c.Mean
			n += float64(c.N)
		}
		for _, c := range d.table.Cells {
			if c.N > 0 {
				total += c.M2 + float64(c.N)*(c.Mean-sum/n)*(c.Mean-sum/n)
			}
		}
		for _, typ := range []SSType{TypeI, TypeII, TypeIII} {
			a, err := Anova(d.table, typ)
			if err != nil {
				t.Fatalf("%v type %v: %v", nlev, typ, err)
			}
			if _, err := json.Marshal(a); err != nil {
				t.Errorf("%v type %v: JSON: %v", nlev, typ, err)
			}
			dfSum, ssSum := 0, 0.0
			for _, r := range a.Terms {
				if math.IsNaN(r.SS+r.MS+r.F+r.P+r.PartialEta2) || r.SS < 0 || r.P < 0 || r.P > 1 {
					t.Errorf("%v type %v %s = %+v", nlev, typ, r.Name, r)
				}
				if r.Estimable != (r.DF > 0) || (!r.Estimable && r.Note == "") {
					t.Errorf("%v type %v %s = %+v", nlev, typ, r.Name, r)
				}
				dfSum += r.DF
				ssSum += r.SS
			}
			if typ == TypeI {
				if dfSum != nonEmpty-1 {
					t.Errorf("%v, %d non-empty cells: type I df add up to %d", nlev, nonEmpty, dfSum)
				}
				if !scalar.EqualWithinAbsOrRel(ssSum+a.Residual.SS, total, 1e-9, 1e-9) {
					t.Errorf("%v: type I SS add up to %v, total %v", nlev, ssSum+a.Residual.SS, total)
				}
			}
		}
		if _, err := Estimate(d.table, 0.95); err != nil {
			t.Errorf("%v: Estimate: %v", nlev, err)
		}
	}
}
