package subset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Subsetter holds the current tests and dependency graph, keeps every
// running test's subset up to date, and keeps each viewpoint's analysis
// windows, whose cells a Counter fills. It is safe for concurrent use.
//
// Windows. A viewpoint's window is the span during which its subset's
// membership stays the same: the same member tests, each in the same
// phase with the same variants, and the same measure service and metric
// for the viewpoint. Any change — a member joins or leaves (test started,
// stopped, changed, or the graph changed), a member's phase changes, the
// viewpoint stops running — closes the window (End = now) and, while the
// viewpoint runs, opens the next. Closed windows stay readable (Windows,
// Snapshot) and are persisted by Flush.
//
// A window's Start is the latest of its members' running-since times —
// and, when it replaces a window one of whose members stopped running (or
// was removed), not before that moment — and it counts only requests that
// started at or after Start. So a test started while others run joins
// their subsets from the moment it started, and a stopped test's traffic
// never mixes into the window that no longer models it. A test's
// running-since time is its PhaseStart when it is first seen running or
// when its phase changes (now when PhaseStart is zero), and now when it
// is seen to go from not running to running (a resume) or its variants,
// stickiness, measure service or metric change in the same phase.
//
// Every observation is counted into the window that was active for its
// viewpoint when it was consumed. Windows of one viewpoint may therefore
// overlap in time (a delayed trace from before a graph-driven membership
// change counts into the new window, whose members were all running then).
//
// Recomputation is eager: each mutation recomputes every subset with
// Compute (cheap: reachability is precomputed per Graph) and compares each
// viewpoint's membership signature with its active window's.
type Subsetter struct {
	cfg config

	mu       sync.Mutex
	tests    map[string]*testState
	graph    *Graph
	subsets  []Subset             // current, sorted by viewpoint
	windows  map[string][]*window // per viewpoint, by seq
	active   map[string]*window
	restored bool

	plan atomic.Pointer[plan]
}

type testState struct {
	t     Test
	since time.Time // running in the current phase since; zero when not running
}

// NewSubsetter returns a Subsetter with no tests and an empty graph.
// Options: WithCap, WithClock.
func NewSubsetter(opts ...Option) *Subsetter {
	s := &Subsetter{
		cfg:     newConfig(opts),
		tests:   map[string]*testState{},
		graph:   emptyGraph,
		windows: map[string][]*window{},
		active:  map[string]*window{},
	}
	s.plan.Store(&plan{index: map[string]int32{}})
	return s
}

// PutTest creates or replaces the test with t.ID (create, start, stop,
// pause, phase or attribute change) and recomputes. An invalid test gives
// an error wrapping ErrInvalid and changes nothing.
func (s *Subsetter) PutTest(t Test) error {
	if err := t.Validate(); err != nil {
		return err
	}
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tests[t.ID] = s.nextState(t, now)
	s.recompute(now)
	return nil
}

// SetTests replaces all tests with tests (tests not listed are removed)
// and recomputes once: the way to load the tests at startup. An invalid or
// repeated test gives an error wrapping ErrInvalid and changes nothing.
func (s *Subsetter) SetTests(tests []Test) error {
	seen := make(map[string]struct{}, len(tests))
	for _, t := range tests {
		if err := t.Validate(); err != nil {
			return err
		}
		if _, dup := seen[t.ID]; dup {
			return fmt.Errorf("test %q: id is repeated: %w", t.ID, ErrInvalid)
		}
		seen[t.ID] = struct{}{}
	}
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*testState, len(tests))
	for _, t := range tests {
		next[t.ID] = s.nextState(t, now)
	}
	s.tests = next
	s.recompute(now)
	return nil
}

// RemoveTest forgets the test (as if stopped) and recomputes. Its windows
// stay readable. Removing an unknown test does nothing.
func (s *Subsetter) RemoveTest(id string) {
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tests[id]; !ok {
		return
	}
	delete(s.tests, id)
	s.recompute(now)
}

// SetGraph replaces the dependency graph and recomputes. nil is the empty
// graph. Under a cap, call-volume changes alone can change which members
// are kept, and so open new windows: feed graphs at a coarse interval.
func (s *Subsetter) SetGraph(g *Graph) {
	if g == nil {
		g = emptyGraph
	}
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.graph = g
	s.recompute(now)
}

// Graph returns the current graph (never nil).
func (s *Subsetter) Graph() *Graph {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.graph
}

// Tests returns the tests, sorted by id.
func (s *Subsetter) Tests() []Test {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Test, 0, len(s.tests))
	for _, id := range slices.Sorted(maps.Keys(s.tests)) {
		out = append(out, s.tests[id].t)
	}
	return out
}

// Subsets returns the current subsets of all running tests, sorted by
// viewpoint. The result must be treated as read-only.
func (s *Subsetter) Subsets() []Subset {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.subsets)
}

// Subset returns the viewpoint's current subset; false when the test is
// unknown or not running.
func (s *Subsetter) Subset(viewpoint string) (Subset, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := slices.BinarySearchFunc(s.subsets, viewpoint, func(x Subset, id string) int {
		return strings.Compare(x.Viewpoint, id)
	})
	if !ok {
		return Subset{}, false
	}
	return s.subsets[i], true
}

