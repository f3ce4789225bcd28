package postgres

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/otlproute"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/internal/testkit/pgtest"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// hashVariants assigns units to "control" or "ml" by a hash of test and
// unit, as the assign engine would (any fixed function does here).
type hashVariants struct{}

func (hashVariants) HashVariant(test, unit string) (string, bool) {
	h := fnv.New32a()
	h.Write([]byte(test + "/" + unit))
	return []string{"control", "ml"}[h.Sum32()%2], true
}

// request is one traced request: its trace id, unit and latency.
type request struct {
	trace uint64
	unit  string
	ms    float64
}

// counter is one replica's (or the single node's) trace consumer: two
// interacting tests on one service, their windows and a cell counter.
func counter(t *testing.T, agg assign.Aggregate, start time.Time) (*subset.Windows, *subset.CellCounter) {
	t.Helper()
	ws := subset.NewWindows()
	ss := subset.NewSubsetter(ws)
	g, err := subset.NewGraph([]tracing.Edge{{Caller: "front", Callee: "svc", Calls: 10}})
	if err != nil {
		t.Fatal(err)
	}
	ss.SetGraph(g)
	var tests []subset.Test
	for _, id := range []string{"a", "b"} {
		tests = append(tests, subset.Test{ID: id, ChangeService: "svc", MeasureService: "svc", Metric: "latency_ms", Aggregate: agg,
			Variants: []string{"control", "ml"}, Running: true, Phase: 1, PhaseStart: start,
			Emits: []subset.Interference{{Kind: subset.KindLatency, Scope: subset.ScopeAll}}, Susceptible: []subset.Interference{{Kind: subset.KindLatency, Scope: subset.ScopeAll}}})
	}
	if err := ss.SetTests(tests); err != nil {
		t.Fatal(err)
	}
	return ws, subset.NewCellCounter(ws, hashVariants{})
}

func consume(c *subset.CellCounter, r request, at time.Time) {
	o := &tracing.Observation{Unit: r.unit, Start: at, Metrics: []tracing.ServiceMetrics{{Service: "svc", LatencyMS: r.ms}}}
	for _, test := range []string{"a", "b"} {
		v, _ := hashVariants{}.HashVariant(test, r.unit)
		o.Exposures = append(o.Exposures, tracing.Exposure{Test: test, Variant: v, Service: "svc", Phase: 1, Reason: "hash"})
	}
	c.ConsumeObservation(o)
}

// 3 replicas on one PostgreSQL each count the traces routed to them (FNV-1a
// of the trace id over the replicas, as a load-balancing exporter keeps
// traces whole) and flush to the store; the merged windows read back equal
// those of one node that counted every trace, to 1e-9, for every
// aggregate.
func TestMergedWindowsEqualOneNode(t *testing.T) {
	srv := pgtest.Start(t)
	ctx := context.Background()
	start := time.Now().Add(-time.Hour)
	at := start.Add(time.Minute)
	rng := rand.New(rand.NewPCG(14, 3))
	var reqs []request
	for u := range 400 {
		for range 1 + rng.IntN(6) {
			reqs = append(reqs, request{trace: rng.Uint64(), unit: fmt.Sprintf("user-%d", u), ms: 20 + 80*rng.Float64()})
		}
	}
	for _, agg := range []assign.Aggregate{assign.AggregateMean, assign.AggregateSum, assign.AggregateCount, assign.AggregateAny, assign.AggregateRatio} {
		t.Run(agg.String(), func(t *testing.T) {
			d := openDB(t, srv.NewDatabase(t))
			single, sc := counter(t, agg, start)
			const n = 3
			replicas := make([]*subset.Windows, n)
			counters := make([]*subset.CellCounter, n)
			for i := range replicas {
				replicas[i], counters[i] = counter(t, agg, start)
			}
			for _, r := range reqs {
				consume(sc, r, at)
				consume(counters[otlproute.Pick(binary.BigEndian.AppendUint64(nil, r.trace), n)], r, at)
			}
			for i, ws := range replicas {
				if err := ws.Flush(ctx, d.Windows(fmt.Sprintf("replica-%d", i))); err != nil {
					t.Fatal(err)
				}
			}
			merged, err := d.Windows("").Merged(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(merged) != 2 {
				t.Fatalf("%d merged windows, want 2 (viewpoints a and b)", len(merged))
			}
			for _, m := range merged {
				want, _ := single.Current(m.Viewpoint)
				if want.Quality != m.Quality || len(want.Cells) != len(m.Cells) || want.Quality.Counted != int64(len(reqs)) {
					t.Fatalf("%s: quality %+v, %d cells; one node %+v, %d cells", m.Viewpoint, m.Quality, len(m.Cells), want.Quality, len(want.Cells))
				}
				for i, c := range m.Cells {
					w := want.Cells[i]
					if fmt.Sprint(c.Variants) != fmt.Sprint(w.Variants) || c.Requests != w.Requests || c.Stats.N != w.Stats.N ||
						!close9(c.Stats.Mean, w.Stats.Mean) || !close9(c.Stats.M2, w.Stats.M2) ||
						!sameRatio(c.Ratio, w.Ratio) {
						t.Errorf("%s cell %v: %+v %v; one node %+v %v", m.Viewpoint, c.Variants, c.Stats, c.Ratio, w.Stats, w.Ratio)
					}
				}
			}
		})
	}
}

func sameRatio(a, b *analysis.RatioStats) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.K == b.K && close9(a.MeanS, b.MeanS) && close9(a.MeanN, b.MeanN) && close9(a.M2S, b.M2S) && close9(a.M2N, b.M2N) && close9(a.CSN, b.CSN)
}

func close9(a, b float64) bool { return math.Abs(a-b) <= 1e-9*max(1, math.Abs(b)) }

