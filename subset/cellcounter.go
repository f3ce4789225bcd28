package subset

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/tracing"
)

// HashAssigner gives the variant a unit's hash assigns it in a test, from
// the test's current weights; ok is false when the test is unknown. (The
// assign engine implements it, and answers for any known test whatever
// its status, slice or targeting: slices are checked with SliceChecker,
// targeting cannot be, see CellCounter.) It must be safe for concurrent use.
type HashAssigner interface {
	HashVariant(test, unit string) (variant string, ok bool)
}

// SliceChecker is implemented by HashAssigners that know layer slices
// (the assign engine does): InSlice reports whether the unit's layer
// bucket is in the test's slice, i.e. whether the test can randomize the
// unit at all. When the CellCounter's HashAssigner implements it, a member
// not served on the path whose slice does not hold the unit excludes the
// observation (NotInSlice).
type SliceChecker interface {
	InSlice(test, unit string) bool
}

// CellCounter counts observations into the factorial cells of the active
// windows of a Windows. It implements tracing.Consumer and is safe for
// concurrent use: it reads an immutable plan published by the Windows
// and locks one window at a time.
//
// For every running test T served on the observation's path (an exposure
// of T exists), with W the active window of viewpoint T and S its members,
// the observation is counted in W.Quality.Seen and then either excluded
// (the first failing check, counted in that Quality field) or added to
// the cell of the members' variants:
//
//  1. TooManyCells: the members' variant counts overflow a uint64 key.
//  2. MissingUnit: o.Unit is empty; UnitTooLong: it is longer than
//     assign.MaxUnitLen bytes (it is never truncated into another unit).
//  3. BeforeWindow: o.Start is before W's Start (a zero o.Start passes).
//  4. Conflict: a member is in o.Conflicts or has exposures with
//     different variants.
//  5. For each member in order (viewpoint first):
//     on the path, its first exposure's reason is checked — "override",
//     "not_targeted", "not_in_slice", "paused"/"disabled", "winner",
//     "fallback"/"error" are not randomized and counted in the field of
//     that name, as are OpenFeature's "targeting_match" (Override),
//     "static" (Winner) and "default" (NotTargeted), which a flagd or
//     OpenFeature client records when it has no abmesh reason; any other
//     reason ("", "hash", "sticky", "split", "cached", …) passes —
//     then StalePhase (exposure phase ≠ 0 and ≠ the member's phase),
//     then Mismatch (the served variant is not one of the member's
//     variants, or — unless the member is Sticky — the hash gives a
//     different variant or none; a sticky unit's stored first assignment
//     legitimately differs from the current hash, so it is not checked);
//     off the path, NotInSlice when the HashAssigner is a SliceChecker and
//     the unit is outside the member's layer slice, then NotAssigned when
//     the hash assigns the unit no variant (Mismatch when it names a
//     variant the member does not have). A sticky member off the path takes
//     the current hash variant (the engine does not consult its sticky
//     store here; a member off the path did not touch the request).
//     Targeting of a member off the path is not checked: a
//     trace does not carry the unit's attributes.
//     A layer factor's level is that of the one layer test that holds the
//     unit: a test served on the path with a randomized reason (the checks
//     above; a second such test is a Mismatch), else the test whose slice
//     holds the unit by the SliceChecker (its hash variant, as off the
//     path), else OutsideLevel (NotInSlice when the factor has none;
//     without a SliceChecker, OutsideLevel only when every test of the
//     layer was served with reason "not_in_slice", else NotInSlice). An exposure of a layer test to a
//     unit outside its slice — by the SliceChecker, or by its reason
//     "not_in_slice" without one — is what every unit outside the slice
//     gets and does not exclude the observation, unless its reason is
//     "override".
//  6. MissingMetric: o.Metric(T's measure service, T's metric) is absent
//     or not finite.
//  7. CellChanged: the unit is already counted in W in another cell (a
//     unit belongs to exactly one cell of a window; its first cell keeps
//     it); UnitTooLong: the unit already has 2³⁰−1 counted requests in W.
//
// A counted request adds to its unit's running totals in W (see
// UnitState); W's cells are statistics over units, one value per unit as
// W's aggregate makes it.
//
// Exposure reasons are compared case-insensitively ("NOT_IN_SLICE" as
// assign spells it is "not_in_slice").
type CellCounter struct {
	ws    *Windows
	h     HashAssigner
	slice SliceChecker // nil when h does not implement it
}

var _ tracing.Consumer = (*CellCounter)(nil)

// NewCellCounter returns a CellCounter into ws's active windows that asks
// h for the hash variants of the members (to check served variants and to
// fill in those not served on a path). It panics when ws or h is nil.
func NewCellCounter(ws *Windows, h HashAssigner) *CellCounter {
	if ws == nil || h == nil {
		panic("subset: NewCellCounter needs Windows and a HashAssigner")
	}
	c := &CellCounter{ws: ws, h: h}
	c.slice, _ = h.(SliceChecker)
	return c
}

