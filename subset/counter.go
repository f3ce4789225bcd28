package subset

import (
	"math"
	"time"

	"github.com/abmesh/abmesh/tracing"
)

// HashAssigner gives the variant a unit's hash assigns it in a test:
// ok is false when the unit is not assigned (the test is unknown or not
// running, or the unit is outside the test's layer slice or targeting).
// It must be safe for concurrent use. The assign engine implements it.
type HashAssigner interface {
	HashVariant(test, unit string) (variant string, ok bool)
}

// HashAssignerFunc adapts a function to HashAssigner.
type HashAssignerFunc func(test, unit string) (string, bool)

// HashVariant calls f(test, unit).
func (f HashAssignerFunc) HashVariant(test, unit string) (string, bool) { return f(test, unit) }

// Counter counts observations into the factorial cells of the Subsetter's
// active windows. It implements tracing.Consumer and is safe for
// concurrent use: it reads an immutable plan published by the Subsetter
// and locks one window at a time.
//
// For every running test T served on the observation's path (an exposure
// of T exists), with W the active window of viewpoint T and S its members,
// the observation is counted in W.Quality.Seen and then either excluded
// (the first failing check, counted in that Quality field) or added to
// the cell of the members' variants:
//
//  1. TooManyCells: the members' variant counts overflow a uint64 key.
//  2. MissingUnit: o.Unit is empty.
//  3. BeforeWindow: o.Start is before W's Start (a zero o.Start passes).
//  4. Conflict: a member is in o.Conflicts or has exposures with
//     different variants.
//  5. For each member in order (viewpoint first):
//     on the path, its first exposure's reason is checked — "override",
//     "not_targeted", "not_in_slice", "paused"/"disabled", "winner",
//     "fallback"/"error" are not randomized and counted in the field of
//     that name; any other reason ("", "hash", "sticky", …) passes —
//     then StalePhase (exposure phase ≠ 0 and ≠ the member's phase),
//     then Mismatch (the served variant is not one of the member's
//     variants, or — unless the member is Sticky — the hash gives a
//     different variant or none; a sticky unit's stored first assignment
//     legitimately differs from the current hash, so it is not checked);
//     off the path, NotAssigned when the hash assigns the unit no variant
//     (Mismatch when it names a variant the member does not have). A
//     sticky member off the path takes the hash variant, which the
//     HashAssigner may resolve through its sticky store.
//  6. MissingMetric: o.Metric(T's measure service, T's metric) is absent
//     or not finite.
type Counter struct {
	s *Subsetter
	h HashAssigner
}

var _ tracing.Consumer = (*Counter)(nil)

// NewCounter returns a Counter into s's windows that asks h for the
// variants of members not served on a path. h must not be nil.
func NewCounter(s *Subsetter, h HashAssigner) *Counter {
	return &Counter{s: s, h: h}
}

// plan is the immutable routing table a Counter reads: for each running
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
	idx      int32
	test     string
	phase    int
	sticky   bool
	variants []string
	radix    uint64
}

// publish builds and stores the plan from the active windows. Called with
// s.mu held.
func (s *Subsetter) publish() {
	p := &plan{index: make(map[string]int32, len(s.subsets)), vps: make([]vpPlan, len(s.subsets))}
	for i, sub := range s.subsets {
		p.index[sub.Viewpoint] = int32(i)
	}
	for i, sub := range s.subsets {
		w := s.active[sub.Viewpoint]
		w.mu.Lock()
		start := w.start
		w.mu.Unlock()
		vp := vpPlan{w: w, start: start, measure: w.measure, metric: w.metric, tooMany: w.tooMany}
		vp.members = make([]memberPlan, len(w.members))
		for j, m := range w.members {
			vp.members[j] = memberPlan{
				idx: p.index[m.Test], test: m.Test, phase: m.Phase, sticky: m.Sticky,
				variants: m.Variants, radix: w.radix[j],
			}
		}
		p.vps[i] = vp
	}
	s.plan.Store(p)
}