// Windows returns snapshots of the viewpoint's windows, oldest first; the
// last is the active one when the viewpoint is running. Windows that
// closed before any observation reached them are left out.
func (s *Subsetter) Windows(viewpoint string) []WindowCells {
	s.mu.Lock()
	ws := slices.Clone(s.windows[viewpoint])
	s.mu.Unlock()
	return visible(ws)
}

// visible snapshots ws, leaving out closed windows that never saw an
// observation.
func visible(ws []*window) []WindowCells {
	var out []WindowCells
	for _, w := range ws {
		if wc := w.snapshot(); wc.Open() || wc.Quality.Seen > 0 {
			out = append(out, wc)
		}
	}
	return out
}

// Current returns a snapshot of the viewpoint's active window; false when
// the viewpoint is not running.
func (s *Subsetter) Current(viewpoint string) (WindowCells, bool) {
	s.mu.Lock()
	w := s.active[viewpoint]
	s.mu.Unlock()
	if w == nil {
		return WindowCells{}, false
	}
	return w.snapshot(), true
}

// Snapshot returns snapshots of every window of every viewpoint, sorted by
// viewpoint then seq, leaving out closed windows that never saw an
// observation.
func (s *Subsetter) Snapshot() []WindowCells {
	s.mu.Lock()
	var ws []*window
	for _, vp := range slices.Sorted(maps.Keys(s.windows)) {
		ws = append(ws, s.windows[vp]...)
	}
	s.mu.Unlock()
	return visible(ws)
}

// Quality returns the viewpoint's data-quality counters summed over all
// its windows.
func (s *Subsetter) Quality(viewpoint string) Quality {
	s.mu.Lock()
	ws := slices.Clone(s.windows[viewpoint])
	s.mu.Unlock()
	var q Quality
	for _, w := range ws {
		q.Add(w.quality())
	}
	return q
}

// Store persists window snapshots. The lead's bbolt store and MemStore
// implement it.
type Store interface {
	// SaveWindow stores w under (w.Viewpoint, w.Seq), replacing what was
	// stored there. Idempotent.
	SaveWindow(ctx context.Context, w WindowCells) error
	// LoadWindows returns every stored window, in any order.
	LoadWindows(ctx context.Context) ([]WindowCells, error)
}

// Flush saves every window that changed since its last successful save
// (new observations, or closed), skipping windows that never saw an
// observation. Observations counted after the last Flush are lost on a
// crash. On a save error Flush stops and returns it wrapped; the windows
// not saved stay pending for the next Flush.
func (s *Subsetter) Flush(ctx context.Context, st Store) error {
	s.mu.Lock()
	var ws []*window
	for _, vp := range slices.Sorted(maps.Keys(s.windows)) {
		ws = append(ws, s.windows[vp]...)
	}
	s.mu.Unlock()
	for _, w := range ws {
		if !w.dirty.Swap(false) {
			continue
		}
		wc := w.snapshot()
		if wc.Quality.Seen == 0 {
			continue
		}
		if err := st.SaveWindow(ctx, wc); err != nil {
			w.dirty.Store(true)
			return fmt.Errorf("save window %s#%d: %w", wc.Viewpoint, wc.Seq, err)
		}
	}
	return nil
}

// ErrRestored is returned by a second call to Restore.
var ErrRestored = errors.New("subset: windows already restored")

// Restore loads stored windows once, at startup, after SetTests and
// SetGraph and before the first Flush. A stored open window whose
// membership signature equals a viewpoint's active window is resumed: its
// cells and counters are merged into the active window, which takes its
// Seq and Start. Every other stored window is kept as a closed window (an
// open one is closed now). Active windows are renumbered after the
// viewpoint's stored ones.
func (s *Subsetter) Restore(ctx context.Context, st Store) error {
	stored, err := st.LoadWindows(ctx)
	if err != nil {
		return fmt.Errorf("load windows: %w", err)
	}
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.restored {
		return ErrRestored
	}
	s.restored = true
	slices.SortFunc(stored, compareWindowCells)
	resumed := map[string]bool{}
	maxSeq := map[string]int{}
	for _, wc := range stored {
		maxSeq[wc.Viewpoint] = max(maxSeq[wc.Viewpoint], wc.Seq)
		if a := s.active[wc.Viewpoint]; a != nil && wc.Open() && !resumed[wc.Viewpoint] &&
			a.sig == signature(wc.MeasureService, wc.Metric, wc.Members) {
			a.merge(wc)
			a.mu.Lock()
			a.seq, a.start = wc.Seq, wc.Start
			if !wc.Opened.IsZero() {
				a.opened = wc.Opened
			}
			a.mu.Unlock()
			resumed[wc.Viewpoint] = true
			continue
		}
		w := windowFromCells(wc)
		if w.end.IsZero() {
			w.end = now
		}
		s.windows[wc.Viewpoint] = append(s.windows[wc.Viewpoint], w)
	}
	for vp, ws := range s.windows {
		if a := s.active[vp]; a != nil {
			if !resumed[vp] {
				a.mu.Lock()
				a.seq = maxSeq[vp] + 1
				a.mu.Unlock()
			}
			ws = slices.DeleteFunc(ws, func(w *window) bool { return w == a })
			ws = append(ws, a)
		}
		slices.SortStableFunc(ws, func(a, b *window) int { return a.seq - b.seq })
		s.windows[vp] = ws
	}
	s.publish()
	return nil
}

