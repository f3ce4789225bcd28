package subset

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/tracing"
)

// newWorked returns a Subsetter over the worked example, all tests running
// since t0, and a Counter with hash table h.
func newWorked(t *testing.T, h hashTable, opts ...Option) (stack, *CellCounter, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(t0)
	s := newStack(append([]Option{WithClock(clk.Now)}, opts...)...)
	s.SetGraph(workedGraph(t))
	tests := workedTests()
	for i := range tests {
		tests[i].Phase, tests[i].PhaseStart = 1, t0
	}
	if err := s.SetTests(tests); err != nil {
		t.Fatal(err)
	}
	return s, NewCellCounter(s.Windows, h), clk
}

// wantCell is a cell's variants, units and mean over units; requests is
// checked when set.
type wantCell struct {
	variants []string
	n        int64
	mean     float64
	requests int64
}

func checkCells(t *testing.T, wc WindowCells, want []wantCell) {
	t.Helper()
	var got []wantCell
	for _, c := range wc.Cells {
		got = append(got, wantCell{wc.VariantNames(c), c.Stats.N, c.Stats.Mean, c.Requests})
	}
	if len(got) != len(want) {
		t.Fatalf("%s#%d cells = %v, want %v", wc.Viewpoint, wc.Seq, got, want)
	}
	for i := range want {
		if !slices.Equal(got[i].variants, want[i].variants) || got[i].n != want[i].n ||
			math.Abs(got[i].mean-want[i].mean) > 1e-9 || (want[i].requests != 0 && got[i].requests != want[i].requests) {
			t.Errorf("%s#%d cell %d = %v, want %v", wc.Viewpoint, wc.Seq, i, got[i], want[i])
		}
	}
}

func TestCounterCells(t *testing.T) {
	h := hashTable{
		"t2/u1": "treatment", "t3/u1": "b",
		"t2/u2": "control", "t3/u2": "c",
		"t2/u3": "treatment", "t3/u3": "b",
		"t2/u4": "treatment", // t3 does not assign u4
		"t5/u5": "on", "t5/u6": "off",
	}
	s, c, _ := newWorked(t, h)
	for _, o := range []*tracing.Observation{
		// counted
		newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").serve("t3", "b", "Svc3").latency("Svc2", 10).latency("Svc3", 4).build(),
		newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").serve("t3", "b", "Svc3").latency("Svc2", 20).latency("Svc3", 6).build(),
		// t3 not on the path: its hash variant c
		newObs("u2", time.Minute).serve("t2", "control", "Svc2").latency("Svc2", 7).build(),
		newObs("u2", time.Minute).serve("t2", "control", "Svc2").latency("Svc2", 9).build(),
		// t2 served control but the hash says treatment: mismatch for t2; t3 fine
		newObs("u3", time.Minute).serve("t2", "control", "Svc2").serve("t3", "b", "Svc3").latency("Svc2", 99).latency("Svc3", 8).build(),
		// overrides and targeting misses are not randomized
		newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").reason("override").latency("Svc2", 99).build(),
		newObs("u1", time.Minute).serve("t2", "control", "Svc2").reason("not_targeted").latency("Svc2", 99).build(),
		// t3 (a member of t2's subset) served outside its slice: excluded for t2 and t3
		newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").serve("t3", "a", "Svc3").reason("not_in_slice").latency("Svc2", 99).latency("Svc3", 99).build(),
		// conflict on t3
		newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").serve("t3", "b", "Svc3").conflict("t3", "a", "b").latency("Svc2", 99).latency("Svc3", 99).build(),
		// conflict on t5, not a member of t2's subset: no effect on t2
		newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").serve("t3", "b", "Svc3").conflict("t5", "on", "off").latency("Svc2", 30).latency("Svc3", 5).build(),
		// two exposures of t2 with different variants: a conflict
		newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").serve("t2", "control", "Svc1").latency("Svc2", 99).build(),
		// no unit
		newObs("", time.Minute).serve("t2", "treatment", "Svc2").latency("Svc2", 99).build(),
		// t3 off the path and its hash does not assign u4
		newObs("u4", time.Minute).serve("t2", "treatment", "Svc2").latency("Svc2", 99).build(),
		// no metric on t2's measure service; t3's counted
		newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").serve("t3", "b", "Svc3").latency("Svc3", 2).build(),
		// stale phase
		newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").phase(7).latency("Svc2", 99).build(),
		// current phase stated explicitly: counted
		newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").phase(1).serve("t3", "b", "Svc3").latency("Svc2", 30).latency("Svc3", 5).build(),
		// a variant t2 does not have
		newObs("u1", time.Minute).serve("t2", "blue", "Svc2").latency("Svc2", 99).build(),
		// before the window
		newObs("u1", -time.Minute).serve("t2", "treatment", "Svc2").latency("Svc2", 99).build(),
		// t5: error metric
		newObs("u5", time.Minute).serve("t5", "on", "Svc5").failed("Svc5").build(),
		newObs("u5", time.Minute).serve("t5", "on", "Svc5").latency("Svc5", 3).build(),
		newObs("u6", time.Minute).serve("t5", "off", "Svc5").latency("Svc5", 3).build(),
		// tests that are not running or unknown are ignored
		newObs("u1", time.Minute).serve("nope", "x", "Svc1").build(),
	} {
		c.ConsumeObservation(o)
	}

	w2, _ := s.Current("t2")
	if got := []string{w2.Members[0].Test, w2.Members[1].Test}; !slices.Equal(got, []string{"t2", "t3"}) {
		t.Fatalf("t2 members = %v", got)
	}
	// One unit a cell: u2 (7, 9) and u1 (10, 20, 30, 30).
	checkCells(t, w2, []wantCell{
		{[]string{"control", "c"}, 1, 8, 2},
		{[]string{"treatment", "b"}, 1, 22.5, 4},
	})
	wantQ := Quality{
		Seen: 18, Counted: 6,
		MissingUnit: 1, BeforeWindow: 1, Conflict: 2, Override: 1, NotTargeted: 1, NotInSlice: 1,
		StalePhase: 1, Mismatch: 2, NotAssigned: 1, MissingMetric: 1,
	}
	if w2.Quality != wantQ {
		t.Errorf("t2 quality\n got %+v\nwant %+v", w2.Quality, wantQ)
	}
	if q := w2.Quality; q.Seen != q.Counted+q.Excluded() {
		t.Errorf("seen %d ≠ counted %d + excluded %d", q.Seen, q.Counted, q.Excluded())
	}

	w3, _ := s.Current("t3")
	// u1 (4, 6, 5, 2, 5) and u3 (8): the mean of the units' means.
	u1 := (4 + 6 + 5 + 2 + 5) / 5.0
	checkCells(t, w3, []wantCell{{[]string{"b"}, 2, (u1 + 8) / 2, 6}})
	if q := w3.Quality; q.Seen != 8 || q.NotInSlice != 1 || q.Conflict != 1 || q.Counted != 6 {
		t.Errorf("t3 quality %+v", q)
	}

	w5, _ := s.Current("t5")
	checkCells(t, w5, []wantCell{{[]string{"off"}, 1, 0, 1}, {[]string{"on"}, 1, 0.5, 2}})

	// The stats are exact Welford stats of the units' values.
	var ref analysis.CellStats
	for _, v := range []float64{u1, 8} {
		ref.Add(v)
	}
	if got := w3.Cells[0].Stats; math.Abs(got.M2-ref.M2) > 1e-9 {
		t.Errorf("M2 = %v, want %v", got.M2, ref.M2)
	}
}

