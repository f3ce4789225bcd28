package analysis

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
)

// refRow is one row of an R reference table (testdata/anova/*.expected.json).
type refRow struct {
	Term string   `json:"term"`
	DF   float64  `json:"df"`
	SS   float64  `json:"ss"`
	F    *float64 `json:"f"`
	P    *float64 `json:"p"`
}

type refFile struct {
	Dataset  string   `json:"dataset"`
	Response string   `json:"response"`
	Factors  []string `json:"factors"`
	Type1    []refRow `json:"type1"`
	Type2    []refRow `json:"type2"`
	Type3    []refRow `json:"type3"`
}

func loadRef(t testing.TB, path string) (refFile, *CellTable) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ref refFile
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	f, err := os.Open(filepath.Join(filepath.Dir(path), ref.Dataset))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := ReadCSV(f, ref.Response, ref.Factors)
	if err != nil {
		t.Fatalf("%s: %v", ref.Dataset, err)
	}
	return ref, tab
}

// Tolerances of the R comparison.
const (
	ssRelTol = 1e-8 // SS and F, relative
	pRelTol  = 1e-8 // p, relative …
	pAbsTol  = 1e-12
)

func checkRow(t *testing.T, where string, got *AnovaTerm, want refRow) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: term %q missing", where, want.Term)
		return
	}
	if !got.Estimable || !got.Tested {
		t.Errorf("%s %s: estimable=%v tested=%v note=%q", where, want.Term, got.Estimable, got.Tested, got.Note)
	}
	if float64(got.DF) != want.DF {
		t.Errorf("%s %s: df = %d, want %v", where, want.Term, got.DF, want.DF)
	}
	if !scalar.EqualWithinAbsOrRel(got.SS, want.SS, 0, ssRelTol) {
		t.Errorf("%s %s: SS = %.15g, want %.15g", where, want.Term, got.SS, want.SS)
	}
	if !scalar.EqualWithinAbsOrRel(got.MS, want.SS/want.DF, 0, ssRelTol) {
		t.Errorf("%s %s: MS = %.15g, want %.15g", where, want.Term, got.MS, want.SS/want.DF)
	}
	if want.F != nil && !scalar.EqualWithinAbsOrRel(got.F, *want.F, 0, ssRelTol) {
		t.Errorf("%s %s: F = %.15g, want %.15g", where, want.Term, got.F, *want.F)
	}
	if want.P != nil && !scalar.EqualWithinAbsOrRel(got.P, *want.P, pAbsTol, pRelTol) {
		t.Errorf("%s %s: p = %.15g, want %.15g", where, want.Term, got.P, *want.P)
	}
}

func checkTable(t *testing.T, where string, got *AnovaTable, want []refRow) {
	t.Helper()
	n := 0
	for _, w := range want {
		switch w.Term {
		case "Residuals":
			if float64(got.Residual.DF) != w.DF {
				t.Errorf("%s: residual df = %d, want %v", where, got.Residual.DF, w.DF)
			}
			if !scalar.EqualWithinAbsOrRel(got.Residual.SS, w.SS, 0, ssRelTol) {
				t.Errorf("%s: residual SS = %.15g, want %.15g", where, got.Residual.SS, w.SS)
			}
		case "(Intercept)":
			if got.Intercept == nil {
				t.Errorf("%s: no intercept row", where)
				continue
			}
			checkRow(t, where, got.Intercept, w)
		default:
			n++
			checkRow(t, where, got.Term(w.Term), w)
		}
	}
	if len(got.Terms) != n {
		t.Errorf("%s: %d terms, want %d", where, len(got.Terms), n)
	}
	// R's order.
	i := 0
	for _, w := range want {
		if w.Term == "Residuals" || w.Term == "(Intercept)" {
			continue
		}
		if i < len(got.Terms) && got.Terms[i].Name != w.Term {
			t.Errorf("%s: term %d is %q, want %q", where, i, got.Terms[i].Name, w.Term)
		}
		i++
	}
}

// TestAnovaMatchesR compares every type on every reference dataset with
// R's anova() (Type I) and car::Anova (Types II and III, contr.sum).
func TestAnovaMatchesR(t *testing.T) {
	files, err := filepath.Glob("testdata/anova/*.expected.json")
	if err != nil || len(files) < 3 {
		t.Fatalf("reference files: %v %v", files, err)
	}
	for _, path := range files {
		ref, tab := loadRef(t, path)
		for _, tc := range []struct {
			typ  SSType
			rows []refRow
		}{{TypeI, ref.Type1}, {TypeII, ref.Type2}, {TypeIII, ref.Type3}} {
			if tc.rows == nil {
				continue
			}
			name := strings.TrimSuffix(ref.Dataset, ".csv") + "/type" + tc.typ.String()
			t.Run(name, func(t *testing.T) {
				if strings.HasPrefix(ref.Dataset, "empty_cell") {
					t.Skip("checked by TestAnovaEmptyCellMatchesR")
				}
				got, err := Anova(tab, tc.typ)
				if err != nil {
					t.Fatal(err)
				}
				checkTable(t, name, got, tc.rows)
			})
		}
	}
}

// TestAnovaEmptyCellMatchesR: with an empty cell, Type I matches R (a:b
// loses a df), Type II gives the same interaction row, and Type III is
// reported not estimable, naming the cell.
func TestAnovaEmptyCellMatchesR(t *testing.T) {
	ref, tab := loadRef(t, "testdata/anova/empty_cell.expected.json")
	a1, err := Anova(tab, TypeI)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ref.Type1 {
		switch w.Term {
		case "Residuals":
			if float64(a1.Residual.DF) != w.DF || !scalar.EqualWithinAbsOrRel(a1.Residual.SS, w.SS, 0, ssRelTol) {
				t.Errorf("residual %+v, want %+v", a1.Residual, w)
			}
		default:
			checkRow(t, "empty_cell/typeI", a1.Term(w.Term), w)
		}
	}
	if ab := a1.Term("a:b"); !strings.Contains(ab.Note, "df reduced from 2 to 1") || !strings.Contains(ab.Note, "cell a=t1,b=z is empty") {
		t.Errorf("a:b note = %q", ab.Note)
	}
	a2, err := Anova(tab, TypeII)
	if err != nil {
		t.Fatal(err)
	}
	// The highest-order term is adjusted for the same terms in Types I and II.
	if g, w := a2.Term("a:b"), a1.Term("a:b"); g.DF != 1 || !scalar.EqualWithinAbsOrRel(g.SS, w.SS, 0, 1e-9) {
		t.Errorf("type II a:b = %+v, want SS %v", g, w.SS)
	}
	a3, err := Anova(tab, TypeIII)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range append([]AnovaTerm{*a3.Intercept}, a3.Terms...) {
		if r.Estimable || r.Tested || r.P != 1 || r.F != 0 ||
			!strings.HasPrefix(r.Note, "not estimable: cell a=t1,b=z is empty") {
			t.Errorf("type III %s = %+v", r.Name, r)
		}
	}
	if len(a3.EmptyCells) != 1 || a3.EmptyCells[0] != "a=t1,b=z" {
		t.Errorf("EmptyCells = %v", a3.EmptyCells)
	}
}
