package subset

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Windows keeps each viewpoint's analysis windows and their cells: the
// store a CellCounter counts into and reports read. A Subsetter drives it
// through SetViews; a replica that follows another's windows drives it
// through Adopt instead. It is safe for concurrent use.
//
// A viewpoint's window is the span during which its View stays the same:
// the same member tests, each in the same phase with the same variants and
// stickiness, and the same measure service, metric and aggregate for the
// viewpoint.
// Any change — a member joins or leaves (test started, stopped, changed,
// or the graph changed), a member's phase changes, the viewpoint stops
// running — closes the window (End = now) and, while the viewpoint runs,
// opens the next. Closed windows stay readable (List, All) and are
// persisted by Flush.
//
// A window's Start is its View's Since — and, when it replaces a window
// one of whose members stopped running (or was removed), not before that
// moment — and it counts only requests that started at or after Start. So
// a test started while others run joins their subsets from the moment it
// started, and a stopped test's traffic never mixes into the window that
// no longer models it.
//
// Every observation is counted into the window that was active for its
// viewpoint when it was consumed. Windows of one viewpoint may therefore
// overlap in time (a delayed trace from before a graph-driven membership
// change counts into the new window, whose members were all running then).
type Windows struct {
	clock func() time.Time

	mu      sync.Mutex
	windows map[string][]*window // per viewpoint, by seq
	active  map[string]*window
	// lastSeq is, per viewpoint, the highest Seq given to one of its
	// windows (opened, adopted or restored), kept when the window itself is
	// pruned: a Seq is never given twice.
	lastSeq  map[string]int
	restored bool

	plan atomic.Pointer[plan]
}

var _ ViewSink = (*Windows)(nil)

// NewWindows returns an empty Windows. Options: WithClock (it dates the
// close of stored windows found open by Restore).
func NewWindows(opts ...Option) *Windows {
	w := &Windows{
		clock:   newConfig(opts).clock,
		windows: map[string][]*window{},
		active:  map[string]*window{},
		lastSeq: map[string]int{},
	}
	w.plan.Store(&plan{index: map[string]int32{}})
	return w
}

// SetViews rolls the windows to views (one per running viewpoint, sorted
// by viewpoint) at now: a viewpoint whose view's signature equals its
// active window's keeps it (taking the view's reasons and not-modelled
// tests), any other gets a new window, and the active window of a
// viewpoint without a view is closed.
func (ws *Windows) SetViews(now time.Time, views []View) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	running := make(map[string]bool, len(views))
	for _, v := range views {
		running[v.Viewpoint] = true
	}
	active := make(map[string]*window, len(views))
	for _, v := range views {
		active[v.Viewpoint] = ws.roll(now, v, running)
	}
	for vp, w := range ws.active {
		if active[vp] == nil {
			w.close(now)
		}
	}
	ws.active = active
	ws.prune(now)
	ws.publish()
}

// roll returns v's window at now: the active one when its signature is
// unchanged, else a new one (the old one closed). Called with ws.mu held.
func (ws *Windows) roll(now time.Time, v View, running map[string]bool) *window {
	w := ws.active[v.Viewpoint]
	if w != nil && w.sig == signature(v.key(), v.Members) {
		w.takeReasons(v.Members, v.NotModelled)
		return w
	}
	start := v.Since
	if w != nil {
		w.close(now)
		// A member that stopped shaped requests until now.
		for _, m := range w.members {
			if !running[m.Test] {
				start = maxTime(start, now)
			}
		}
	}
	nw := newWindow(v.Viewpoint, v.key(), v.Members)
	nw.start, nw.opened = start, now
	nw.notModelled = v.NotModelled
	nw.seq = ws.lastSeq[v.Viewpoint] + 1
	ws.lastSeq[v.Viewpoint] = nw.seq
	ws.windows[v.Viewpoint] = append(ws.windows[v.Viewpoint], nw)
	return nw
}

// pruneGrace is how long a closed window keeps counting (a consumer may
// still hold an older plan) before it is dropped, when it never saw an
// observation, or (at the next Flush) its cells are fixed and its units
// freed.
const pruneGrace = time.Minute

