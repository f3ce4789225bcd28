package analysis

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// unitLevelRef is an R reference of testdata/gen/unitlevel.R: request
// rows in a CSV, and R's results on the unit-level rows of each aggregate
// and on the ratio.
type unitLevelRef struct {
	Requests   string     `json:"requests"`
	Factors    []string   `json:"factors"`
	Levels     [][]string `json:"levels"`
	Units      int        `json:"units"`
	Rows       int        `json:"rows"`
	Aggregates []struct {
		Aggregate string       `json:"aggregate"`
		Type1     []refRow     `json:"type1"`
		Type2     []refRow     `json:"type2"`
		Type3     []refRow     `json:"type3"`
		Estimates refEstimates `json:"estimates"`
	} `json:"aggregates"`
	Ratio struct {
		Type3 []struct {
			Term  string  `json:"term"`
			DF    int     `json:"df"`
			Chisq float64 `json:"chisq"`
			P     float64 `json:"p"`
		} `json:"type3"`
		Estimates refEstimates `json:"estimates"`
	} `json:"ratio"`
}

// The unit-level comparisons with R hold to these tolerances.
var unitTol = estTol{abs: 1e-12, rel: 1e-8, pAbs: 1e-12, pRel: 1e-8}

// unit is one unit's requests, aggregated directly: its cell's levels,
// the sum of its values, its request count and whether any value was not 0.
type unit struct {
	id      string
	levels  []string
	sum     float64
	n       int
	nonzero bool
}

// value returns the unit's aggregated value under aggregate agg.
func (u *unit) value(t *testing.T, agg string) float64 {
	switch agg {
	case "mean":
		return u.sum / float64(u.n)
	case "sum":
		return u.sum
	case "any":
		if u.nonzero {
			return 1
		}
		return 0
	case "count":
		return float64(u.n)
	}
	t.Fatalf("unknown aggregate %q", agg)
	return 0
}

// readUnits reads a requests CSV (unit, the factors, y) and returns its
// units sorted by id, failing if a unit appears in two cells.
func readUnits(t *testing.T, path string, factors []string) (units []*unit, rows int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil || len(header) != len(factors)+2 || header[0] != "unit" || header[len(header)-1] != "y" {
		t.Fatalf("%s: header %v (%v)", path, header, err)
	}
	byID := map[string]*unit{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows++
		y, err := strconv.ParseFloat(rec[len(rec)-1], 64)
		if err != nil {
			t.Fatal(err)
		}
		levels := rec[1 : len(rec)-1]
		u := byID[rec[0]]
		if u == nil {
			u = &unit{id: rec[0], levels: append([]string(nil), levels...)}
			byID[rec[0]] = u
			units = append(units, u)
		} else if strings.Join(u.levels, ",") != strings.Join(levels, ",") {
			t.Fatalf("unit %s in cells %v and %v", u.id, u.levels, levels)
		}
		u.sum += y
		u.n++
		u.nonzero = u.nonzero || y != 0
	}
	sort.Slice(units, func(i, j int) bool { return units[i].id < units[j].id })
	return units, rows
}

func loadUnitLevel(t *testing.T, path string) (unitLevelRef, []*unit) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ref unitLevelRef
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	units, rows := readUnits(t, filepath.Join(filepath.Dir(path), ref.Requests), ref.Factors)
	if len(units) != ref.Units || rows != ref.Rows || len(ref.Aggregates) != 4 {
		t.Fatalf("%s: %d units, %d rows, %d aggregates; R had %d units, %d rows", path, len(units), rows, len(ref.Aggregates), ref.Units, ref.Rows)
	}
	return ref, units
}

func unitLevelFiles(t *testing.T) []string {
	files, _ := filepath.Glob("testdata/unitlevel/*.expected.json")
	if len(files) < 2 {
		t.Fatalf("unit-level references: %v", files)
	}
	return files
}

func newRefTable(t *testing.T, ref unitLevelRef) *CellTable {
	t.Helper()
	factors := make([]Factor, len(ref.Factors))
	for f, name := range ref.Factors {
		factors[f] = Factor{Name: name, Levels: ref.Levels[f]}
	}
	tab, err := NewCellTable(factors)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// byCell groups the units by cell index, keeping their order.
func byCell(t *testing.T, tab *CellTable, units []*unit) [][]*unit {
	t.Helper()
	cells := make([][]*unit, len(tab.Cells))
	for _, u := range units {
		i, err := tab.indexByName(u.levels)
		if err != nil {
			t.Fatal(err)
		}
		cells[i] = append(cells[i], u)
	}
	return cells
}

// chunks splits n items into consecutive chunks of random sizes 1–9, as
// several consumers would count a cell, and calls fn with each range.
func chunks(rng *rand.Rand, n int, fn func(lo, hi int)) {
	for lo := 0; lo < n; {
		hi := min(n, lo+1+rng.IntN(9))
		fn(lo, hi)
		lo = hi
	}
}

// TestUnitLevelMatchesR: for every aggregate, the table of one row per
// unit (each unit added to its cell as one observation, or the cells
// merged from per-chunk CellStats as subset supplies them) gives R's
// Types I, II and III and R's estimates on the unit-level rows.
func TestUnitLevelMatchesR(t *testing.T) {
	for _, path := range unitLevelFiles(t) {
		ref, units := loadUnitLevel(t, path)
		name := strings.TrimSuffix(filepath.Base(path), ".expected.json")
		for _, agg := range ref.Aggregates {
			byRow := newRefTable(t, ref)
			for _, u := range units {
				if err := byRow.Add(u.levels, u.value(t, agg.Aggregate)); err != nil {
					t.Fatal(err)
				}
			}
			merged := newRefTable(t, ref)
			rng := rand.New(rand.NewPCG(uint64(len(units)), uint64(len(agg.Aggregate))))
			for i, us := range byCell(t, merged, units) {
				chunks(rng, len(us), func(lo, hi int) {
					var s CellStats
					for _, u := range us[lo:hi] {
						s.Add(u.value(t, agg.Aggregate))
					}
					merged.Cells[i].Merge(s)
				})
			}
			for _, tc := range []struct {
				how string
				tab *CellTable
			}{{"rows", byRow}, {"merged", merged}} {
				t.Run(name+"/"+agg.Aggregate+"/"+tc.how, func(t *testing.T) {
					for _, typ := range []struct {
						typ  SSType
						rows []refRow
					}{{TypeI, agg.Type1}, {TypeII, agg.Type2}, {TypeIII, agg.Type3}} {
						a, err := Anova(tc.tab, typ.typ)
						if err != nil {
							t.Fatal(err)
						}
						checkTable(t, "type "+typ.typ.String(), a, typ.rows)
					}
					e, err := Estimate(tc.tab, agg.Estimates.Level)
					if err != nil {
						t.Fatal(err)
					}
					checkEstimates(t, e, agg.Estimates, unitTol)
				})
			}
		}
	}
}
