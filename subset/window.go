package subset

import (
	"cmp"
	"iter"
	"math/bits"
	"slices"
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

// key is the window's measurement.
func (w WindowCells) key() viewKey { return viewKey{w.MeasureService, w.Metric, w.Aggregate} }

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
// for the whole window, or a layer factor.
//
// A layer factor stands for the two or more tests of one layer in the
// subset (Member.Layer): they partition the layer's units, so they enter
// as one factor. Tests lists them (sorted by id, each with its Phase,
// Variants, Sticky, Reasons, Layer and Slice); Test is the factor's name,
// the layer id (or "layer/" + the id when a test of the subset has the
// layer's id); Variants are its levels, every "test/variant" pair of Tests
// in order, then OutsideLevel unless the tests' slices cover the layer.
// Phase, Sticky and Reasons are per test, in Tests.
type WindowMember struct {
	Test     string   `json:"test"`
	Phase    int      `json:"phase"`
	Variants []string `json:"variants"` // control first; a layer factor's levels
	Sticky   bool     `json:"sticky,omitempty"`
	Reasons  []Reason `json:"reasons,omitempty"` // empty for the viewpoint and a layer factor
	// Layer is the layer of a layer factor and of each of its Tests.
	Layer string `json:"layer,omitempty"`
	// Slice is a layer factor's test's slice of the layer's buckets.
	Slice assign.Slice `json:"slice,omitzero"`
	// Tests are a layer factor's tests; empty for any other member.
	Tests []WindowMember `json:"tests,omitempty"`
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
	return q.TooManyCells + q.MissingUnit + q.UnitTooLong + q.BeforeWindow + q.Conflict +
		q.Override + q.NotTargeted + q.NotInSlice + q.Paused + q.Winner + q.Fallback +
		q.StalePhase + q.Mismatch + q.NotAssigned + q.MissingMetric + q.CellChanged
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
			{"seen", q.Seen}, {"counted", q.Counted}, {"missing_unit", q.MissingUnit}, {"unit_too_long", q.UnitTooLong}, {"before_window", q.BeforeWindow},
			{"conflict", q.Conflict}, {"override", q.Override}, {"not_targeted", q.NotTargeted}, {"not_in_slice", q.NotInSlice},
			{"paused", q.Paused}, {"winner", q.Winner}, {"fallback", q.Fallback}, {"stale_phase", q.StalePhase},
			{"assignment_mismatch", q.Mismatch}, {"not_assigned", q.NotAssigned}, {"missing_metric", q.MissingMetric},
			{"cell_changed", q.CellChanged}, {"too_many_cells", q.TooManyCells},
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
	q.UnitTooLong += o.UnitTooLong
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
	q.CellChanged += o.CellChanged
}

// counter indices into window.q, in Quality field order. Seen is not
// stored: it is Counted + Excluded().
const (
	qSeen = iota
	qCounted
	qTooManyCells
	qMissingUnit
	qUnitTooLong
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
	qCellChanged
	qCount
)

func (q *Quality) fields() [qCount]*int64 {
	return [qCount]*int64{&q.Seen, &q.Counted, &q.TooManyCells, &q.MissingUnit, &q.UnitTooLong, &q.BeforeWindow,
		&q.Conflict, &q.Override, &q.NotTargeted, &q.NotInSlice, &q.Paused, &q.Winner,
		&q.Fallback, &q.StalePhase, &q.Mismatch, &q.NotAssigned, &q.MissingMetric, &q.CellChanged}
}

// window is one viewpoint's analysis window. Membership fields are fixed
// at open; units and counters grow while observations arrive.
//
// While the window can still count, it keeps every unit's running totals
// (units) and computes its cells from them when asked (cached until the
// next count). Once final (closed for pruneGrace, or restored closed) it
// keeps only the cells.
type window struct {
	viewpoint string
	sig       string
	measure   string
	metric    string
	aggregate assign.Aggregate
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
	counted     int64

	units    *unitTable        // nil once final
	cellKeys []uint64          // a unit's cell index → cell key
	cellIdx  map[uint64]uint32 // cell key → index into cellKeys
	gen      uint64            // counts units' changes
	cache    []Cell            // cells from units at generation cacheGen
	cacheGen uint64
	final    []Cell // the cells once units is nil

	dropUnits bool // the window became final: the store drops its units

	adopted bool // opened by Windows.Adopt: its seq is the leader's (set before it is shared)
}

// viewKey is what identifies a window's membership besides its members.
type viewKey struct {
	measure, metric string
	aggregate       assign.Aggregate
}

func newWindow(viewpoint string, k viewKey, members []WindowMember) *window {
	w := &window{
		viewpoint: viewpoint, measure: k.measure, metric: k.metric, aggregate: k.aggregate, members: members,
		units: new(unitTable), cellIdx: map[uint64]uint32{},
	}
	w.sig = signature(k, members)
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
// and aggregate, and each member's id, phase, stickiness and variants (a
// layer factor's with its tests' and their slices).
func signature(k viewKey, members []WindowMember) string {
	var b strings.Builder
	b.WriteString(k.measure)
	b.WriteByte(0)
	b.WriteString(k.metric)
	b.WriteByte(0)
	b.WriteString(k.aggregate.String())
	for _, m := range members {
		m.writeSignature(&b)
	}
	return b.String()
}

// add counts one request of the unit with key unit, in the cell with key
// cell and metric value v. It returns the exclusion counter when the
// request is not counted (-1 when it is): CellChanged when the unit is
// already in another cell of the window, UnitTooLong when the unit has
// maxUnitRequests requests already, BeforeWindow when the window is
// final (a consumer still held a plan from over pruneGrace ago).
func (w *window) add(cell, unit uint64, v float64) int {
	w.mu.Lock()
	if w.units == nil {
		w.mu.Unlock()
		return qBeforeWindow
	}
	idx, ok := w.cellIdx[cell]
	if !ok {
		idx = uint32(len(w.cellKeys))
		w.cellKeys = append(w.cellKeys, cell)
		w.cellIdx[cell] = idx
	}
	s, inserted := w.units.find(unit)
	switch {
	case inserted:
		s.meta = uint64(idx) << 32
	case s.cell() != idx:
		w.mu.Unlock()
		return qCellChanged
	case s.requests() >= maxUnitRequests:
		w.mu.Unlock()
		return qUnitTooLong
	}
	s.sum += v
	s.meta++
	s.meta |= slotDirty
	if v != 0 {
		s.meta |= slotNonZero
	}
	w.counted++
	w.gen++
	w.mu.Unlock()
	w.markDirty()
	return -1
}

// loadUnit adds a stored unit's totals (Restore). Called with w.mu held.
func (w *window) loadUnit(u UnitState) {
	idx, ok := w.cellIdx[u.Cell]
	if !ok {
		idx = uint32(len(w.cellKeys))
		w.cellKeys = append(w.cellKeys, u.Cell)
		w.cellIdx[u.Cell] = idx
	}
	s, inserted := w.units.find(u.Key)
	if inserted {
		s.meta = uint64(idx) << 32
	}
	s.sum += u.Sum
	s.meta += uint64(min(u.Requests, maxUnitRequests-s.requests()))
	if u.NonZero {
		s.meta |= slotNonZero
	}
	w.gen++
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
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.snapshotLocked()
}

// snapshotLocked copies the window out; called with w.mu held.
func (w *window) snapshotLocked() WindowCells {
	wc := w.identityLocked()
	wc.Quality = w.qualityWith(w.counted) // Counted agrees with the cells
	wc.Cells = cloneCells(w.cellsLocked())
	return wc
}

// identity copies out the window without its counts: its membership,
// Seq and times.
func (w *window) identity() WindowCells {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.identityLocked()
}

// identityLocked is identity; called with w.mu held.
func (w *window) identityLocked() WindowCells {
	wc := WindowCells{
		Viewpoint:      w.viewpoint,
		MeasureService: w.measure,
		Metric:         w.metric,
		Aggregate:      w.aggregate,
	}
	wc.Seq, wc.Start, wc.Opened, wc.End = w.seq, w.start, w.opened, w.end
	wc.Members = make([]WindowMember, len(w.members))
	for i, m := range w.members {
		wc.Members[i] = m.clone()
	}
	wc.NotModelled = slices.Clone(w.notModelled)
	return wc
}

// cellsLocked returns the window's cells, sorted by variant indices: the
// final ones, or those computed from the units (cached until the next
// change). The result is shared: callers copy it. Called with w.mu held.
func (w *window) cellsLocked() []Cell {
	if w.units == nil {
		return w.final
	}
	if w.cache == nil || w.cacheGen != w.gen {
		w.cache = cellsFromUnits(w.units, w.cellKeys, w.aggregate, w.decode)
		slices.SortFunc(w.cache, func(a, b Cell) int { return slices.Compare(a.Variants, b.Variants) })
		w.cacheGen = w.gen
	}
	return w.cache
}

func cloneCells(cs []Cell) []Cell {
	out := make([]Cell, len(cs))
	for i, c := range cs {
		c.Variants = slices.Clone(c.Variants)
		if c.Ratio != nil {
			r := *c.Ratio
			c.Ratio = &r
		}
		out[i] = c
	}
	return out
}

// saveState returns what a Store must save for w: its snapshot and the
// changes to its stored units since the last save (clearing them; a
// failed save calls saveFailed). Called with w.mu not held.
func (w *window) saveState() (WindowCells, UnitChanges) {
	w.mu.Lock()
	defer w.mu.Unlock()
	wc := w.snapshotLocked()
	var ch UnitChanges
	if w.units == nil {
		ch.Drop = w.dropUnits
		w.dropUnits = false
		return wc, ch
	}
	w.units.all(func(s *unitSlot) {
		if s.meta&slotDirty != 0 {
			s.meta &^= slotDirty
			ch.Put = append(ch.Put, UnitState{Key: s.key, Cell: w.cellKeys[s.cell()], Sum: s.sum,
				Requests: s.requests(), NonZero: s.meta&slotNonZero != 0})
		}
	})
	return wc, ch
}

// saveFailed undoes saveState's clearing after ch could not be saved: the
// units of ch.Put are dirty again, so the next save carries them with
// those changed since, and no others (after a long store outage, the
// units counted meanwhile, not every unit of the window).
func (w *window) saveFailed(ch UnitChanges) {
	w.mu.Lock()
	if ch.Drop {
		w.dropUnits = true
	}
	if w.units != nil {
		for _, u := range ch.Put {
			// Units are never removed from a table that still exists, so
			// every unit saved is found.
			s, _ := w.units.find(u.Key)
			s.meta |= slotDirty
		}
	}
	w.mu.Unlock()
	w.dirty.Store(true)
}

// finalize fixes the cells of a window closed at least pruneGrace before
// now and frees its units; the store drops them at the next save. A window
// with units not saved yet (counted since the last save, or not saved by
// a failed save) is finalized at a later call, once they are saved: a store
// that keeps closed windows' units (PostgreSQL, where other replicas'
// units are merged with them) must have every unit's last totals.
func (w *window) finalize(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.units == nil || w.end.IsZero() || now.Sub(w.end) < pruneGrace || w.unsavedLocked() {
		return
	}
	w.final = cloneCells(w.cellsLocked())
	w.units, w.cellKeys, w.cellIdx, w.cache = nil, nil, nil, nil
	w.dropUnits = true
	w.dirty.Store(true)
}

// unsavedLocked reports whether some unit's totals are not saved yet;
// w.mu is held.
func (w *window) unsavedLocked() bool {
	dirty := false
	w.units.all(func(s *unitSlot) { dirty = dirty || s.meta&slotDirty != 0 })
	return dirty
}

// addCounters adds a stored window's counters (Restore).
func (w *window) addCounters(q Quality) {
	f := q.fields()
	for i := qTooManyCells; i < qCount; i++ {
		w.q[i].Add(*f[i])
	}
	w.mu.Lock()
	w.counted += q.Counted
	w.mu.Unlock()
	w.dirty.Store(true)
}

// takeReasons takes the reasons of members (of w's signature) and the
// tests the cap left out.
func (w *window) takeReasons(members []WindowMember, notModelled []Member) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.members {
		w.members[i].takeReasons(members[i])
	}
	w.notModelled = notModelled
}

// reopen makes w open again unless it is final (its units gone); it
// reports whether w is open.
func (w *window) reopen() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.units == nil {
		return false
	}
	if !w.end.IsZero() {
		w.end = time.Time{}
		w.dirty.Store(true)
	}
	return true
}