// prune drops closed windows that never saw an observation, once they
// have been closed for pruneGrace. Called with ws.mu held.
func (ws *Windows) prune(now time.Time) {
	for vp, list := range ws.windows {
		list = slices.DeleteFunc(list, func(w *window) bool {
			if ws.active[vp] == w || w.seen() > 0 {
				return false
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			return !w.end.IsZero() && now.Sub(w.end) >= pruneGrace
		})
		if len(list) == 0 {
			delete(ws.windows, vp)
		} else {
			ws.windows[vp] = list
		}
	}
}

// List returns snapshots of the viewpoint's windows, oldest first; the
// last is the active one when the viewpoint is running. Windows that
// closed before any observation reached them are left out.
func (ws *Windows) List(viewpoint string) []WindowCells {
	ws.mu.Lock()
	list := slices.Clone(ws.windows[viewpoint])
	ws.mu.Unlock()
	return visible(list)
}

// visible snapshots list, leaving out closed windows that never saw an
// observation.
func visible(list []*window) []WindowCells {
	var out []WindowCells
	for _, w := range list {
		if wc := w.snapshot(); wc.Open() || wc.Quality.Seen > 0 {
			out = append(out, wc)
		}
	}
	return out
}

// Current returns a snapshot of the viewpoint's active window; false when
// the viewpoint is not running.
func (ws *Windows) Current(viewpoint string) (WindowCells, bool) {
	ws.mu.Lock()
	w := ws.active[viewpoint]
	ws.mu.Unlock()
	if w == nil {
		return WindowCells{}, false
	}
	return w.snapshot(), true
}

// all returns every window, sorted by viewpoint then seq.
func (ws *Windows) all() []*window {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	var out []*window
	for _, vp := range slices.Sorted(maps.Keys(ws.windows)) {
		out = append(out, ws.windows[vp]...)
	}
	return out
}

// All returns snapshots of every window of every viewpoint, sorted by
// viewpoint then seq, leaving out closed windows that never saw an
// observation.
func (ws *Windows) All() []WindowCells { return visible(ws.all()) }

// UnitMemory returns the units held in memory over all windows (one per
// unit and window still counting) and the bytes their tables take.
func (ws *Windows) UnitMemory() (units, bytes int64) {
	for _, w := range ws.all() {
		w.mu.Lock()
		if w.units != nil {
			units += int64(w.units.n)
			bytes += int64(w.units.bytes())
		}
		w.mu.Unlock()
	}
	return units, bytes
}

// Quality returns the viewpoint's data-quality counters summed over all
// its windows.
func (ws *Windows) Quality(viewpoint string) Quality {
	ws.mu.Lock()
	list := slices.Clone(ws.windows[viewpoint])
	ws.mu.Unlock()
	var q Quality
	for _, w := range list {
		q.Add(w.quality())
	}
	return q
}

// Store persists window snapshots and the units behind their cells.
// The bbolt store and MemStore implement it.
type Store interface {
	// SaveWindow stores w under (w.Viewpoint, w.Seq), replacing what was
	// stored there, and applies units to the window's stored units, in one
	// transaction. Idempotent.
	SaveWindow(ctx context.Context, w WindowCells, units UnitChanges) error
	// LoadWindows returns every stored window, in any order.
	LoadWindows(ctx context.Context) ([]WindowCells, error)
	// LoadUnits calls f for every stored unit of window (viewpoint, seq),
	// in any order.
	LoadUnits(ctx context.Context, viewpoint string, seq int, f func(UnitState) error) error
}

// UnitChanges are the changes to a window's stored units since its last
// save: Drop deletes them all (the window's cells are final), Put stores
// these units' totals, replacing what was stored under their keys.
type UnitChanges struct {
	Drop bool
	Put  []UnitState
}

// Flush saves every window that changed since its last successful save
// (new observations, or closed), with the units that changed, skipping
// windows that never saw an observation; first it fixes the cells of
// windows closed for pruneGrace. Observations counted after the last
// Flush are lost on a crash. On a save error Flush stops and returns it
// wrapped; the windows not saved stay pending for the next Flush.
func (ws *Windows) Flush(ctx context.Context, st Store) error {
	p := ws.TakePending()
	for i, s := range p.Saves {
		if err := st.SaveWindow(ctx, s.Cells, s.Units); err != nil {
			p.failed(i)
			return fmt.Errorf("save window %s#%d: %w", s.Cells.Viewpoint, s.Cells.Seq, err)
		}
	}
	return nil
}

// WindowSave is what a Store saves of one window: its snapshot and the
// changes to its units (see Store.SaveWindow).
type WindowSave struct {
	Cells WindowCells
	Units UnitChanges
}

// Pending is the state of the windows that changed since their last
// save, taken by TakePending for the caller to save.
type Pending struct {
	// Saves are the windows to save, by viewpoint then seq.
	Saves   []WindowSave
	windows []*window
}

// TakePending does what Flush does before saving: it fixes the cells of
// windows closed for pruneGrace and takes the save state of every window
// changed since its last save (clearing it), leaving out windows that
// never saw an observation. The caller saves p.Saves (e.g. in one
// transaction with other state) and calls p.Failed if it could not.
// Called while no observation is being counted, the saves are exactly the
// observations counted so far.
func (ws *Windows) TakePending() *Pending {
	now := ws.clock()
	p := &Pending{}
	for _, w := range ws.all() {
		w.finalize(now)
		if !w.dirty.Swap(false) {
			continue
		}
		wc, units := w.saveState()
		if wc.Quality.Seen == 0 {
			continue
		}
		p.Saves = append(p.Saves, WindowSave{Cells: wc, Units: units})
		p.windows = append(p.windows, w)
	}
	return p
}

// Failed puts every window of p back as pending for the next save.
func (p *Pending) Failed() { p.failed(0) }

// failed puts the windows of p from i on back as pending.
func (p *Pending) failed(i int) {
	for j := i; j < len(p.Saves); j++ {
		p.windows[j].saveFailed(p.Saves[j].Units)
	}
}

// ErrRestored is returned by a second call to Restore.
var ErrRestored = errors.New("subset: windows already restored")

// Restore loads stored windows once, at startup, after the Subsetter has
// been given the tests and the graph and before the first Flush. A stored
// open window whose membership signature equals a viewpoint's active
// window, and that has stored units, is resumed: its counters and units
// are added to the active window, which takes its Seq and Start. Every
// other stored window is kept as a final closed window with its stored
// cells (an open one is closed now, and its stored units are dropped at
// the next Flush); a window stored without units (before abmesh counted
// per unit) is never resumed. Active windows are renumbered after the
// viewpoint's stored ones, except adopted ones (Adopt): they keep the
// leader's Seq, and resume only the stored window of that Seq (also a
// closed one, which the plan makes active again).
func (ws *Windows) Restore(ctx context.Context, st Store) error {
	stored, err := st.LoadWindows(ctx)
	if err != nil {
		return fmt.Errorf("load windows: %w", err)
	}
	now := ws.clock()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.restored {
		return ErrRestored
	}
	ws.restored = true
	slices.SortFunc(stored, compareWindowCells)
	resumed := map[string]bool{}
	maxSeq := map[string]int{}
	for _, wc := range stored {
		maxSeq[wc.Viewpoint] = max(maxSeq[wc.Viewpoint], wc.Seq)
		if a := ws.active[wc.Viewpoint]; a != nil && resumable(a, wc) && !resumed[wc.Viewpoint] {
			units, err := loadUnits(ctx, st, wc)
			if err != nil {
				return err
			}
			if len(units) > 0 || len(wc.Cells) == 0 {
				a.resume(wc, units)
				resumed[wc.Viewpoint] = true
				continue
			}
		}
		w := finalFromCells(wc)
		if w.end.IsZero() {
			w.end = now
			w.dropUnits = true
		}
		ws.windows[wc.Viewpoint] = append(ws.windows[wc.Viewpoint], w)
	}
	ws.renumber(resumed, maxSeq)
	ws.publish()
	return nil
}

// resumable reports whether the active window a may resume the stored
// window wc (Restore): wc has a's membership and is open, or, when a was
// adopted, wc has a's Seq, open or closed (the plan makes it active
// again, as Adopt reopens a closed window of the planned Seq).
func resumable(a *window, wc WindowCells) bool {
	if a.sig != signature(wc.key(), wc.Members) {
		return false
	}
	if a.adopted {
		return a.seq == wc.Seq
	}
	return wc.Open()
}

func loadUnits(ctx context.Context, st Store, wc WindowCells) ([]UnitState, error) {
	var units []UnitState
	err := st.LoadUnits(ctx, wc.Viewpoint, wc.Seq, func(u UnitState) error {
		units = append(units, u)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load units of window %s#%d: %w", wc.Viewpoint, wc.Seq, err)
	}
	return units, nil
}

// renumber puts each viewpoint's active window after its stored ones
// (an adopted window keeps its Seq) and sets lastSeq. Called with ws.mu
// held.
func (ws *Windows) renumber(resumed map[string]bool, maxSeq map[string]int) {
	for vp, list := range ws.windows {
		last := max(ws.lastSeq[vp], maxSeq[vp])
		if a := ws.active[vp]; a != nil {
			if !resumed[vp] && !a.adopted {
				// Numbered before Restore knew the stored windows.
				last = maxSeq[vp]
				a.mu.Lock()
				a.seq = last + 1
				a.mu.Unlock()
			}
			list = slices.DeleteFunc(list, func(w *window) bool { return w == a })
			list = append(list, a)
		}
		slices.SortStableFunc(list, func(a, b *window) int { return a.seq - b.seq })
		ws.windows[vp] = list
		ws.lastSeq[vp] = max(last, list[len(list)-1].seq)
	}
}
