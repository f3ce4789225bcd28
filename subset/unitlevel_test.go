package subset

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/floats/scalar"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/tracing"
)

// rUnitLevel is the part of an R reference of analysis/testdata/gen/
// unitlevel.R this test reads: the request rows, and R's ANOVA tables on
// the unit-level rows of each aggregate.
type rUnitLevel struct {
	Requests   string     `json:"requests"`
	Factors    []string   `json:"factors"`
	Levels     [][]string `json:"levels"`
	Units      int        `json:"units"`
	Aggregates []struct {
		Aggregate string  `json:"aggregate"`
		Type1     []rTerm `json:"type1"`
		Type2     []rTerm `json:"type2"`
		Type3     []rTerm `json:"type3"`
	} `json:"aggregates"`
	Ratio struct {
		Type3 []struct {
			Term  string  `json:"term"`
			DF    int     `json:"df"`
			Chisq float64 `json:"chisq"`
			P     float64 `json:"p"`
		} `json:"type3"`
	} `json:"ratio"`
}

type rTerm struct {
	Term string   `json:"term"`
	DF   float64  `json:"df"`
	SS   float64  `json:"ss"`
	F    *float64 `json:"f"`
	P    *float64 `json:"p"`
}

// rRequest is one request row: its unit, its levels (one per factor) and
// its value.
type rRequest struct {
	unit   string
	levels []string
	y      float64
}

func readRequests(t *testing.T, path string) []rRequest {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	if _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	var out []rRequest
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		y, err := strconv.ParseFloat(rec[len(rec)-1], 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rRequest{rec[0], rec[1 : len(rec)-1], y})
	}
}

// TestCountedCellsMatchR: R's request rows, counted by a CellCounter
// through a window whose tests are R's factors (the hash serves each unit
// its R levels), give cells whose ANOVA tables, Types I, II and III, are
// R's on the unit-level rows to 1e-8 relative, for every aggregate but
// ratio, whose Type III Wald tests are R's on the request rows with
// sandwich::vcovCL clustered by unit (see analysis' ratio reference).
func TestCountedCellsMatchR(t *testing.T) {
	files, _ := filepath.Glob("../analysis/testdata/unitlevel/*.expected.json")
	if len(files) == 0 {
		t.Fatal("no unit-level R references in ../analysis/testdata/unitlevel")
	}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var ref rUnitLevel
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatal(err)
		}
		reqs := readRequests(t, filepath.Join(filepath.Dir(path), ref.Requests))
		name := strings.TrimSuffix(filepath.Base(path), ".expected.json")
		t.Run(name+"/ratio", func(t *testing.T) { checkRatioR(t, ref, reqs) })
		for _, agg := range ref.Aggregates {
			t.Run(name+"/"+agg.Aggregate, func(t *testing.T) {
				a, ok := assign.ParseAggregate(agg.Aggregate)
				if !ok {
					t.Fatalf("aggregate %q", agg.Aggregate)
				}
				wc := countRequests(t, ref, a, reqs)
				tab := tableOf(t, ref, wc, false)
				if tab.N() != int64(ref.Units) {
					t.Fatalf("%d units counted, R has %d", tab.N(), ref.Units)
				}
				for _, typ := range []struct {
					typ  analysis.SSType
					want []rTerm
				}{{analysis.TypeI, agg.Type1}, {analysis.TypeII, agg.Type2}, {analysis.TypeIII, agg.Type3}} {
					got, err := analysis.Anova(tab, typ.typ)
					if err != nil {
						t.Fatal(err)
					}
					compareR(t, typ.typ.String(), got, typ.want)
				}
			})
		}
	}
}

// countRequests counts reqs through a CellCounter into the window of the
// viewpoint ref.Factors[0], whose tests are the factors, and returns it.
func countRequests(t *testing.T, ref rUnitLevel, agg assign.Aggregate, reqs []rRequest) WindowCells {
	t.Helper()
	s := countShare(t, ref, agg, reqs)
	wc, _ := s.Current(ref.Factors[0])
	if q := wc.Quality; q.Counted != int64(len(reqs)) || q.Excluded() != 0 {
		t.Fatalf("quality %+v for %d requests", q, len(reqs))
	}
	return wc
}