// close ends w at now.
func (w *window) close(now time.Time) {
	w.mu.Lock()
	w.end = now
	w.mu.Unlock()
	w.dirty.Store(true)
}

// resume takes a stored snapshot of the same signature, and its units,
// into w, which takes its Seq, Start and (when set) Opened. Units already
// counted into w since it opened are added to (a unit keeps the cell it
// was first counted in).
func (w *window) resume(wc WindowCells, units []UnitState) {
	w.addCounters(wc.Quality)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, u := range units {
		w.loadUnit(u)
	}
	w.seq, w.start = wc.Seq, wc.Start
	if !wc.Opened.IsZero() {
		w.opened = wc.Opened
	}
	// The loaded units are stored already; only those counted since w
	// opened (and merged with them) are dirty and saved at the next flush.
}

// finalFromCells rebuilds a final window from a snapshot: its cells are
// those stored.
func finalFromCells(wc WindowCells) *window {
	members := make([]WindowMember, len(wc.Members))
	copy(members, wc.Members)
	w := newWindow(wc.Viewpoint, viewKey{wc.MeasureService, wc.Metric, wc.Aggregate}, members)
	w.seq, w.start, w.opened, w.end = wc.Seq, wc.Start, wc.Opened, wc.End
	w.notModelled = wc.NotModelled
	w.units, w.cellIdx = nil, nil
	w.final = cloneCells(wc.Cells)
	w.addCounters(wc.Quality)
	return w
}

func compareWindowCells(a, b WindowCells) int {
	return cmp.Or(cmp.Compare(a.Viewpoint, b.Viewpoint), cmp.Compare(a.Seq, b.Seq))
}
