package analysis

import (
	"errors"
	"strings"
	"testing"
)

func TestCellTableIndexLevels(t *testing.T) {
	tab, err := NewCellTable([]Factor{
		{Name: "a", Levels: []string{"a0", "a1"}},
		{Name: "b", Levels: []string{"b0", "b1", "b2"}},
		{Name: "c", Levels: []string{"c0", "c1", "c2", "c3"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Cells) != 24 {
		t.Fatalf("%d cells", len(tab.Cells))
	}
	var lv []int
	for i := range tab.Cells {
		lv = tab.Levels(i, lv)
		if j := tab.Index(lv...); j != i {
			t.Errorf("Index(Levels(%d)) = %d", i, j)
		}
	}
	// Last factor fastest.
	if i := tab.Index(0, 0, 1); i != 1 {
		t.Errorf("Index(0,0,1) = %d", i)
	}
	if i := tab.Index(1, 0, 0); i != 12 {
		t.Errorf("Index(1,0,0) = %d", i)
	}
	if got := tab.CellName(tab.Index(1, 2, 3)); got != "a=a1,b=b2,c=c3" {
		t.Errorf("CellName = %q", got)
	}
	if got := tab.TermName(0b101); got != "a:c" {
		t.Errorf("TermName = %q", got)
	}
	if err := tab.Add([]string{"a1", "b2", "c3"}, 5); err != nil {
		t.Fatal(err)
	}
	if err := tab.MergeCell([]string{"a1", "b2", "c3"}, CellStats{N: 1, Mean: 7}); err != nil {
		t.Fatal(err)
	}
	if c := tab.Cells[23]; c.N != 2 || c.Mean != 6 || c.M2 != 2 {
		t.Errorf("cell = %+v", c)
	}
	if err := tab.Add([]string{"a1", "b9", "c3"}, 5); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("unknown level: %v", err)
	}
	if err := tab.Add([]string{"a1"}, 5); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("too few levels: %v", err)
	}
	other, _ := NewCellTable(tab.Factors)
	other.Cells[23].Add(6)
	if err := tab.Merge(other); err != nil || tab.Cells[23].N != 3 || tab.N() != 3 {
		t.Errorf("Merge: %v, %+v", err, tab.Cells[23])
	}
	bad, _ := NewCellTable([]Factor{{Name: "a", Levels: []string{"x", "y"}}})
	if err := tab.Merge(bad); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Merge of another design: %v", err)
	}
	if f, l, err := tab.LevelIndex("b", "b2"); f != 1 || l != 2 || err != nil {
		t.Errorf("LevelIndex = %d %d %v", f, l, err)
	}
}

func TestNewCellTableErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		factors []Factor
		want    string
	}{
		{"none", nil, "no factor"},
		{"unnamed", []Factor{{Name: "", Levels: []string{"x", "y"}}}, "no name"},
		{"colon", []Factor{{Name: "a:b", Levels: []string{"x", "y"}}}, "contains ':'"},
		{"duplicate factor", []Factor{{Name: "a", Levels: []string{"x", "y"}}, {Name: "a", Levels: []string{"x", "y"}}}, "appears twice"},
		{"duplicate level", []Factor{{Name: "a", Levels: []string{"x", "x"}}}, "level \"x\" twice"},
		{"no level", []Factor{{Name: "a"}}, "0 levels"},
		{"short reference", []Factor{{Name: "a", Levels: []string{"x", "y"}, Reference: []int{-1}}}, "1 references for 2 levels"},
		{"bad reference", []Factor{{Name: "a", Levels: []string{"x", "y"}, Reference: []int{-1, 2}}}, "reference 2, not a level"},
		{"too many cells", []Factor{
			{Name: "a", Levels: make2(1024)}, {Name: "b", Levels: make2(1024)}, {Name: "c", Levels: make2(2)},
		}, "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCellTable(tc.factors)
			if !errors.Is(err, ErrInvalidDesign) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func make2(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = strings.Repeat("x", i+1)
	}
	return s
}

func TestReadCSV(t *testing.T) {
	tab, err := ReadCSV(strings.NewReader("y,a,b,extra\n1,x,p,z\n2,x,q,z\n3,y,p,z\n5,y,p,z\n"), "y", []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Factors; got[0].Name != "a" || strings.Join(got[0].Levels, ",") != "x,y" || strings.Join(got[1].Levels, ",") != "p,q" {
		t.Errorf("factors = %+v", got)
	}
	if c := tab.Cells[tab.Index(1, 0)]; c.N != 2 || c.Mean != 4 || c.M2 != 2 {
		t.Errorf("cell y,p = %+v", c)
	}
	if c := tab.Cells[tab.Index(1, 1)]; c.N != 0 {
		t.Errorf("cell y,q = %+v", c)
	}
	// R's NA rows are skipped (na.omit); the level seen only with NA is not a level.
	tab, err = ReadCSV(strings.NewReader("y,a\n1,x\nNA,y\n2,y\n3,NA\n4,z\n"), "y", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	if tab.N() != 3 || strings.Join(tab.Factors[0].Levels, ",") != "x,y,z" {
		t.Errorf("NA rows: N = %d, levels %v", tab.N(), tab.Factors[0].Levels)
	}
}

func TestReadCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		csv     string
		factors []string
		want    []string
		is      error
	}{
		{"empty file", "", []string{"a"}, []string{"empty CSV"}, ErrNoData},
		{"header only", "y,a\n", []string{"a"}, []string{"no data rows"}, ErrNoData},
		{"missing response", "z,a\n1,x\n", []string{"a"}, []string{`column "y" not in CSV header`}, ErrInvalidInput},
		{"missing factor", "y,a\n1,x\n", []string{"a", "b"}, []string{`column "b" not in CSV header`}, ErrInvalidInput},
		{"non-numeric", "y,a\n1,x\n2,y\nabc,x\n", []string{"a"}, []string{"line 4", `column "y"`, `"abc"`}, ErrInvalidInput},
		{"NaN", "y,a\n1,x\nNaN,y\n", []string{"a"}, []string{"line 3", "not a finite number"}, ErrInvalidInput},
		{"empty level", "y,a\n1,x\n2,\n", []string{"a"}, []string{"line 3", `column "a" is empty`}, ErrInvalidInput},
		{"short row", "y,a\n1,x\n2\n", []string{"a"}, []string{"line 3"}, ErrInvalidInput},
		{"response is factor", "y,a\n1,x\n", []string{"y"}, []string{"both response and factor"}, ErrInvalidInput},
		{"quoted multi-line keeps line numbers", "y,a\n1,\"x\ny\"\nq,x\n", []string{"a"}, []string{"line 4"}, ErrInvalidInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCSV(strings.NewReader(tc.csv), "y", tc.factors)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestRowBuilder(t *testing.T) {
	if _, err := NewRowBuilder([]string{"a", "a"}); !errors.Is(err, ErrInvalidDesign) {
		t.Errorf("duplicate factor: %v", err)
	}
	b, err := NewRowBuilder([]string{"f"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Table(); !errors.Is(err, ErrNoData) {
		t.Errorf("empty builder: %v", err)
	}
	for i, l := range []string{"ctl", "v1", "ctl", "v2", "v1"} {
		if err := b.Add([]string{l}, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Add([]string{"ctl", "x"}, 1); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("wrong arity: %v", err)
	}
	tab, err := b.Table()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tab.Factors[0].Levels, ","); got != "ctl,v1,v2" {
		t.Errorf("levels = %s", got)
	}
	if c := tab.Cells[1]; c.N != 2 || c.Mean != 2.5 {
		t.Errorf("v1 = %+v", c)
	}
}

// FuzzReadCSV: ReadCSV never panics, and a table it returns holds every
// data row.
func FuzzReadCSV(f *testing.F) {
	f.Add("y,a,b\n1,x,p\n2,y,q\n")
	f.Add("y,a\n1.5e3,x\n-2,x\n")
	f.Add("y,a,b\n\"1\",\"x,y\",p\n")
	f.Add("")
	f.Add("y\n1\n")
	f.Fuzz(func(t *testing.T, s string) {
		tab, err := ReadCSV(strings.NewReader(s), "y", []string{"a", "b"})
		if err != nil {
			return
		}
		lines := int64(strings.Count(s, "\n"))
		if n := tab.N(); n < 1 || n > lines+1 {
			t.Errorf("N = %d for %d lines", n, lines)
		}
		if _, err := Anova(tab, TypeII); err != nil && !errors.Is(err, ErrInvalidDesign) {
			t.Errorf("Anova: %v", err)
		}
	})
}
