package subset

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/testkit"
)

// planOf returns ws's plan as a follower receives it: through JSON.
func planOf(t *testing.T, ws *Windows) WindowPlan {
	t.Helper()
	b, err := json.Marshal(ws.Plan())
	if err != nil {
		t.Fatal(err)
	}
	var p WindowPlan
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// samePlan fails unless a and b have the same active windows (viewpoint,
// seq, start, opened, measurement, members, not modelled) and last seqs.
func samePlan(t *testing.T, what string, got, want WindowPlan) {
	t.Helper()
	if d := testkit.JSONDiff(want, got, 0, what); d != "" {
		t.Errorf("%s", d)
	}
}

// leaderChanges drives a leader over the worked example through changes
// that open, close and reopen windows, and returns its plan after each.
func leaderChanges(t *testing.T, s stack, clk *testkit.Clock) []WindowPlan {
	plans := []WindowPlan{planOf(t, s.Windows)}
	step := func(f func()) {
		clk.Advance(time.Minute)
		f()
		plans = append(plans, planOf(t, s.Windows))
	}
	step(func() { setTest(t, s, "t3", func(x *Test) { x.Variants = []string{"a", "b"} }) })
	step(func() { setTest(t, s, "t5", func(x *Test) { x.Running = false }) })
	step(func() { setTest(t, s, "t5", func(x *Test) { x.Running = true }) })
	step(func() { s.SetGraph(nil) })
	step(func() { setTest(t, s, "t2", func(x *Test) { x.Phase = 2; x.PhaseStart = clk.Now() }) })
	return plans
}

// A follower that adopts each of the leader's plans, and one that adopts
// only the last (notifications coalesced), end with the leader's active
// windows and last seqs; the windows they adopted count observations.
func TestAdoptFollowsLeader(t *testing.T) {
	h := hashTable{"t2/u1": "treatment", "t3/u1": "a", "t5/u1": "on"}
	leader, _, clk := newWorked(t, h)
	plans := leaderChanges(t, leader, clk)
	every, last := NewWindows(WithClock(clk.Now)), NewWindows(WithClock(clk.Now))
	for _, p := range plans {
		every.Adopt(clk.Now(), p)
	}
	last.Adopt(clk.Now(), plans[len(plans)-1])
	want := planOf(t, leader.Windows)
	if len(want.Active) != 3 || want.LastSeq["t2"] < 4 {
		t.Fatalf("the leader's plan %+v: want 3 active windows and t2 past #3", want)
	}
	samePlan(t, "adopting every plan", planOf(t, every), want)
	samePlan(t, "adopting the last plan", planOf(t, last), want)

	for _, f := range []*Windows{every, last} {
		c := NewCellCounter(f, h)
		c.ConsumeObservation(newObs("u1", time.Hour).serve("t2", "treatment", "Svc2").phase(2).latency("Svc2", 7).build())
		w, _ := f.Current("t2")
		if w.Quality.Counted != 1 {
			t.Errorf("adopted window t2#%d counted %+v, want 1 request", w.Seq, w.Quality)
		}
	}
	if ws := every.List("t2"); len(ws) != 1 {
		t.Errorf("t2's windows that counted: %d, want the active one only", len(ws))
	}
}

// adoptedCounting returns a leader over the worked example, its first
// plan, and a follower that adopted it and counted n requests of u1 into
// t5's window.
func adoptedCounting(t *testing.T, n int) (stack, WindowPlan, *Windows, *testkit.Clock) {
	h := hashTable{"t2/u1": "treatment", "t3/u1": "a", "t5/u1": "on"}
	leader, _, clk := newWorked(t, h)
	p1 := planOf(t, leader.Windows)
	f := NewWindows(WithClock(clk.Now))
	f.Adopt(clk.Now(), p1)
	c := NewCellCounter(f, h)
	for range n {
		c.ConsumeObservation(newObs("u1", time.Minute).serve("t5", "on", "Svc5").latency("Svc5", 3).build())
	}
	return leader, p1, f, clk
}

// Adopt closes the active window of a viewpoint not in the plan, reopens
// a closed window of the planned seq that still counts, and replaces one
// of another membership.
func TestAdoptClosesAndReopens(t *testing.T) {
	_, p1, f, clk := adoptedCounting(t, 1)

	without := p1
	without.Active = nil
	for _, p := range p1.Active {
		if p.Viewpoint != "t5" {
			without.Active = append(without.Active, p)
		}
	}
	clk.Advance(time.Second)
	f.Adopt(clk.Now(), without)
	if _, ok := f.Current("t5"); ok {
		t.Fatal("t5 still has an active window after a plan without it")
	}
	if ws := f.List("t5"); len(ws) != 1 || ws[0].Open() || ws[0].Seq != 1 {
		t.Fatalf("t5's windows after a plan without it: %+v", ws)
	}

	clk.Advance(time.Second)
	f.Adopt(clk.Now(), p1)
	w, ok := f.Current("t5")
	if !ok || w.Seq != 1 || !w.Open() || w.Quality.Counted != 1 {
		t.Fatalf("t5 after the plan with #1 again: %+v, want #1 reopened with its request", w)
	}

	other := p1
	other.Active = append([]WindowCells(nil), p1.Active...)
	for i := range other.Active {
		if other.Active[i].Viewpoint == "t5" {
			other.Active[i].Members = []WindowMember{{Test: "t5", Phase: 1, Variants: []string{"off", "on", "max"}}}
		}
	}
	f.Adopt(clk.Now(), other)
	if w, _ := f.Current("t5"); w.Seq != 1 || len(w.Members[0].Variants) != 3 || w.Quality.Seen != 0 {
		t.Errorf("t5 after a plan of #1 with 3 variants: %+v, want a new window #1", w)
	}
	if ws := f.List("t5"); len(ws) != 1 {
		t.Errorf("t5 has %d windows of seq 1, want 1", len(ws))
	}
}

// A follower restarted (kill -9) adopts the stored plan before Restore:
// it resumes its stored window of the planned seq; when the plan has
// moved on, its stored window stays closed and the adopted window keeps
// the leader's seq (not renumbered after the stored ones).
func TestAdoptThenRestore(t *testing.T) {
	ctx := context.Background()
	leader, p1, f, clk := adoptedCounting(t, 3)
	st := NewMemStore()
	if err := f.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}

	same := NewWindows(WithClock(clk.Now))
	same.Adopt(clk.Now(), p1)
	if err := same.Restore(ctx, st); err != nil {
		t.Fatal(err)
	}
	if w, _ := same.Current("t5"); w.Seq != 1 || w.Quality.Counted != 3 {
		t.Errorf("restarted on the same plan: t5 %+v, want #1 resumed with 3 requests", w)
	}
	samePlan(t, "restarted on the same plan", planOf(t, same), p1)

	clk.Advance(time.Minute)
	setTest(t, leader, "t5", func(x *Test) { x.Variants = []string{"off", "on", "max"} })
	setTest(t, leader, "t5", func(x *Test) { x.Variants = []string{"off", "on"} })
	p3 := planOf(t, leader.Windows)
	moved := NewWindows(WithClock(clk.Now))
	moved.Adopt(clk.Now(), p3)
	if err := moved.Restore(ctx, st); err != nil {
		t.Fatal(err)
	}
	w, _ := moved.Current("t5")
	if w.Seq != 3 || w.Quality.Seen != 0 {
		t.Errorf("restarted on a later plan: t5 %+v, want #3 (the leader's) with nothing counted", w)
	}
	if ws := moved.List("t5"); len(ws) != 2 || ws[0].Seq != 1 || ws[0].Open() || ws[0].Quality.Counted != 3 {
		t.Errorf("restarted on a later plan: t5's windows %+v, want #1 closed with its 3 requests, then #3", ws)
	}
	samePlan(t, "restarted on a later plan", planOf(t, moved), p3)
}