// setTest changes test id with f and hands the tests to s again.
func setTest(t *testing.T, s stack, id string, f func(*Test)) {
	t.Helper()
	tests := s.Tests()
	for i := range tests {
		if tests[i].ID == id {
			f(&tests[i])
		}
	}
	if err := s.SetTests(tests); err != nil {
		t.Fatal(err)
	}
}

func TestCounterSticky(t *testing.T) {
	h := hashTable{"t2/u1": "treatment", "t3/u1": "a"}
	s, c, _ := newWorked(t, h)
	setTest(t, s, "t3", func(x *Test) { x.Sticky = true })
	// u1's first assignment (stored) is c; the hash now says a. Sticky: no
	// mismatch, the served variant counts.
	c.ConsumeObservation(newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").serve("t3", "c", "Svc3").latency("Svc2", 5).build())
	w, _ := s.Current("t2")
	checkCells(t, w, []wantCell{{[]string{"treatment", "c"}, 1, 5, 1}})
	if !w.Members[1].Sticky {
		t.Error("t3 not sticky in window")
	}
}

func TestCounterConcurrent(t *testing.T) {
	h := hashTable{}
	for i := range 50 {
		u := fmt.Sprintf("u%d", i)
		h["t2/"+u] = []string{"control", "treatment"}[i%2]
		h["t3/"+u] = []string{"a", "b", "c"}[i%3]
		h["t5/"+u] = []string{"off", "on"}[i%2]
	}
	s, c, clk := newWorked(t, h)
	const workers, perWorker = 4, 2000
	var wg sync.WaitGroup
	for wk := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				u := fmt.Sprintf("u%d", (wk*perWorker+i)%50)
				c.ConsumeObservation(newObs(u, 5*time.Hour).serve("t2", h["t2/"+u], "Svc2").latency("Svc2", float64(i%7)).build())
			}
		}()
	}
	// Meanwhile t5 starts and stops emitting into t2's region, and the
	// graph is replaced: t2's windows roll.
	tests := s.Tests()
	for i := range 20 {
		// Steps well under pruneGrace: a window closed while a worker still
		// holds the plan that routes to it must not be pruned before the
		// worker adds (the daemon's real clock gives consumers a minute).
		clk.Set(t0.Add(time.Duration(i) * 10 * time.Second))
		tests[2].Emits = nil
		if i%2 == 0 {
			tests[2].Emits = []Interference{{KindLatency, ScopeAll}}
		}
		if err := s.SetTests(tests); err != nil {
			t.Error(err)
		}
		s.SetGraph(workedGraph(t))
		_ = s.All()
	}
	wg.Wait()
	var q Quality
	var n int64
	ws := s.List("t2")
	for _, w := range ws {
		q.Add(w.Quality)
		for _, c := range w.Cells {
			n += c.Requests
		}
	}
	if q.Seen != workers*perWorker || q.Counted != n || q.Counted+q.Excluded() != q.Seen {
		t.Errorf("over %d windows: quality %+v, cells n %d; want seen %d", len(ws), q, n, workers*perWorker)
	}
	if q.Excluded() != 0 {
		t.Errorf("excluded %d, want 0", q.Excluded())
	}
}

