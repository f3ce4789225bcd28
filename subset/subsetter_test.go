package subset

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/tracing"
)

type windowSummary struct {
	seq        int
	start, end time.Duration // from t0; end −1 while open
	members    []string
}

func summarize(ws []WindowCells) []windowSummary {
	var out []windowSummary
	for _, w := range ws {
		s := windowSummary{seq: w.Seq, start: w.Start.Sub(t0), end: -1}
		if !w.Open() {
			s.end = w.End.Sub(t0)
		}
		for _, m := range w.Members {
			s.members = append(s.members, m.Test)
		}
		out = append(out, s)
	}
	return out
}

func TestSubsetterWindows(t *testing.T) {
	h := hashTable{"t2/u1": "treatment", "t3/u1": "b"}
	clk := testkit.NewClock(t0)
	s := newStack(WithClock(clk.Now))
	c := NewCellCounter(s.Windows, h)
	s.SetGraph(workedGraph(t))
	tests := workedTests()
	t2, t3 := tests[0], tests[1]
	t2.Phase, t2.PhaseStart = 1, t0
	t3.Running = false // created as a draft
	for _, x := range []Test{t2, t3} {
		if err := s.PutTest(x); err != nil {
			t.Fatal(err)
		}
	}
	hit := func(at time.Duration, ms float64) {
		c.ConsumeObservation(newObs("u1", at).serve("t2", "treatment", "Svc2").latency("Svc2", ms).build())
	}
	hit(10*time.Minute, 1)

	// t3 starts at 1h: t2's subset becomes {t2, t3} from then on.
	clk.Set(t0.Add(time.Hour))
	t3.Running, t3.Phase, t3.PhaseStart = true, 1, t0.Add(time.Hour)
	if err := s.PutTest(t3); err != nil {
		t.Fatal(err)
	}
	if sub, _ := s.Subset("t2"); !slices.Equal(sub.Tests(), []string{"t2", "t3"}) {
		t.Fatalf("t2 subset = %v", sub.Tests())
	}
	hit(30*time.Minute, 99) // delayed trace from before t3 started: not in the new window
	hit(61*time.Minute, 2)

	// t3's phase changes at 2h.
	clk.Set(t0.Add(2 * time.Hour))
	t3.Phase, t3.PhaseStart = 2, t0.Add(2*time.Hour)
	if err := s.PutTest(t3); err != nil {
		t.Fatal(err)
	}
	hit(121*time.Minute, 3)

	// A change that does not touch t2's membership keeps the window.
	clk.Set(t0.Add(150 * time.Minute))
	t5 := tests[2]
	t5.Variants = []string{"off", "on", "on2"}
	if err := s.PutTest(t5); err != nil {
		t.Fatal(err)
	}

	// t3 stops at 3h: the next window starts then, not at t2's start.
	clk.Set(t0.Add(3 * time.Hour))
	t3.Running = false
	if err := s.PutTest(t3); err != nil {
		t.Fatal(err)
	}
	hit(150*time.Minute, 99) // affected by t3: excluded
	hit(181*time.Minute, 4)

	// t2 stops at 4h: its last window closes.
	clk.Set(t0.Add(4 * time.Hour))
	t2.Running = false
	if err := s.PutTest(t2); err != nil {
		t.Fatal(err)
	}
	hit(241*time.Minute, 99) // not running: not counted anywhere

	ws := s.List("t2")
	want := []windowSummary{
		{1, 0, time.Hour, []string{"t2"}},
		{2, time.Hour, 2 * time.Hour, []string{"t2", "t3"}},
		{3, 2 * time.Hour, 3 * time.Hour, []string{"t2", "t3"}},
		{4, 3 * time.Hour, 4 * time.Hour, []string{"t2"}},
	}
	if got := summarize(ws); !reflect.DeepEqual(got, want) {
		t.Fatalf("windows\n got %+v\nwant %+v", got, want)
	}
	for i, mean := range []float64{1, 2, 3, 4} {
		checkCells(t, ws[i], []wantCell{{ws[i].VariantNames(ws[i].Cells[0]), 1, mean, 1}})
	}
	if ws[1].Quality.BeforeWindow != 1 || ws[3].Quality.BeforeWindow != 1 {
		t.Errorf("before-window counts %d, %d; want 1, 1", ws[1].Quality.BeforeWindow, ws[3].Quality.BeforeWindow)
	}
	if ws[2].Members[1].Phase != 2 {
		t.Errorf("window 3 has t3 phase %d, want 2", ws[2].Members[1].Phase)
	}
	if _, ok := s.Current("t2"); ok {
		t.Error("t2 has an active window after stopping")
	}
	if q := s.Quality("t2"); q.Seen != 6 || q.Counted != 4 {
		t.Errorf("t2 quality over windows %+v", q)
	}
	// Resume at 5h: a new window from the resume, not from the old phase start.
	clk.Set(t0.Add(5 * time.Hour))
	t2.Running = true
	if err := s.PutTest(t2); err != nil {
		t.Fatal(err)
	}
	if w, _ := s.Current("t2"); w.Start != t0.Add(5*time.Hour) || w.Seq != 5 {
		t.Errorf("after resume: window #%d from %v", w.Seq, w.Start)
	}
}

