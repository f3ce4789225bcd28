package subset

import (
	"cmp"
	"iter"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
)

// WindowCells is a snapshot of one analysis window of one viewpoint: its
// membership, its factorial cells and its data-quality counters. It is
// what reports read and what a Store persists; it round-trips through
// encoding/json.
type WindowCells struct {
	Viewpoint string `json:"viewpoint"`
	// Seq numbers the viewpoint's windows from 1, in the order they opened.
	// Gaps are windows that closed before any observation reached them.
	Seq int `json:"seq"`
	// Start is the earliest request start the window counts: the latest
	// time at which one of its members started running in its current
	// phase.
	Start time.Time `json:"start"`
	// Opened is when the window was opened. Start may be earlier (a
	// window opened by a graph change counts requests back to its members'
	// start), so rates are measured from the later of the two.
	Opened time.Time `json:"opened,omitzero"`
	// End is when the window closed; zero while it is open.
	End            time.Time `json:"end,omitzero"`
	MeasureService string    `json:"measure_service"`
	Metric         string    `json:"metric"`
	// Aggregate is how the viewpoint's metric is aggregated per unit: a
	// cell's Stats are over its units' aggregated values.
	Aggregate assign.Aggregate `json:"aggregate"`
	// Members are the factors, viewpoint first (Subset.Members order).
	Members []WindowMember `json:"members"`
	// NotModelled are the interfering tests left out by the cap.
	NotModelled []Member `json:"not_modelled,omitempty"`
	// Cells are the non-empty cells, sorted by their variant indices
	// (first member slowest).
	Cells   []Cell  `json:"cells"`
	Quality Quality `json:"quality"`
}

// Open reports whether the window is still collecting.
func (w WindowCells) Open() bool { return w.End.IsZero() }

// VariantNames returns the variant names of cell c, one per member.
func (w WindowCells) VariantNames(c Cell) []string {
	out := make([]string, len(c.Variants))
	for i, v := range c.Variants {
		out[i] = w.Members[i].Variants[v]
	}
	return out
}

// WindowMember is one factor of a window: a test in the phase it was in
// for the whole window.
type WindowMember struct {
	Test     string   `json:"test"`
	Phase    int      `json:"phase"`
	Variants []string `json:"variants"` // control first
	Sticky   bool     `json:"sticky,omitempty"`
	Reasons  []Reason `json:"reasons,omitempty"` // empty for the viewpoint
}

// Cell is one factorial cell: Variants[i] indexes Members[i].Variants.
// A unit belongs to exactly one cell of a window.
type Cell struct {
	Variants []int `json:"variants"`
	// Stats are over the cell's units, one value per unit as the window's
	// Aggregate makes it (Stats.N is the number of units). For
	// AggregateRatio they are over the units' request-level means and are
	// not what the ratio's analysis uses: Ratio is.
	Stats analysis.CellStats `json:"stats"`
	// Requests is the number of counted requests of the cell's units.
	Requests int64 `json:"requests"`
	// Ratio is set for AggregateRatio windows only: the units' (metric
	// sum, requests) pairs.
	Ratio *analysis.RatioStats `json:"ratio,omitempty"`
}

// Quality counts what happened to the observations on whose path a
// viewpoint was served while its window was the active one. Every such
// observation is counted once: Seen = Counted + Excluded(). The exclusion
// is the first failing check, in the order CellCounter documents.
type Quality struct {
	Seen    int64 `json:"seen"`
	Counted int64 `json:"counted"`

	TooManyCells  int64 `json:"too_many_cells,omitempty"` // the members' variant counts overflow a 64-bit cell key
	MissingUnit   int64 `json:"missing_unit,omitempty"`   // the trace carried no unit id
	UnitTooLong   int64 `json:"unit_too_long,omitempty"`  // the unit id is over assign.MaxUnitLen bytes (never truncated)
	BeforeWindow  int64 `json:"before_window,omitempty"`  // the request started before the window
	Conflict      int64 `json:"conflict,omitempty"`       // a member was served more than one variant
	Override      int64 `json:"override,omitempty"`       // a member's exposure reason was "override"
	NotTargeted   int64 `json:"not_targeted,omitempty"`   // … "not_targeted"
	NotInSlice    int64 `json:"not_in_slice,omitempty"`   // … "not_in_slice", or a member off the path is outside its slice
	Paused        int64 `json:"paused,omitempty"`         // … "paused" or "disabled"
	Winner        int64 `json:"winner,omitempty"`         // … "winner"
	Fallback      int64 `json:"fallback,omitempty"`       // … "fallback" or "error"
	StalePhase    int64 `json:"stale_phase,omitempty"`    // a member's exposure names another phase
	Mismatch      int64 `json:"mismatch,omitempty"`       // served variant unknown or ≠ the hash's (non-sticky)
	NotAssigned   int64 `json:"not_assigned,omitempty"`   // a member off the path is not assigned the unit by its hash
	MissingMetric int64 `json:"missing_metric,omitempty"` // no metric value on the measure service's span
	CellChanged   int64 `json:"cell_changed,omitempty"`   // the unit was already counted in another cell of the window
}