// plan is the immutable routing table a CellCounter reads: for each running
// test, its active window and its members.
type plan struct {
	index map[string]int32 // running test id → position in vps
	vps   []vpPlan
}

type vpPlan struct {
	w       *window
	start   time.Time
	measure string
	metric  string
	tooMany bool
	members []memberPlan
}

type memberPlan struct {
	idx      int32 // −1 for a layer factor
	test     string
	phase    int
	sticky   bool
	variants []string
	radix    uint64
	layer    *layerPlan // nil unless a layer factor
}

// publish builds and stores the plan from the active windows. Called with
// ws.mu held.
func (ws *Windows) publish() {
	order := slices.Sorted(maps.Keys(ws.active))
	p := &plan{index: make(map[string]int32, len(order)), vps: make([]vpPlan, len(order))}
	for i, vp := range order {
		p.index[vp] = int32(i)
	}
	for i, vpID := range order {
		w := ws.active[vpID]
		w.mu.Lock()
		start := w.start
		w.mu.Unlock()
		vp := vpPlan{w: w, start: start, measure: w.measure, metric: w.metric, tooMany: w.tooMany}
		vp.members = make([]memberPlan, len(w.members))
		for j, m := range w.members {
			vp.members[j] = newMemberPlan(p.index, m, w.radix[j])
		}
		p.vps[i] = vp
	}
	ws.plan.Store(p)
}

// scratch is per-observation state. It holds fixed arrays so that it
// stays on the stack; the rare overflow goes to heap slices.
type scratch struct {
	served     [24]served
	nServed    int
	moreServed []served
	conflicts  [8]int32
	nConflicts int
	moreConfl  []int32
	hashes     [24]hashed
	nHashes    int
	unit       string
	key        uint64 // UnitKey(unit), once computed
	h          HashAssigner
}

type served struct {
	idx int32
	e   *tracing.Exposure
}

type hashed struct {
	idx     int32
	variant string
	ok      bool
}

// inSlice asks the SliceChecker, when there is one.
func (c *CellCounter) inSlice(m *memberPlan, unit string) bool {
	return c.slice == nil || c.slice.InSlice(m.test, unit)
}

func (sc *scratch) exposure(idx int32) *tracing.Exposure {
	for i := range sc.nServed {
		if sc.served[i].idx == idx {
			return sc.served[i].e
		}
	}
	for i := range sc.moreServed {
		if sc.moreServed[i].idx == idx {
			return sc.moreServed[i].e
		}
	}
	return nil
}

func (sc *scratch) addServed(x served) {
	if sc.nServed < len(sc.served) {
		sc.served[sc.nServed] = x
		sc.nServed++
		return
	}
	sc.moreServed = append(sc.moreServed, x)
}

func (sc *scratch) servedAt(i int) served {
	if i < sc.nServed {
		return sc.served[i]
	}
	return sc.moreServed[i-sc.nServed]
}

func (sc *scratch) conflicted(idx int32) bool {
	for i := range sc.nConflicts {
		if sc.conflicts[i] == idx {
			return true
		}
	}
	for _, c := range sc.moreConfl {
		if c == idx {
			return true
		}
	}
	return false
}

func (sc *scratch) addConflict(idx int32) {
	if sc.conflicted(idx) {
		return
	}
	if sc.nConflicts < len(sc.conflicts) {
		sc.conflicts[sc.nConflicts] = idx
		sc.nConflicts++
		return
	}
	sc.moreConfl = append(sc.moreConfl, idx)
}

// unitKey returns UnitKey of the observation's unit, computing it once.
func (sc *scratch) unitKey() uint64 {
	if sc.key == 0 {
		sc.key = UnitKey(sc.unit)
	}
	return sc.key
}

// hash returns m's hash variant for the unit, asking the HashAssigner once
// per observation and test (the last few are cached).
func (sc *scratch) hash(m *memberPlan) (string, bool) {
	for i := range sc.nHashes {
		if sc.hashes[i].idx == m.idx {
			return sc.hashes[i].variant, sc.hashes[i].ok
		}
	}
	v, ok := sc.h.HashVariant(m.test, sc.unit)
	if sc.nHashes < len(sc.hashes) {
		sc.hashes[sc.nHashes] = hashed{idx: m.idx, variant: v, ok: ok}
		sc.nHashes++
	}
	return v, ok
}

