package subset

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/otlproute"
	"github.com/abmesh/abmesh/internal/testkit"
)

// traceID is request i's trace id: 16 bytes that look random.
func traceID(i int) []byte {
	s := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
	return s[:16]
}

// Each R reference's requests, one trace each, split by trace id over 3
// replicas that count their share: the merge of the replicas' windows has
// the cells, quality counters and ANOVA tables (Types I-III; Wald for the
// ratio) of one node that counted everything, to 1e-9 relative.
func TestMergeWindowsEqualsOneNode(t *testing.T) {
	files, _ := filepath.Glob("../analysis/testdata/unitlevel/*.expected.json")
	if len(files) == 0 {
		t.Fatal("no unit-level references in ../analysis/testdata/unitlevel")
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
		aggs := []assign.Aggregate{assign.AggregateRatio}
		for _, a := range ref.Aggregates {
			agg, ok := assign.ParseAggregate(a.Aggregate)
			if !ok {
				t.Fatalf("aggregate %q", a.Aggregate)
			}
			aggs = append(aggs, agg)
		}
		for _, agg := range aggs {
			t.Run(filepath.Base(path)+"/"+agg.String(), func(t *testing.T) {
				single := countRequests(t, ref, agg, reqs)
				merged, split := countSplit(t, ref, agg, reqs, 3)
				if split == 0 {
					t.Fatal("no unit had requests on two replicas: the test would not test the merge")
				}
				merged.Opened = single.Opened // each replica opened its window at its own time
				if d := testkit.JSONDiff(single, merged, 1e-9, "window"); d != "" {
					t.Fatal(d)
				}
				ratio := agg == assign.AggregateRatio
				for _, typ := range []analysis.SSType{analysis.TypeI, analysis.TypeII, analysis.TypeIII} {
					if ratio && typ != analysis.TypeIII {
						continue
					}
					want, err1 := analysis.Anova(tableOf(t, ref, single, ratio), typ)
					got, err2 := analysis.Anova(tableOf(t, ref, merged, ratio), typ)
					if err1 != nil || err2 != nil {
						t.Fatal(err1, err2)
					}
					if d := testkit.JSONDiff(want, got, 1e-9, typ.String()); d != "" {
						t.Error(d)
					}
				}
				t.Logf("%d requests, %d units with requests on more than one replica", len(reqs), split)
			})
		}
	}
}

// countSplit counts each share of reqs (routed by trace id with
// otlproute.Pick) on its own replica and merges the replicas' windows of the viewpoint ref.Factors[0]
// as a shared store would; it also returns how many units had requests on
// more than one replica.
func countSplit(t *testing.T, ref rUnitLevel, agg assign.Aggregate, reqs []rRequest, n int) (WindowCells, int) {
	t.Helper()
	shares := make([][]rRequest, n)
	for i, r := range reqs {
		k := otlproute.Pick(traceID(i), n)
		shares[k] = append(shares[k], r)
	}
	var (
		parts []WindowCells
		units []UnitState
	)
	replicas := map[uint64]int{}
	for _, share := range shares {
		p := countShare(t, ref, agg, share).TakePending()
		for _, s := range p.Saves {
			if s.Cells.Viewpoint != ref.Factors[0] {
				continue
			}
			parts = append(parts, s.Cells)
			units = append(units, s.Units.Put...)
			for _, u := range s.Units.Put {
				replicas[u.Key]++
			}
		}
	}
	merged, err := MergeWindows(parts, units)
	if err != nil {
		t.Fatal(err)
	}
	split := 0
	for _, c := range replicas {
		if c > 1 {
			split++
		}
	}
	return merged, split
}