// Excluded is the number of observations not counted.
func (q Quality) Excluded() int64 {
	return q.TooManyCells + q.MissingUnit + q.BeforeWindow + q.Conflict +
		q.Override + q.NotTargeted + q.NotInSlice + q.Paused + q.Winner + q.Fallback +
		q.StalePhase + q.Mismatch + q.NotAssigned + q.MissingMetric
}

// Counts yields every counter by name: "seen", "counted", then each
// exclusion, always in the same order. The names are those of the API's
// data-quality counters (Mismatch is "assignment_mismatch").
func (q Quality) Counts() iter.Seq2[string, int64] {
	return func(yield func(string, int64) bool) {
		for _, c := range []struct {
			name string
			v    int64
		}{
			{"seen", q.Seen}, {"counted", q.Counted}, {"missing_unit", q.MissingUnit}, {"before_window", q.BeforeWindow},
			{"conflict", q.Conflict}, {"override", q.Override}, {"not_targeted", q.NotTargeted}, {"not_in_slice", q.NotInSlice},
			{"paused", q.Paused}, {"winner", q.Winner}, {"fallback", q.Fallback}, {"stale_phase", q.StalePhase},
			{"assignment_mismatch", q.Mismatch}, {"not_assigned", q.NotAssigned}, {"missing_metric", q.MissingMetric},
			{"too_many_cells", q.TooManyCells},
		} {
			if !yield(c.name, c.v) {
				return
			}
		}
	}
}

// Add adds o's counts to q.
func (q *Quality) Add(o Quality) {
	q.Seen += o.Seen
	q.Counted += o.Counted
	q.TooManyCells += o.TooManyCells
	q.MissingUnit += o.MissingUnit
	q.BeforeWindow += o.BeforeWindow
	q.Conflict += o.Conflict
	q.Override += o.Override
	q.NotTargeted += o.NotTargeted
	q.NotInSlice += o.NotInSlice
	q.Paused += o.Paused
	q.Winner += o.Winner
	q.Fallback += o.Fallback
	q.StalePhase += o.StalePhase
	q.Mismatch += o.Mismatch
	q.NotAssigned += o.NotAssigned
	q.MissingMetric += o.MissingMetric
}

// counter indices into window.q, in Quality field order. Seen is not
// stored: it is Counted + Excluded().
const (
	qSeen = iota
	qCounted
	qTooManyCells
	qMissingUnit
	qBeforeWindow
	qConflict
	qOverride
	qNotTargeted
	qNotInSlice
	qPaused
	qWinner
	qFallback
	qStalePhase
	qMismatch
	qNotAssigned
	qMissingMetric
	qCount
)

func (q *Quality) fields() [qCount]*int64 {
	return [qCount]*int64{&q.Seen, &q.Counted, &q.TooManyCells, &q.MissingUnit, &q.BeforeWindow,
		&q.Conflict, &q.Override, &q.NotTargeted, &q.NotInSlice, &q.Paused, &q.Winner,
		&q.Fallback, &q.StalePhase, &q.Mismatch, &q.NotAssigned, &q.MissingMetric}
}

// window is one viewpoint's analysis window. Membership fields are fixed
// at open; cells and counters grow while observations arrive.
type window struct {
	viewpoint string
	sig       string
	measure   string
	metric    string
	members   []WindowMember // Reasons guarded by mu; the rest immutable
	radix     []uint64       // radix[i] = Π_{j<i} len(members[j].Variants)
	tooMany   bool

	q     [qCount]atomic.Int64
	dirty atomic.Bool

	mu          sync.Mutex
	seq         int
	start       time.Time
	opened      time.Time
	end         time.Time
	notModelled []Member
	cells       map[uint64]*analysis.CellStats
	counted     int64
}

func newWindow(viewpoint, measure, metric string, members []WindowMember) *window {
	w := &window{
		viewpoint: viewpoint, measure: measure, metric: metric, members: members,
		cells: map[uint64]*analysis.CellStats{},
	}
	w.sig = signature(measure, metric, members)
	w.radix = make([]uint64, len(members))
	r := uint64(1)
	for i, m := range members {
		w.radix[i] = r
		hi, lo := bits.Mul64(r, uint64(len(m.Variants)))
		if hi != 0 {
			w.tooMany = true
		}
		r = lo
	}
	return w
}

// signature identifies a window's membership: the viewpoint's measurement
// and each member's id, phase, stickiness and variants.
func signature(measure, metric string, members []WindowMember) string {
	var b strings.Builder
	b.WriteString(measure)
	b.WriteByte(0)
	b.WriteString(metric)
	for _, m := range members {
		b.WriteByte(0)
		b.WriteString(m.Test)
		b.WriteByte(1)
		b.WriteString(strconv.Itoa(m.Phase))
		if m.Sticky {
			b.WriteString("s")
		}
		for _, v := range m.Variants {
			b.WriteByte(1)
			b.WriteString(v)
		}
	}
	return b.String()
}