// ConsumeObservation counts o into the active window of every running
// test served on its path (see CellCounter).
func (c *CellCounter) ConsumeObservation(o *tracing.Observation) {
	p := c.ws.plan.Load()
	if len(p.vps) == 0 || len(o.Exposures) == 0 {
		return
	}
	sc := scratch{unit: o.Unit, h: c.h}
	for i := range o.Exposures {
		e := &o.Exposures[i]
		idx, ok := p.index[e.Test]
		if !ok {
			continue
		}
		if prev := sc.exposure(idx); prev != nil {
			if prev.Variant != e.Variant {
				sc.addConflict(idx)
			}
			continue
		}
		sc.addServed(served{idx: idx, e: e})
	}
	n := sc.nServed + len(sc.moreServed)
	if n == 0 {
		return
	}
	for _, cf := range o.Conflicts {
		if idx, ok := p.index[cf.Test]; ok {
			sc.addConflict(idx)
		}
	}
	for i := range n {
		c.count(&p.vps[sc.servedAt(i).idx], o, &sc)
	}
}

// count runs the checks of CellCounter for one viewpoint.
func (c *CellCounter) count(vp *vpPlan, o *tracing.Observation, sc *scratch) {
	w := vp.w
	switch {
	case vp.tooMany:
		w.exclude(qTooManyCells)
		return
	case o.Unit == "":
		w.exclude(qMissingUnit)
		return
	case len(o.Unit) > assign.MaxUnitLen:
		w.exclude(qUnitTooLong)
		return
	case !o.Start.IsZero() && o.Start.Before(vp.start):
		w.exclude(qBeforeWindow)
		return
	}
	for i := range vp.members {
		if vp.members[i].conflicted(sc) {
			w.exclude(qConflict)
			return
		}
	}
	var key uint64
	for i := range vp.members {
		m := &vp.members[i]
		vi, q := c.level(m, o.Unit, sc)
		if q >= 0 {
			w.exclude(q)
			return
		}
		key += uint64(vi) * m.radix
	}
	v, ok := o.Metric(vp.measure, vp.metric)
	if !ok || !finite(v) {
		w.exclude(qMissingMetric)
		return
	}
	if r := w.add(key, sc.unitKey(), v); r >= 0 {
		w.exclude(r)
	}
}

// level returns member m's level for the unit (an index into m.variants)
// by step 5 of CellCounter, or the Quality counter of the check that
// excludes the observation (level −1).
func (c *CellCounter) level(m *memberPlan, unit string, sc *scratch) (vi, q int) {
	if m.layer != nil {
		return c.layerLevel(m.layer, unit, sc)
	}
	if e := sc.exposure(m.idx); e != nil {
		if r := reasonExclusion(e.Reason); r >= 0 {
			return -1, r
		}
		return servedLevel(m, e, sc)
	}
	if !c.inSlice(m, unit) {
		return -1, qNotInSlice
	}
	return hashLevel(m, sc)
}

// servedLevel checks m's exposure e, whose reason is randomized:
// StalePhase, then Mismatch (a variant m does not have or, unless m is
// sticky, not the hash's).
func servedLevel(m *memberPlan, e *tracing.Exposure, sc *scratch) (vi, q int) {
	if e.Phase != 0 && e.Phase != m.phase {
		return -1, qStalePhase
	}
	if vi = indexOf(m.variants, e.Variant); vi < 0 {
		return -1, qMismatch
	}
	if !m.sticky {
		if hv, ok := sc.hash(m); !ok || hv != e.Variant {
			return -1, qMismatch
		}
	}
	return vi, -1
}

// hashLevel returns the level the hash gives m, not served on the path:
// NotAssigned when it gives none, Mismatch when m has no such variant.
func hashLevel(m *memberPlan, sc *scratch) (vi, q int) {
	hv, ok := sc.hash(m)
	if !ok {
		return -1, qNotAssigned
	}
	if vi = indexOf(m.variants, hv); vi < 0 {
		return -1, qMismatch
	}
	return vi, -1
}

// notRandomized maps the exposure reasons that were not randomized, lower
// case, to their Quality counters.
var notRandomized = []struct {
	reason string
	q      int
}{
	{"override", qOverride},
	{"not_targeted", qNotTargeted},
	{"not_in_slice", qNotInSlice},
	{"paused", qPaused},
	{"disabled", qPaused},
	{"winner", qWinner},
	{"fallback", qFallback},
	{"error", qFallback},
	// OpenFeature's reasons, as a flagd or OpenFeature client records them
	// without abmesh.reason (abmesh maps OVERRIDE to TARGETING_MATCH,
	// WINNER to STATIC, and NOT_TARGETED and NOT_IN_SLICE to DEFAULT).
	{"targeting_match", qOverride},
	{"static", qWinner},
	{"default", qNotTargeted},
}

// reasonExclusion maps an exposure reason that was not randomized to its
// Quality counter, ignoring case; -1 for randomized reasons ("", "hash",
// "sticky", or any other).
func reasonExclusion(r string) int {
	switch r {
	case "", "hash", "sticky", "HASH", "STICKY":
		return -1
	}
	for _, x := range notRandomized {
		if strings.EqualFold(r, x.reason) {
			return x.q
		}
	}
	return -1
}

func indexOf(vs []string, v string) int {
	for i, x := range vs {
		if x == v {
			return i
		}
	}
	return -1
}