// scratch is per-observation state, kept on the stack.
type scratch struct {
	served    []served
	conflicts []int32
	hashes    []hashed
	unit      string
	h         HashAssigner
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

func (sc *scratch) exposure(idx int32) *tracing.Exposure {
	for i := range sc.served {
		if sc.served[i].idx == idx {
			return sc.served[i].e
		}
	}
	return nil
}

func (sc *scratch) conflicted(idx int32) bool {
	for _, c := range sc.conflicts {
		if c == idx {
			return true
		}
	}
	return false
}

func (sc *scratch) hash(m *memberPlan) (string, bool) {
	for _, h := range sc.hashes {
		if h.idx == m.idx {
			return h.variant, h.ok
		}
	}
	v, ok := sc.h.HashVariant(m.test, sc.unit)
	sc.hashes = append(sc.hashes, hashed{idx: m.idx, variant: v, ok: ok})
	return v, ok
}

// ConsumeObservation counts o into the active window of every running
// test served on its path (see Counter).
func (c *Counter) ConsumeObservation(o *tracing.Observation) {
	p := c.s.plan.Load()
	if len(p.vps) == 0 || len(o.Exposures) == 0 {
		return
	}
	var (
		sbuf [16]served
		cbuf [8]int32
		hbuf [16]hashed
	)
	sc := scratch{served: sbuf[:0], conflicts: cbuf[:0], hashes: hbuf[:0], unit: o.Unit, h: c.h}
	for i := range o.Exposures {
		e := &o.Exposures[i]
		idx, ok := p.index[e.Test]
		if !ok {
			continue
		}
		if prev := sc.exposure(idx); prev != nil {
			if prev.Variant != e.Variant && !sc.conflicted(idx) {
				sc.conflicts = append(sc.conflicts, idx)
			}
			continue
		}
		sc.served = append(sc.served, served{idx: idx, e: e})
	}
	if len(sc.served) == 0 {
		return
	}
	for _, cf := range o.Conflicts {
		if idx, ok := p.index[cf.Test]; ok && !sc.conflicted(idx) {
			sc.conflicts = append(sc.conflicts, idx)
		}
	}
	for i := range sc.served {
		c.count(&p.vps[sc.served[i].idx], o, &sc)
	}
}

// count runs the checks of Counter for one viewpoint.
func (c *Counter) count(vp *vpPlan, o *tracing.Observation, sc *scratch) {
	w := vp.w
	w.q[qSeen].Add(1)
	switch {
	case vp.tooMany:
		w.exclude(qTooManyCells)
		return
	case o.Unit == "":
		w.exclude(qMissingUnit)
		return
	case !o.Start.IsZero() && o.Start.Before(vp.start):
		w.exclude(qBeforeWindow)
		return
	}
	for i := range vp.members {
		if sc.conflicted(vp.members[i].idx) {
			w.exclude(qConflict)
			return
		}
	}
	var key uint64
	for i := range vp.members {
		m := &vp.members[i]
		var vi int
		if e := sc.exposure(m.idx); e != nil {
			if r := reasonExclusion(e.Reason); r >= 0 {
				w.exclude(r)
				return
			}
			if e.Phase != 0 && e.Phase != m.phase {
				w.exclude(qStalePhase)
				return
			}
			if vi = indexOf(m.variants, e.Variant); vi < 0 {
				w.exclude(qMismatch)
				return
			}
			if !m.sticky {
				if hv, ok := sc.hash(m); !ok || hv != e.Variant {
					w.exclude(qMismatch)
					return
				}
			}
		} else {
			hv, ok := sc.hash(m)
			if !ok {
				w.exclude(qNotAssigned)
				return
			}
			if vi = indexOf(m.variants, hv); vi < 0 {
				w.exclude(qMismatch)
				return
			}
		}
		key += uint64(vi) * m.radix
	}
	v, ok := o.Metric(vp.measure, vp.metric)
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		w.exclude(qMissingMetric)
		return
	}
	w.add(key, v)
}

// reasonExclusion maps an exposure reason that was not randomized to its
// Quality counter; -1 for randomized reasons.
func reasonExclusion(r string) int {
	switch r {
	case "override":
		return qOverride
	case "not_targeted":
		return qNotTargeted
	case "not_in_slice":
		return qNotInSlice
	case "paused", "disabled":
		return qPaused
	case "winner":
		return qWinner
	case "fallback", "error":
		return qFallback
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