// The leader's FinalizeClosed replaces a window closed for longer than the
// grace by its merged snapshot and deletes its units: Merged reads the
// same, a late save by a replica changes nothing, and open or recently
// closed windows are left alone.
func TestFinalizeClosedKeepsMergedCells(t *testing.T) {
	d := openDB(t, pgtest.Start(t).NewDatabase(t))
	ctx := context.Background()
	now := time.Now()
	save := func(replica string, seq int, end time.Time, units ...subset.UnitState) {
		t.Helper()
		saveWindowA(t, d, replica, seq, end, units...)
	}
	u := oneRequest
	old, recent := now.Add(-time.Hour), now.Add(-time.Minute)
	save("r1", 1, old, u(1, 0, 10), u(2, 1, 20))
	save("r2", 1, old, u(1, 0, 5), u(3, 1, 7)) // unit 1 on both replicas
	save("r1", 2, recent, u(1, 0, 1))
	save("r1", 3, time.Time{}, u(1, 0, 1))
	before, err := d.Windows("").Merged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, err := d.Windows("").FinalizeClosed(ctx, now, 10*time.Minute)
	if err != nil || n != 1 {
		t.Fatalf("finalized %d windows, %v; want 1", n, err)
	}
	save("r2", 1, old, u(1, 0, 100)) // a late save of a finalized window
	after, err := d.Windows("").Merged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := testkit.JSONDiff(before, after, 0, "windows"); diff != "" {
		t.Errorf("merged windows changed by finalizing: %s", diff)
	}
	if before[0].Cells[0].Stats.N != 1 || before[0].Cells[0].Stats.Mean != 7.5 || before[0].Cells[0].Requests != 2 || before[0].Quality.Counted != 4 {
		t.Errorf("window 1 merged = %+v", before[0])
	}
	var units int
	if err := d.pool.QueryRow(ctx, `SELECT count(*) FROM units WHERE seq = 1`).Scan(&units); err != nil || units != 0 {
		t.Errorf("%d units left in the finalized window, %v", units, err)
	}
}

// A closed window waits to be finalized until every live replica has
// flushed after it stopped counting into it (ClosedCounting past its
// end), whatever the grace: a replica whose flushes failed meanwhile (as
// while PostgreSQL was away) still holds part of it, and its late save
// would otherwise be skipped. Replicas without a session (gone) do not
// hold it back.
func TestFinalizeWaitsForLiveReplicasFlush(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	leader, r2 := openDB(t, url, AsReplica("leader")), openDB(t, url, AsReplica("r2"))
	ctx := context.Background()
	t0 := time.Now()
	end := t0.Add(-ClosedCounting + 1500*time.Millisecond) // r2's first flush is within ClosedCounting of it
	save, u := saveWindowA, oneRequest
	save(t, leader, "gone", 1, end, u(9, 1, 90)) // a replica without a session, its flush long before
	if _, err := leader.pool.Exec(ctx, `UPDATE replica_flushes SET flushed_at = $1 WHERE replica = 'gone'`, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	save(t, leader, "leader", 1, end, u(1, 0, 10))
	save(t, r2, "r2", 1, end, u(2, 1, 20))
	later := t0.Add(time.Hour) // far past any grace
	if n, err := leader.Windows("leader").FinalizeClosed(ctx, later, 10*time.Minute); err != nil || n != 0 {
		t.Fatalf("finalized %d windows, %v, before r2 flushed after the window stopped counting; want 0", n, err)
	}
	time.Sleep(time.Until(end.Add(ClosedCounting + 100*time.Millisecond)))
	save(t, r2, "r2", 1, end, u(2, 1, 20), u(3, 1, 30)) // what r2 held: unit 3
	if n, err := leader.Windows("leader").FinalizeClosed(ctx, later, 10*time.Minute); err != nil || n != 0 {
		t.Fatalf("finalized %d windows, %v, before the leader itself flushed again; want 0", n, err)
	}
	save(t, leader, "leader", 2, time.Time{}) // the leader's next flush (another window)
	if n, err := leader.Windows("leader").FinalizeClosed(ctx, later, 10*time.Minute); err != nil || n != 1 {
		t.Fatalf("finalized %d windows, %v, once every live replica flushed; want 1", n, err)
	}
	w, ok, err := leader.Windows("").MergedWindow(ctx, "a", 1)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got := w.Quality.Counted; got != 4 || w.Cells[1].Stats.N != 3 || math.Abs(w.Cells[1].Stats.Mean-140.0/3) > 1e-9 {
		t.Errorf("finalized window: counted %d, treated cell %+v; want 4 counted, units 2, 3 and 9 (mean 46.67)", got, w.Cells[1].Stats)
	}
}

// saveWindowA saves, as replica, its part of window a#seq (test a alone,
// mean latency) ending at end (zero: open) with units.
func saveWindowA(t *testing.T, d *DB, replica string, seq int, end time.Time, units ...subset.UnitState) {
	t.Helper()
	w := subset.WindowCells{Viewpoint: "a", Seq: seq, End: end, Metric: "latency_ms", Aggregate: assign.AggregateMean,
		Members: []subset.WindowMember{{Test: "a", Phase: 1, Variants: []string{"control", "ml"}}},
		Quality: subset.Quality{Seen: int64(len(units)), Counted: int64(len(units))}}
	if err := d.Windows(replica).SaveWindow(context.Background(), w, subset.UnitChanges{Put: units}); err != nil {
		t.Fatal(err)
	}
}

// oneRequest is a unit's totals after one request of value sum in cell.
func oneRequest(key, cell uint64, sum float64) subset.UnitState {
	return subset.UnitState{Key: key, Cell: cell, Sum: sum, Requests: 1, NonZero: true}
}