// countShare counts reqs through a CellCounter into a stack of ref's
// tests, as countRequests does, and returns the stack.
func countShare(t *testing.T, ref rUnitLevel, agg assign.Aggregate, reqs []rRequest) stack {
	t.Helper()
	h := hashTable{}
	var tests []Test
	for f, name := range ref.Factors {
		tests = append(tests, oneServiceTest(name, ref.Levels[f], agg))
	}
	s := oneServiceStack(t, tests)
	c := NewCellCounter(s.Windows, h)
	for _, r := range reqs {
		o := &tracing.Observation{Unit: r.unit, Start: t0.Add(time.Minute),
			Metrics: []tracing.ServiceMetrics{{Service: "svc", LatencyMS: r.y}}}
		for f, name := range ref.Factors {
			h[name+"/"+r.unit] = r.levels[f]
			o.Exposures = append(o.Exposures, tracing.Exposure{Test: name, Variant: r.levels[f], Service: "svc", Phase: 1, Reason: "hash"})
		}
		c.ConsumeObservation(o)
	}
	return s
}

// checkRatioR counts reqs with the ratio aggregate and compares the Type
// III Wald tests of its cells with R's.
func checkRatioR(t *testing.T, ref rUnitLevel, reqs []rRequest) {
	wc := countRequests(t, ref, assign.AggregateRatio, reqs)
	got, err := analysis.Anova(tableOf(t, ref, wc, true), analysis.TypeIII)
	if err != nil {
		t.Fatal(err)
	}
	if got.Test != analysis.TestWald || len(ref.Ratio.Type3) == 0 {
		t.Fatalf("test %q, %d R rows", got.Test, len(ref.Ratio.Type3))
	}
	for _, w := range ref.Ratio.Type3 {
		row := got.Term(w.Term)
		if w.Term == "(Intercept)" {
			row = got.Intercept
		}
		if row == nil || row.DF != w.DF || !scalar.EqualWithinAbsOrRel(row.Chisq, w.Chisq, 0, 1e-8) ||
			!scalar.EqualWithinAbsOrRel(row.P, w.P, 1e-300, 1e-8) {
			t.Errorf("ratio %s: %+v; R df %d chisq %.15g p %.15g", w.Term, row, w.DF, w.Chisq, w.P)
		}
	}
}

// tableOf builds the analysis table of wc with R's factor order: of the
// cells' units' values, or of their ratio statistics.
func tableOf(t *testing.T, ref rUnitLevel, wc WindowCells, ratio bool) *analysis.CellTable {
	t.Helper()
	factors := make([]analysis.Factor, len(ref.Factors))
	pos := map[string]int{}
	for f, name := range ref.Factors {
		factors[f] = analysis.Factor{Name: name, Levels: ref.Levels[f]}
		pos[name] = f
	}
	tab, err := analysis.NewCellTable(factors)
	if err != nil {
		t.Fatal(err)
	}
	if len(wc.Members) != len(factors) {
		t.Fatalf("window members %d, want %d", len(wc.Members), len(factors))
	}
	for _, c := range wc.Cells {
		levels := make([]string, len(factors))
		for i, v := range wc.VariantNames(c) {
			levels[pos[wc.Members[i].Test]] = v
		}
		var err error
		if ratio {
			err = tab.MergeRatioCell(levels, *c.Ratio)
		} else {
			err = tab.MergeCell(levels, c.Stats)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return tab
}

// compareR checks each term's df, SS, F and p against R's, to 1e-8
// relative (p-values below 1e-300 absolutely).
func compareR(t *testing.T, where string, got *analysis.AnovaTable, want []rTerm) {
	t.Helper()
	for _, w := range want {
		var row *analysis.AnovaTerm
		switch w.Term {
		case "Residuals":
			if !scalar.EqualWithinAbsOrRel(got.Residual.SS, w.SS, 0, 1e-8) || float64(got.Residual.DF) != w.DF {
				t.Errorf("type %s residuals: df %d SS %.15g, want %v %.15g", where, got.Residual.DF, got.Residual.SS, w.DF, w.SS)
			}
			continue
		case "(Intercept)":
			row = got.Intercept
		default:
			row = got.Term(w.Term)
		}
		if row == nil {
			t.Errorf("type %s: no term %s", where, w.Term)
			continue
		}
		ok := float64(row.DF) == w.DF && scalar.EqualWithinAbsOrRel(row.SS, w.SS, 0, 1e-8) &&
			(w.F == nil || scalar.EqualWithinAbsOrRel(row.F, *w.F, 0, 1e-8)) &&
			(w.P == nil || scalar.EqualWithinAbsOrRel(row.P, *w.P, 1e-300, 1e-8))
		if !ok {
			t.Errorf("type %s %s: %s", where, w.Term, fmt.Sprintf("df %d SS %.15g F %.15g p %.15g; R %+v", row.DF, row.SS, row.F, row.P, w))
		}
	}
}