func (w *window) add(key uint64, v float64) {
	w.mu.Lock()
	c := w.cells[key]
	if c == nil {
		c = new(analysis.CellStats)
		w.cells[key] = c
	}
	c.Add(v)
	w.counted++
	w.mu.Unlock()
	w.markDirty()
}

func (w *window) exclude(reason int) {
	w.q[reason].Add(1)
	w.markDirty()
}

// markDirty sets dirty, reading first so that a hot window's cache line is
// not written on every observation.
func (w *window) markDirty() {
	if !w.dirty.Load() {
		w.dirty.Store(true)
	}
}

// seen is the number of observations the window has seen.
func (w *window) seen() int64 {
	w.mu.Lock()
	n := w.counted
	w.mu.Unlock()
	for i := qTooManyCells; i < qCount; i++ {
		n += w.q[i].Load()
	}
	return n
}

// decode returns the variant indices of key.
func (w *window) decode(key uint64) []int {
	out := make([]int, len(w.members))
	for i, m := range w.members {
		out[i] = int(key / w.radix[i] % uint64(len(m.Variants)))
	}
	return out
}

func (w *window) encode(idx []int) (uint64, bool) {
	if len(idx) != len(w.members) {
		return 0, false
	}
	var k uint64
	for i, v := range idx {
		if v < 0 || v >= len(w.members[i].Variants) {
			return 0, false
		}
		k += uint64(v) * w.radix[i]
	}
	return k, true
}

func (w *window) quality() Quality {
	w.mu.Lock()
	counted := w.counted
	w.mu.Unlock()
	return w.qualityWith(counted)
}

// qualityWith loads the exclusion counters around counted.
func (w *window) qualityWith(counted int64) Quality {
	q := Quality{Counted: counted}
	f := q.fields()
	for i := qTooManyCells; i < qCount; i++ {
		*f[i] = w.q[i].Load()
	}
	q.Seen = q.Counted + q.Excluded()
	return q
}

// snapshot copies the window out.
func (w *window) snapshot() WindowCells {
	wc := WindowCells{
		Viewpoint:      w.viewpoint,
		MeasureService: w.measure,
		Metric:         w.metric,
	}
	w.mu.Lock()
	wc.Quality = w.qualityWith(w.counted) // Counted agrees with the cells
	wc.Seq, wc.Start, wc.Opened, wc.End = w.seq, w.start, w.opened, w.end
	wc.Members = make([]WindowMember, len(w.members))
	for i, m := range w.members {
		m.Variants = slices.Clone(m.Variants)
		m.Reasons = slices.Clone(m.Reasons)
		wc.Members[i] = m
	}
	wc.NotModelled = slices.Clone(w.notModelled)
	wc.Cells = make([]Cell, 0, len(w.cells))
	keys := make([]uint64, 0, len(w.cells))
	for k := range w.cells {
		keys = append(keys, k)
	}
	for _, k := range keys {
		// decode reads members, whose Reasons roll rewrites under mu.
		wc.Cells = append(wc.Cells, Cell{Variants: w.decode(k), Stats: *w.cells[k]})
	}
	w.mu.Unlock()
	slices.SortFunc(wc.Cells, func(a, b Cell) int { return slices.Compare(a.Variants, b.Variants) })
	return wc
}

// merge adds a stored window's cells and counters (same signature).
func (w *window) merge(wc WindowCells) {
	w.mu.Lock()
	for _, c := range wc.Cells {
		k, ok := w.encode(c.Variants)
		if !ok {
			continue
		}
		s := w.cells[k]
		if s == nil {
			s = new(analysis.CellStats)
			w.cells[k] = s
		}
		s.Merge(c.Stats)
	}
	w.mu.Unlock()
	q := wc.Quality
	f := q.fields()
	for i := qTooManyCells; i < qCount; i++ {
		w.q[i].Add(*f[i])
	}
	w.mu.Lock()
	w.counted += q.Counted
	w.mu.Unlock()
	w.dirty.Store(true)
}

// close ends w at now.
func (w *window) close(now time.Time) {
	w.mu.Lock()
	w.end = now
	w.mu.Unlock()
	w.dirty.Store(true)
}

// resume merges a stored snapshot of the same signature into w, which
// takes its Seq, Start and (when set) Opened.
func (w *window) resume(wc WindowCells) {
	w.merge(wc)
	w.mu.Lock()
	w.seq, w.start = wc.Seq, wc.Start
	if !wc.Opened.IsZero() {
		w.opened = wc.Opened
	}
	w.mu.Unlock()
}

// windowFromCells rebuilds a window from a snapshot.
func windowFromCells(wc WindowCells) *window {
	members := make([]WindowMember, len(wc.Members))
	copy(members, wc.Members)
	w := newWindow(wc.Viewpoint, wc.MeasureService, wc.Metric, members)
	w.seq, w.start, w.opened, w.end = wc.Seq, wc.Start, wc.Opened, wc.End
	w.notModelled = wc.NotModelled
	w.merge(wc)
	return w
}

func compareWindowCells(a, b WindowCells) int {
	return cmp.Or(cmp.Compare(a.Viewpoint, b.Viewpoint), cmp.Compare(a.Seq, b.Seq))
}