func TestSubsetterGraphChange(t *testing.T) {
	s, c, clk := newWorked(t, hashTable{"t2/u1": "control", "t3/u1": "a", "t5/u1": "on"})
	c.ConsumeObservation(newObs("u1", time.Minute).serve("t2", "control", "Svc2").latency("Svc2", 1).build())
	// Svc3 now calls Svc5: t5's latency (upstream of Svc5) reaches Svc3,
	// which t2 depends on.
	clk.Set(t0.Add(time.Hour))
	g, err := NewGraph(append(workedGraph(t).Edges(), tracing.Edge{Caller: "Svc3", Callee: "Svc5", Calls: 5}))
	if err != nil {
		t.Fatal(err)
	}
	s.SetGraph(g)
	sub, _ := s.Subset("t2")
	if !slices.Equal(sub.Tests(), []string{"t2", "t3", "t5"}) {
		t.Fatalf("t2 subset = %v", sub.Tests())
	}
	ws := s.List("t2")
	// All members have run since t0, so the new window starts at t0.
	want := []windowSummary{{1, 0, time.Hour, []string{"t2", "t3"}}, {2, 0, -1, []string{"t2", "t3", "t5"}}}
	if got := summarize(ws); !reflect.DeepEqual(got, want) {
		t.Fatalf("windows\n got %+v\nwant %+v", got, want)
	}
	// Windows with unchanged membership are kept: t3's and t5's.
	for _, vp := range []string{"t3", "t5"} {
		if n := len(s.List(vp)); n != 1 {
			t.Errorf("%s has %d windows, want 1", vp, n)
		}
	}
}

func TestSubsetterEmptyWindowsHidden(t *testing.T) {
	clk := testkit.NewClock(t0)
	s := newStack(WithClock(clk.Now))
	s.SetGraph(workedGraph(t))
	// Loading tests one by one churns t2's window; empty ones are hidden
	// and pruned after a minute.
	for _, x := range workedTests() {
		if err := s.PutTest(x); err != nil {
			t.Fatal(err)
		}
	}
	if ws := s.List("t2"); len(ws) != 1 || !ws[0].Open() {
		t.Fatalf("t2 windows = %+v, want one open", summarize(ws))
	}
	clk.Set(t0.Add(2 * time.Minute))
	s.RemoveTest("t5")
	s.Windows.mu.Lock()
	n := len(s.windows["t2"])
	s.Windows.mu.Unlock()
	if n != 1 {
		t.Errorf("t2 keeps %d windows internally, want 1 after pruning", n)
	}
	if _, ok := s.Subset("t5"); ok {
		t.Error("removed t5 still has a subset")
	}
}

func TestSubsetterInvalid(t *testing.T) {
	s := newStack()
	good := workedTests()[0]
	for name, mut := range map[string]func(*Test){
		"no variants":      func(x *Test) { x.Variants = nil },
		"repeated variant": func(x *Test) { x.Variants = []string{"a", "a"} },
		"empty variant":    func(x *Test) { x.Variants = []string{"a", ""} },
		"bad metric":       func(x *Test) { x.Metric = "attribute:" },
		"unknown metric":   func(x *Test) { x.Metric = "p99" },
		"bad scope":        func(x *Test) { x.Emits = []Interference{{"latency", "nearby"}} },
		"empty change":     func(x *Test) { x.ChangeService = "" },
	} {
		x := good
		mut(&x)
		if err := s.PutTest(x); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: PutTest error = %v, want ErrInvalid", name, err)
		}
	}
	if err := s.SetTests([]Test{good, good}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetTests with a repeated id: error = %v, want ErrInvalid", err)
	}
	if len(s.Tests()) != 0 {
		t.Error("invalid input changed the tests")
	}
	x := good
	x.Metric = "attribute:shop.order.value"
	if err := s.PutTest(x); err != nil {
		t.Errorf("attribute metric: %v", err)
	}
}

