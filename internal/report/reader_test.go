package report

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/subset"
)

// storedWindows has stored windows per viewpoint and active ones for some.
type storedWindows struct {
	list   map[string][]subset.WindowCells
	active map[string]subset.WindowCells
}

func (s storedWindows) List(vp string) []subset.WindowCells { return s.list[vp] }
func (s storedWindows) Current(vp string) (subset.WindowCells, bool) {
	w, ok := s.active[vp]
	return w, ok
}

// TestReaderPicksWindows: window 0 is the active window, or the last one
// (frozen, with a note) of a test no longer running; window n is Seq n;
// what cannot be found wraps ErrNotFound or ErrNoWindow.
func TestReaderPicksWindows(t *testing.T) {
	ctx := context.Background()
	reg, err := assign.NewRegistry(ctx, &assign.MemStore{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"live", "done", "fresh"} {
		if _, err := reg.Create(ctx, &assign.Experiment{ID: id, ChangeService: "a", MeasureService: "a",
			Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "treatment", Weight: 1}}, Plan: assign.Plan{MDE: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	win := func(vp string, seq int, open bool) subset.WindowCells {
		w := subset.WindowCells{Viewpoint: vp, Seq: seq, Start: start, Quality: subset.Quality{Seen: 1},
			Members: []subset.WindowMember{{Test: vp, Phase: 1, Variants: []string{"control", "treatment"}}}}
		if !open {
			w.End = start.Add(time.Hour)
		}
		return w
	}
	ws := storedWindows{
		list:   map[string][]subset.WindowCells{"live": {win("live", 1, false), win("live", 2, true)}, "done": {win("done", 1, false), win("done", 3, false)}},
		active: map[string]subset.WindowCells{"live": win("live", 2, true)},
	}
	rd := NewReader(reg, Local(ws))
	for _, tc := range []struct {
		test      string
		window    int
		wantSeq   int
		wantFroze bool
		wantErr   error
	}{
		{"live", 0, 2, false, nil},
		{"live", 1, 1, false, nil},
		{"done", 0, 3, true, nil},
		{"done", 1, 1, false, nil},
		{"done", 2, 0, false, ErrNotFound},
		{"fresh", 0, 0, false, ErrNoWindow},
		{"fresh", 1, 0, false, ErrNotFound},
		{"nope", 0, 0, false, ErrNotFound},
	} {
		r, err := rd.Report(context.Background(), tc.test, tc.window, Options{})
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s window %d: error %v, want %v", tc.test, tc.window, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s window %d: %v", tc.test, tc.window, err)
			continue
		}
		froze := strings.Contains(strings.Join(r.Notes, "\n"), "frozen")
		if r.Window.Seq != tc.wantSeq || froze != tc.wantFroze {
			t.Errorf("%s window %d: got window %d (frozen note %v), want %d (%v)", tc.test, tc.window, r.Window.Seq, froze, tc.wantSeq, tc.wantFroze)
		}
	}
}

// TestReaderLooks: reports of a running test's current window, and
// LookAll, record looks that later reports carry; an older window's
// report has none.
func TestReaderLooks(t *testing.T) {
	ctx := context.Background()
	reg := registryWith(t, &assign.Experiment{ID: "vp", ChangeService: "a", MeasureService: "a",
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "treat", Weight: 1}}, Plan: assign.Plan{MDE: 5, SD: 10}})
	if _, err := reg.Start(ctx, "vp"); err != nil {
		t.Fatal(err)
	}
	cur := window(func(i, j int) analysis.CellStats { return exact(20, 100, 10) })
	cur.Seq = 2
	old := cur
	old.Seq, old.End = 1, now
	ws := storedWindows{list: map[string][]subset.WindowCells{"vp": {old, cur}}, active: map[string]subset.WindowCells{"vp": cur}}
	rd := NewReader(reg, Local(ws))
	rd.LookAll(context.Background(), now)
	cur.Cells[0].Stats = exact(30, 100, 10)
	ws.active["vp"] = cur
	rep, err := rd.Report(context.Background(), "vp", 0, Options{Now: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Looks) != 2 || rep.Looks[0].Units != 80 || rep.Looks[1].Units != 90 {
		t.Fatalf("looks %+v, want the LookAll one at 80 units and this one at 90", rep.Looks)
	}
	if rep, err := rd.Report(context.Background(), "vp", 1, Options{}); err != nil || rep.Looks != nil {
		t.Errorf("old window: looks %v, err %v; want none", rep.Looks, err)
	}
	if rep, err := rd.Report(context.Background(), "vp", 2, Options{}); err != nil || len(rep.Looks) != 2 {
		t.Errorf("current window by number: %d looks, err %v; want 2 (same units: no new look)", len(rep.Looks), err)
	}
}

// cancelWindows is a shared store's windows: a read returns nothing once
// its ctx is done, and counts the reads it was asked for.
type cancelWindows struct {
	storedWindows
	reads *int
}

func (c cancelWindows) Current(ctx context.Context, vp string) (subset.WindowCells, bool) {
	*c.reads++
	if ctx.Err() != nil {
		return subset.WindowCells{}, false
	}
	return c.storedWindows.Current(vp)
}

func (c cancelWindows) List(ctx context.Context, vp string) []subset.WindowCells {
	*c.reads++
	if ctx.Err() != nil {
		return nil
	}
	return c.storedWindows.List(vp)
}

// TestReportReadsWithinItsContext: Report hands its ctx to the windows
// (a merged read from PostgreSQL stops with the request that asked), and
// reads the current window once, not again to decide the look.
func TestReportReadsWithinItsContext(t *testing.T) {
	ctx := context.Background()
	reg := registryWith(t, &assign.Experiment{ID: "vp", ChangeService: "a", MeasureService: "a",
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "treatment", Weight: 1}}, Plan: assign.Plan{MDE: 1}})
	w := subset.WindowCells{Viewpoint: "vp", Seq: 1, Quality: subset.Quality{Seen: 1},
		Members: []subset.WindowMember{{Test: "vp", Phase: 1, Variants: []string{"control", "treatment"}}}}
	reads := 0
	rd := NewReader(reg, cancelWindows{storedWindows{list: map[string][]subset.WindowCells{"vp": {w}},
		active: map[string]subset.WindowCells{"vp": w}}, &reads})
	rep, err := rd.Report(ctx, "vp", 0, Options{})
	if err != nil || rep.Window.Seq != 1 || reads != 1 {
		t.Fatalf("Report = %v, %v after %d reads; want window 1 after 1 read", rep, err, reads)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	reads = 0
	if _, err := rd.Report(cancelled, "vp", 0, Options{}); !errors.Is(err, context.Canceled) || reads != 2 {
		t.Errorf("Report with its request cancelled: err = %v after %d reads, want context.Canceled after the windows saw the cancelled ctx (2 reads)", err, reads)
	}
}

// registryWith returns an in-memory registry holding xs (as drafts).
func registryWith(t *testing.T, xs ...*assign.Experiment) *assign.Registry {
	t.Helper()
	ctx := context.Background()
	reg, err := assign.NewRegistry(ctx, &assign.MemStore{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs {
		if _, err := reg.Create(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}