// A follower stored its window of the planned seq closed (it had adopted
// a plan without it, or closed it while it led and was deposed before
// publishing) and restarts on a plan in which that window is active
// again: Restore resumes it, as Adopt reopens it while running, instead
// of keeping it final beside an empty window of the same seq (whose saves
// would then replace the stored counts).
func TestAdoptThenRestoreReopensStoredSeq(t *testing.T) {
	ctx := context.Background()
	_, p1, f, clk := adoptedCounting(t, 3)
	without := p1
	without.Active = slices.DeleteFunc(slices.Clone(p1.Active), func(w WindowCells) bool { return w.Viewpoint == "t5" })
	clk.Advance(time.Second)
	f.Adopt(clk.Now(), without)
	st := NewMemStore()
	if err := f.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Second)
	r := NewWindows(WithClock(clk.Now))
	r.Adopt(clk.Now(), p1)
	if err := r.Restore(ctx, st); err != nil {
		t.Fatal(err)
	}
	if w, ok := r.Current("t5"); !ok || w.Seq != 1 || w.Quality.Counted != 3 {
		t.Errorf("restarted on the plan with t5#1 active: current %+v, want #1 resumed with its 3 requests", w)
	}
	if ws := r.List("t5"); len(ws) != 1 {
		t.Errorf("t5 has %d windows (seqs %v), want one #1", len(ws), seqsOf(ws))
	}
	samePlan(t, "restarted", planOf(t, r), p1)
}

func seqsOf(ws []WindowCells) []int {
	var out []int
	for _, w := range ws {
		out = append(out, w.Seq)
	}
	return out
}

// A follower whose Subsetter (no sink) has the leader's tests and
// admitted graph takes over: its first views keep the adopted windows,
// and its next window of each viewpoint follows the leader's last seq,
// also one it never adopted (plans coalesced).
func TestHandOverContinuesSeq(t *testing.T) {
	h := hashTable{}
	leader, _, clk := newWorked(t, h)
	plans := leaderChanges(t, leader, clk)
	follower := NewWindows(WithClock(clk.Now))
	sub := NewSubsetter(nil, WithClock(clk.Now))
	if err := sub.SetTests(leader.Tests()); err != nil {
		t.Fatal(err)
	}
	if err := sub.SetAdmitted(leader.Admitted()); err != nil {
		t.Fatal(err)
	}
	follower.Adopt(clk.Now(), plans[len(plans)-1])
	before := planOf(t, follower)

	clk.Advance(time.Minute)
	sub.SetSink(follower)
	samePlan(t, "after the hand-over", planOf(t, follower), before)

	clk.Advance(time.Minute)
	tests := sub.Tests()
	for i := range tests {
		tests[i].Sticky = true
	}
	if err := sub.SetTests(tests); err != nil {
		t.Fatal(err)
	}
	after := planOf(t, follower)
	for _, p := range after.Active {
		if want := before.LastSeq[p.Viewpoint] + 1; p.Seq != want {
			t.Errorf("%s's window after the hand-over is #%d, want #%d", p.Viewpoint, p.Seq, want)
		}
	}
}