// sliceHash is a hashTable that also knows slices.
type sliceHash struct {
	hashTable
	out map[string]bool // "test/unit" outside the slice
}

func (h sliceHash) InSlice(test, unit string) bool { return !h.out[test+"/"+unit] }

func TestCounterSlicesAndReasonCase(t *testing.T) {
	h := sliceHash{
		hashTable: hashTable{"t2/u1": "treatment", "t3/u1": "a", "t2/u2": "treatment", "t3/u2": "b"},
		out:       map[string]bool{"t3/u1": true},
	}
	s, _, _ := newWorked(t, h.hashTable)
	c := NewCellCounter(s.Windows, h)
	// t3 off the path and u1 outside its slice: excluded.
	c.ConsumeObservation(newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").latency("Svc2", 1).build())
	// Upper-case reasons as assign spells them.
	c.ConsumeObservation(newObs("u2", time.Minute).serve("t2", "treatment", "Svc2").reason("HASH").latency("Svc2", 2).build())
	c.ConsumeObservation(newObs("u2", time.Minute).serve("t2", "treatment", "Svc2").reason("OVERRIDE").latency("Svc2", 3).build())
	c.ConsumeObservation(newObs("u2", time.Minute).serve("t2", "treatment", "Svc2").reason("Sticky").latency("Svc2", 4).build())
	// OpenFeature's reasons from a flagd client: SPLIT is randomized; an
	// override, a winner and a default are not.
	c.ConsumeObservation(newObs("u2", time.Minute).serve("t2", "treatment", "Svc2").reason("SPLIT").latency("Svc2", 3).build())
	for _, r := range []string{"TARGETING_MATCH", "STATIC", "DEFAULT"} {
		c.ConsumeObservation(newObs("u2", time.Minute).serve("t2", "treatment", "Svc2").reason(r).latency("Svc2", 99).build())
	}
	w, _ := s.Current("t2")
	checkCells(t, w, []wantCell{{[]string{"treatment", "b"}, 1, 3, 3}})
	if q := w.Quality; q.NotInSlice != 1 || q.Override != 2 || q.Winner != 1 || q.NotTargeted != 1 || q.Counted != 3 {
		t.Errorf("quality %+v", q)
	}
}

// The helpers below are shared by this package's tests; t0 is when their
// tests start.
var t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

// hashTable is a HashAssigner backed by a map "test/unit" → variant.
type hashTable map[string]string

func (h hashTable) HashVariant(test, unit string) (string, bool) {
	v, ok := h[test+"/"+unit]
	return v, ok
}

// obs builds an observation: exposures as test=variant (reason "hash",
// phase 0) and latency metrics per service.
type obsBuilder struct{ o tracing.Observation }

func newObs(unit string, start time.Duration) *obsBuilder {
	return &obsBuilder{o: tracing.Observation{Unit: unit, Start: t0.Add(start)}}
}

func (b *obsBuilder) serve(test, variant, service string) *obsBuilder {
	b.o.Exposures = append(b.o.Exposures, tracing.Exposure{Test: test, Variant: variant, Service: service, Reason: "hash"})
	return b
}

func (b *obsBuilder) reason(r string) *obsBuilder {
	b.o.Exposures[len(b.o.Exposures)-1].Reason = r
	return b
}

func (b *obsBuilder) phase(p int) *obsBuilder {
	b.o.Exposures[len(b.o.Exposures)-1].Phase = p
	return b
}

func (b *obsBuilder) latency(service string, ms float64) *obsBuilder {
	b.o.Metrics = append(b.o.Metrics, tracing.ServiceMetrics{Service: service, LatencyMS: ms})
	return b
}

func (b *obsBuilder) failed(service string) *obsBuilder {
	b.o.Metrics = append(b.o.Metrics, tracing.ServiceMetrics{Service: service, Error: true})
	return b
}

func (b *obsBuilder) conflict(test string, variants ...string) *obsBuilder {
	b.o.Conflicts = append(b.o.Conflicts, tracing.Conflict{Test: test, Variants: variants})
	return b
}

func (b *obsBuilder) build() *tracing.Observation { o := b.o; return &o }