type failStore struct{ *MemStore }

func (failStore) SaveWindow(context.Context, WindowCells, UnitChanges) error {
	return errors.New("disk full")
}

func TestFlushRestore(t *testing.T) {
	ctx := context.Background()
	h := hashTable{"t2/u1": "treatment", "t3/u1": "b", "t2/u2": "control", "t3/u2": "c"}
	s, c, clk := newWorked(t, h)
	st := NewMemStore()
	feed := func(c *CellCounter) {
		c.ConsumeObservation(newObs("u1", 5*time.Hour).serve("t2", "treatment", "Svc2").serve("t3", "b", "Svc3").latency("Svc2", 10).latency("Svc3", 1).build())
		c.ConsumeObservation(newObs("u2", 5*time.Hour).serve("t2", "control", "Svc2").latency("Svc2", 20).build())
	}
	feed(c)
	// A closed window: t5 joins t2's subset for a while.
	clk.Set(t0.Add(time.Hour))
	tests := s.Tests()
	tests[2].Emits = []Interference{{KindLatency, ScopeAll}}
	if err := s.SetTests(tests); err != nil {
		t.Fatal(err)
	}
	h["t5/u1"] = "on"
	feed(c)
	if err := s.Flush(ctx, failStore{st}); err == nil {
		t.Fatal("Flush into a failing store succeeded")
	}
	if err := s.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	before := s.All()
	stored, _ := st.LoadWindows(ctx)
	// t5's window saw nothing, so it was not saved.
	if nonEmpty := slices.DeleteFunc(slices.Clone(before), func(w WindowCells) bool { return w.Quality.Seen == 0 }); !reflect.DeepEqual(stored, nonEmpty) {
		t.Fatalf("stored windows differ from the snapshot:\n%+v\n%+v", stored, before)
	}
	// Nothing changed: nothing to save.
	if err := s.Flush(ctx, failStore{st}); err != nil {
		t.Errorf("Flush with nothing pending: %v", err)
	}

	// Restart: same tests, same graph, restore.
	clk2 := testkit.NewClock(t0)
	clk2.Set(t0.Add(2 * time.Hour))
	s2 := newStack(WithClock(clk2.Now))
	s2.SetGraph(workedGraph(t))
	if err := s2.SetTests(s.Tests()); err != nil {
		t.Fatal(err)
	}
	if err := s2.Restore(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s2.Restore(ctx, st); !errors.Is(err, ErrRestored) {
		t.Errorf("second Restore error = %v, want ErrRestored", err)
	}
	restored := s2.All()
	// A window that never saw a request is not stored: after the restart
	// it is a new window, opened at the restart.
	for i := range restored {
		if restored[i].Quality.Seen == 0 && i < len(before) && before[i].Quality.Seen == 0 {
			if !restored[i].Opened.Equal(clk2.Now()) {
				t.Errorf("empty window %s opened %v, want the restart %v", restored[i].Viewpoint, restored[i].Opened, clk2.Now())
			}
			restored[i].Opened = before[i].Opened
		}
	}
	if !reflect.DeepEqual(restored, before) {
		t.Fatalf("restored\n got %+v\nwant %+v", restored, before)
	}
	// Counting continues into the resumed windows.
	feed(NewCellCounter(s2.Windows, h))
	w, _ := s2.Current("t2")
	if w.Seq != 2 || w.Quality.Seen != 4 {
		t.Errorf("resumed t2 window #%d seen %d, want #2 seen 4", w.Seq, w.Quality.Seen)
	}

	// A restart with a different membership keeps the stored windows
	// closed and opens a new one after them.
	s3 := newStack(WithClock(clk2.Now))
	s3.SetGraph(workedGraph(t))
	if err := s3.SetTests(workedTests()); err != nil {
		t.Fatal(err)
	}
	if err := s3.Restore(ctx, st); err != nil {
		t.Fatal(err)
	}
	got := summarize(s3.List("t2"))
	want := []windowSummary{
		{1, 0, time.Hour, []string{"t2", "t3"}},
		{2, 0, 2 * time.Hour, []string{"t2", "t3", "t5"}},
		{3, 2 * time.Hour, -1, []string{"t2", "t3"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("windows after a changed restart\n got %+v\nwant %+v", got, want)
	}
}

func TestWindowCellsJSON(t *testing.T) {
	s, c, _ := newWorked(t, hashTable{"t2/u1": "treatment", "t3/u1": "b"})
	c.ConsumeObservation(newObs("u1", time.Minute).serve("t2", "treatment", "Svc2").latency("Svc2", 10).build())
	w, _ := s.Current("t2")
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var back WindowCells
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, w) {
		t.Errorf("round trip\n got %+v\nwant %+v\njson %s", back, w, b)
	}
}

// TestFirstStartCountsFromPhaseStart: a test that goes DRAFT → RUNNING is
// counted from its phase's recorded start, not from when the subsetter
// heard of it (requests in between belong to the phase).
func TestFirstStartCountsFromPhaseStart(t *testing.T) {
	clk := testkit.NewClock(t0)
	clk.Set(t0.Add(time.Hour))
	s := newStack(WithClock(clk.Now))
	draft := Test{ID: "t", ChangeService: "a", MeasureService: "a", Variants: []string{"c", "v"}, Metric: "latency_ms"}
	if err := s.SetTests([]Test{draft}); err != nil {
		t.Fatal(err)
	}
	started := draft
	started.Running, started.Phase, started.PhaseStart = true, 1, clk.Now()
	clk.Set(t0.Add(time.Hour + 5*time.Second)) // the registry's change reaches the subsetter later
	if err := s.SetTests([]Test{started}); err != nil {
		t.Fatal(err)
	}
	w, ok := s.Current("t")
	if !ok || !w.Start.Equal(started.PhaseStart) {
		t.Fatalf("window start %v (ok %v), want the phase start %v", w.Start, ok, started.PhaseStart)
	}
}

// TestObserveEdgesHysteresis: an edge enters the subsets' graph at the
// minimum call count, stays while it carries any call, leaves at zero, and
// windows roll only when the admitted set changes.
func TestObserveEdgesHysteresis(t *testing.T) {
	s := newStack(WithClock(testkit.NewClock(t0).Now), WithMinEdgeCalls(3))
	if err := s.SetTests(workedTests()); err != nil {
		t.Fatal(err)
	}
	e := func(calls uint64) []tracing.Edge {
		return []tracing.Edge{{Caller: "Svc1", Callee: "Svc2", Calls: 100}, {Caller: "Svc2", Callee: "Svc3", Calls: calls}}
	}
	steps := []struct {
		calls     uint64
		wantEdges int
		wantT3In  bool // t3 (on Svc3) joins t2's subset only through Svc2 → Svc3
	}{
		{2, 1, false}, // below the minimum: out
		{3, 2, true},  // at the minimum: in
		{1, 2, true},  // known and still called: stays
		{0, 1, false}, // no call left in the window: out
		{2, 1, false}, // must reach the minimum again
	}
	for i, st := range steps {
		if err := s.ObserveEdges(e(st.calls)); err != nil {
			t.Fatal(err)
		}
		if n := len(s.Graph().Edges()); n != st.wantEdges {
			t.Errorf("step %d (%d calls): %d edges in the graph, want %d", i, st.calls, n, st.wantEdges)
		}
		sub, _ := s.Subset("t2")
		if in := slices.ContainsFunc(sub.Members, func(m Member) bool { return m.Test == "t3" }); in != st.wantT3In {
			t.Errorf("step %d (%d calls): t3 in t2's subset = %v, want %v", i, st.calls, in, st.wantT3In)
		}
	}
	// Count changes alone do not roll the window.
	cur, _ := s.Current("t2")
	before := cur.Seq
	if err := s.ObserveEdges([]tracing.Edge{{Caller: "Svc1", Callee: "Svc2", Calls: 7}}); err != nil {
		t.Fatal(err)
	}
	if w, _ := s.Current("t2"); w.Seq != before || len(s.Graph().Edges()) != 1 || s.Graph().Edges()[0].Calls != 100 {
		t.Errorf("a count-only change replaced the graph or rolled the window: seq %d (was %d), edges %v", w.Seq, before, s.Graph().Edges())
	}
	if err := s.ObserveEdges([]tracing.Edge{{Caller: "", Callee: "x", Calls: 9}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty caller: %v, want ErrInvalid", err)
	}
}

// stack is a Subsetter feeding a Windows, wired as the daemon wires them,
// so a test reads subsets and windows through one value.
type stack struct {
	*Subsetter
	*Windows
}

// newStack returns a stack whose Subsetter and Windows share opts.
func newStack(opts ...Option) stack {
	ws := NewWindows(opts...)
	return stack{NewSubsetter(ws, opts...), ws}
}
