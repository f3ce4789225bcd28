package report

import (
	"sync"
	"time"
)

// MaxLooks bounds the looks a History keeps per window.
const MaxLooks = 200

// Look is one reading of a window's anytime-valid confidence sequences.
type Look struct {
	Time time.Time
	// Units is the window's units, MinCellN its smallest cell's.
	Units, MinCellN int64
	// Intervals are the effects' then the interactions' sequences, in
	// the order of analysis.AnytimeResults.
	Intervals []LookInterval
}

// LookInterval is one confidence sequence at one look.
type LookInterval struct {
	// Name is "test=variant" for an effect, the term ("a:b") for an
	// interaction contrast.
	Name     string
	Estimate float64
	Lo, Hi   float64
	Bounded  bool
}

// History keeps, for each viewpoint, the looks at its current window's
// confidence sequences, so a page can draw them over time. It is bounded:
// one window per viewpoint (a new window's first look drops the old
// window's looks) and MaxLooks looks per window; when full, every other
// look is dropped (the first is kept), so the looks still span the whole
// window, at half the resolution. A look is recorded only when the
// window's units changed since the last one. It is in memory only: a
// restart starts the series again. Safe for concurrent use.
type History struct {
	mu  sync.Mutex
	max int
	vps map[string]*windowLooks
}

type windowLooks struct {
	seq   int
	looks []Look
	// first is the first look at which the stopping rule decided (kept
	// apart from looks, which thinning drops).
	first *Look
}

// NewHistory returns an empty History of at most MaxLooks looks per window.
func NewHistory() *History { return newHistory(MaxLooks) }

func newHistory(max int) *History {
	return &History{max: max, vps: make(map[string]*windowLooks)}
}

// Record adds r's anytime-valid sequences as a look at r's window (when
// r has them and its units changed since the last look) and sets r.Looks
// to a copy of the window's looks, the new one included, and
// r.Decision's first decided look when there is one.
func (h *History) Record(r *Report) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wl := h.vps[r.Test]
	if wl == nil || wl.seq != r.Window.Seq {
		if wl != nil && wl.seq > r.Window.Seq {
			return // an older window: its looks are gone
		}
		wl = &windowLooks{seq: r.Window.Seq}
		h.vps[r.Test] = wl
	}
	if look, ok := lookOf(r); ok && (len(wl.looks) == 0 || wl.looks[len(wl.looks)-1].Units != look.Units) {
		if len(wl.looks) >= h.max {
			wl.looks = thin(wl.looks)
		}
		wl.looks = append(wl.looks, look)
		if wl.first == nil && r.Decision.Decided {
			wl.first = &Look{Time: look.Time, Units: look.Units}
		}
	}
	r.Looks = append([]Look(nil), wl.looks...)
	if wl.first != nil {
		r.Decision.FirstTime, r.Decision.FirstUnits = wl.first.Time, wl.first.Units
	}
}

// Looks returns a copy of the looks kept for window seq of viewpoint vp.
func (h *History) Looks(vp string, seq int) []Look {
	h.mu.Lock()
	defer h.mu.Unlock()
	if wl := h.vps[vp]; wl != nil && wl.seq == seq {
		return append([]Look(nil), wl.looks...)
	}
	return nil
}

// thin keeps the looks at even indices.
func thin(looks []Look) []Look {
	out := looks[:0]
	for i := 0; i < len(looks); i += 2 {
		out = append(out, looks[i])
	}
	return out
}

// lookOf is r's look; false when r has no anytime-valid results.
func lookOf(r *Report) (Look, bool) {
	av := r.Anytime
	if av == nil || r.Table == nil {
		return Look{}, false
	}
	l := Look{Time: r.Generated, Units: r.counts.totalUnits(), MinCellN: r.Progress.MinCellN,
		Intervals: make([]LookInterval, 0, len(av.Effects)+len(av.Interactions))}
	for _, e := range av.Effects {
		l.Intervals = append(l.Intervals, LookInterval{Name: e.Factor + "=" + e.Variant, Estimate: e.Estimate, Lo: e.CS.Lo, Hi: e.CS.Hi, Bounded: e.Bounded})
	}
	for _, e := range av.Interactions {
		l.Intervals = append(l.Intervals, LookInterval{Name: e.Term, Estimate: e.Estimate, Lo: e.CS.Lo, Hi: e.CS.Hi, Bounded: e.Bounded})
	}
	return l, true
}