// nextState returns t's state given its previous one.
func (s *Subsetter) nextState(t Test, now time.Time) *testState {
	t.Emits = slices.Clone(t.Emits)
	t.Susceptible = slices.Clone(t.Susceptible)
	t.Variants = slices.Clone(t.Variants)
	st := &testState{t: t}
	if !t.Running {
		return st
	}
	phaseStart := t.PhaseStart
	if phaseStart.IsZero() {
		phaseStart = now
	}
	old, existed := s.tests[t.ID]
	switch {
	case !existed:
		st.since = phaseStart
	case old.t.Phase != t.Phase:
		// A first start or a new phase: counting starts when the phase
		// did, as the registry recorded it (requests between that moment
		// and this call are the phase's too).
		st.since = phaseStart
	case !old.t.Running:
		// Resumed in the same phase: from now on.
		st.since = maxTime(now, t.PhaseStart)
	case !slices.Equal(old.t.Variants, t.Variants) || old.t.Sticky != t.Sticky ||
		old.t.MeasureService != t.MeasureService || old.t.Metric != t.Metric:
		st.since = now
	default:
		st.since = old.since
	}
	return st
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// recompute recomputes every subset, rolls windows whose signature
// changed and publishes a new plan. Called with s.mu held.
func (s *Subsetter) recompute(now time.Time) {
	var running []Test
	for _, id := range slices.Sorted(maps.Keys(s.tests)) {
		if st := s.tests[id]; st.t.Running {
			running = append(running, st.t)
		}
	}
	subs, err := Compute(running, s.graph, WithCap(s.cfg.cap))
	if err != nil {
		// Unreachable: every stored test passed Validate.
		panic(fmt.Sprintf("subset: compute over validated tests: %v", err))
	}
	active := make(map[string]*window, len(subs))
	for _, sub := range subs {
		vp := s.tests[sub.Viewpoint].t
		members := make([]WindowMember, len(sub.Members))
		start := time.Time{}
		for i, m := range sub.Members {
			st := s.tests[m.Test]
			members[i] = WindowMember{Test: m.Test, Phase: st.t.Phase, Variants: st.t.Variants, Sticky: st.t.Sticky, Reasons: m.Reasons}
			start = maxTime(start, st.since)
		}
		w := s.active[sub.Viewpoint]
		if w != nil && w.sig == signature(vp.MeasureService, vp.Metric, members) {
			w.mu.Lock()
			for i := range w.members {
				w.members[i].Reasons = members[i].Reasons
			}
			w.notModelled = sub.NotModelled
			w.mu.Unlock()
			active[sub.Viewpoint] = w
			continue
		}
		if w != nil {
			s.close(w, now)
			// A member that stopped shaped requests until now.
			for _, m := range w.members {
				if st := s.tests[m.Test]; st == nil || !st.t.Running {
					start = maxTime(start, now)
				}
			}
		}
		nw := newWindow(sub.Viewpoint, vp.MeasureService, vp.Metric, members)
		nw.start, nw.opened = start, now
		nw.notModelled = sub.NotModelled
		nw.seq = 1
		if ws := s.windows[sub.Viewpoint]; len(ws) > 0 {
			nw.seq = ws[len(ws)-1].seq + 1
		}
		s.windows[sub.Viewpoint] = append(s.windows[sub.Viewpoint], nw)
		active[sub.Viewpoint] = nw
	}
	for vp, w := range s.active {
		if active[vp] == nil {
			s.close(w, now)
		}
	}
	s.active = active
	s.subsets = subs
	s.prune(now)
	s.publish()
}

// close ends w at now.
func (s *Subsetter) close(w *window, now time.Time) {
	w.mu.Lock()
	w.end = now
	w.mu.Unlock()
	w.dirty.Store(true)
}

// pruneGrace is how long a closed window that never saw an observation is
// kept (so a consumer still holding an older plan cannot add into a
// forgotten window) before it is dropped.
const pruneGrace = time.Minute

// prune drops closed windows that never saw an observation, once they
// have been closed for pruneGrace. Called with s.mu held.
func (s *Subsetter) prune(now time.Time) {
	for vp, ws := range s.windows {
		ws = slices.DeleteFunc(ws, func(w *window) bool {
			if s.active[vp] == w || w.seen() > 0 {
				return false
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			return !w.end.IsZero() && now.Sub(w.end) >= pruneGrace
		})
		if len(ws) == 0 {
			delete(s.windows, vp)
		} else {
			s.windows[vp] = ws
		}
	}
}
