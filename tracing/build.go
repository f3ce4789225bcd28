package tracing

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"
)

// BuildStats are the data-quality facts found while building one
// Observation.
type BuildStats struct {
	// SpansInCycles counts spans whose parent links form a cycle; those
	// links are ignored (the spans are treated as roots).
	SpansInCycles int
	// OrphanSpans counts spans whose parent id is not in the trace; they are
	// treated as roots.
	OrphanSpans int
	// SameServiceCalls counts parent→child pairs within one service, which
	// are not edges.
	SameServiceCalls int
	// ManyUnits is true when the trace carried more than one distinct unit
	// id; the first (see BuildObservation) is used.
	ManyUnits bool
	// BadFlagEvents counts feature-flag events without a key or a variant,
	// which give no exposure.
	BadFlagEvents int
}

// BuildObservation returns what the spans of one trace say about the
// request (spans must all share one trace id; nil when spans is empty).
// It never modifies spans and never fails: bad links are counted in the
// returned stats and ignored.
//
//   - Services: every span's service, sorted and unique.
//   - Edges: parent span's service → child span's service for every
//     parent→child pair in different services, counted per pair.
//   - Exposures: one per distinct (test, variant, service) read from
//     feature-flag events (EventFlagEvaluation or EventFlagLegacy; the
//     variant from AttrFlagVariant or AttrFlagVariantOld), sorted by test,
//     variant, service. Conflicts: tests exposed with more than one variant.
//   - Unit: the first AttrFlagContextID of a flag event, spans taken in
//     start order; when no event carries one, the first UnitAttribute or
//     BaggageUnitAttribute string attribute, spans in start order.
//   - Metrics: per service, latency and error of its first server span by
//     start time (its first span when it has no server span), and the
//     numeric attributes of its spans (first value by start time wins).
func BuildObservation(spans []Span) (*Observation, BuildStats) {
	if len(spans) == 0 {
		return nil, BuildStats{}
	}
	var batch Batch
	all := SpanLimits{MaxValueLen: math.MaxInt, MaxAttrs: math.MaxInt, MaxEvents: math.MaxInt}
	for i := range spans {
		batch.Summarize(&spans[i], all)
	}
	var t summary
	for i := range batch.Summaries {
		s := &batch.Summaries[i]
		t.add(s, batch.Flags[s.FlagLo:s.FlagHi], batch.Metrics[s.MetricLo:s.MetricHi], nil)
	}
	b := builderPool.Get().(*builder)
	o, st := b.build(spans[0].TraceID, &t)
	builderPool.Put(b)
	return o, st
}

var builderPool = sync.Pool{New: func() any { return new(builder) }}

// builder holds scratch space reused across traces. Not safe for
// concurrent use.
type builder struct {
	order  []int32 // span indices in start order
	rank   []int32 // rank[i]: span i's position in order
	parent []int32
	color  []uint8
	stack  []int32
	index  map[SpanID]int32
	slots  []metricSlot
	slotOf []int32 // string index → slot, -1 when none
	recs   []int32 // flag or metric record indices in span start order
	edges  []edgeRec
	exps   []Exposure
}

type metricSlot struct {
	service uint16
	first   int32
	server  int32
	attrs   map[string]float64
}

type edgeRec struct {
	caller, callee uint16
	calls          uint64
}

// linearLimit is the trace size up to which parent lookup scans instead of
// using a map.
const linearLimit = 32

// build returns the Observation of trace id from its summary, one step per
// part of the Observation.
func (b *builder) build(id TraceID, t *summary) (*Observation, BuildStats) {
	var st BuildStats
	if len(t.spans) == 0 {
		return nil, st
	}
	b.sortByStart(t)
	b.resolveParents(t, &st)
	b.breakCycles(&st)
	o := &Observation{TraceID: id.String(), Start: startTime(t.spans[b.order[0]].start)}
	b.collectMetrics(t, o)
	b.collectEdges(t, o, &st)
	b.collectExposures(t, o, &st)
	o.Unit = b.unit(t, o.Unit, &st)
	return o, st
}

// sortByStart sets b.order to the span indices in start order, ties broken
// by arrival so that the order is deterministic, and b.rank to its
// inverse.
func (b *builder) sortByStart(t *summary) {
	n := len(t.spans)
	b.order = b.order[:0]
	for i := range n {
		b.order = append(b.order, int32(i))
	}
	slices.SortFunc(b.order, func(x, y int32) int {
		if c := cmp.Compare(t.spans[x].start, t.spans[y].start); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	b.rank = slices.Grow(b.rank[:0], n)[:n]
	for r, i := range b.order {
		b.rank[i] = int32(r)
	}
}

// inStartOrder sets b.recs to the indices 0..n-1 of records whose span is
// spanOf(i), sorted by their span's start rank, then by index.
func (b *builder) inStartOrder(n int, spanOf func(int32) uint32) {
	b.recs = b.recs[:0]
	for i := range n {
		b.recs = append(b.recs, int32(i))
	}
	slices.SortFunc(b.recs, func(x, y int32) int {
		if c := cmp.Compare(b.rank[spanOf(x)], b.rank[spanOf(y)]); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
}

// collectMetrics sets o.Services and o.Metrics, sorted by service: per
// service, latency and error of its first server span in b.order (its
// first span when it has none) and its spans' numeric attributes, the
// first value in b.order winning.
func (b *builder) collectMetrics(t *summary, o *Observation) {
	b.slots = b.slots[:0]
	b.slotOf = slices.Grow(b.slotOf[:0], len(t.strs)+1)[:len(t.strs)+1]
	for i := range b.slotOf {
		b.slotOf[i] = -1
	}
	for _, i := range b.order {
		s := &t.spans[i]
		sl := &b.slots[b.slot(s.svc)]
		if sl.first < 0 {
			sl.first = i
		}
		if sl.server < 0 && s.kind == KindServer {
			sl.server = i
		}
	}
	b.inStartOrder(len(t.metrics), func(r int32) uint32 { return t.metrics[r].span })
	for _, r := range b.recs {
		m := &t.metrics[r]
		sl := &b.slots[b.slotOf[t.spans[m.span].svc]]
		if sl.attrs == nil {
			sl.attrs = make(map[string]float64, 4)
		}
		key := t.get(m.key)
		if _, dup := sl.attrs[key]; !dup {
			sl.attrs[key] = m.val
		}
	}
	slices.SortFunc(b.slots, func(x, y metricSlot) int { return strings.Compare(t.get(x.service), t.get(y.service)) })
	o.Services = make([]string, len(b.slots))
	o.Metrics = make([]ServiceMetrics, len(b.slots))
	for k := range b.slots {
		sl := &b.slots[k]
		o.Services[k] = t.get(sl.service)
		at := sl.first
		if sl.server >= 0 {
			at = sl.server
		}
		s := &t.spans[at]
		o.Metrics[k] = ServiceMetrics{
			Service:    o.Services[k],
			LatencyMS:  float64(s.dur) / 1e6,
			Error:      s.err,
			Attributes: sl.attrs,
		}
		sl.attrs = nil // the map now belongs to o
	}
}

// slot returns the index of service's metric slot, adding it when new.
func (b *builder) slot(service uint16) int32 {
	if k := b.slotOf[service]; k >= 0 {
		return k
	}
	b.slots = append(b.slots, metricSlot{service: service, first: -1, server: -1})
	k := int32(len(b.slots) - 1)
	b.slotOf[service] = k
	return k
}

// collectEdges sets o.Edges (nil when none), sorted by caller then callee,
// from the resolved parent links: one edge per pair of different services
// with its count of parent→child span pairs. Pairs within one service are
// counted in st.SameServiceCalls.
func (b *builder) collectEdges(t *summary, o *Observation, st *BuildStats) {
	b.edges = b.edges[:0]
	for i, p := range b.parent {
		if p < 0 {
			continue
		}
		caller, callee := t.spans[p].svc, t.spans[i].svc
		if caller == callee {
			st.SameServiceCalls++
			continue
		}
		found := false
		for e := range b.edges {
			if b.edges[e].caller == caller && b.edges[e].callee == callee {
				b.edges[e].calls++
				found = true
				break
			}
		}
		if !found {
			b.edges = append(b.edges, edgeRec{caller: caller, callee: callee, calls: 1})
		}
	}
	if len(b.edges) == 0 {
		return
	}
	o.Edges = make([]Edge, len(b.edges))
	for e, r := range b.edges {
		o.Edges[e] = Edge{Caller: t.get(r.caller), Callee: t.get(r.callee), Calls: r.calls}
	}
	slices.SortFunc(o.Edges, func(x, y Edge) int {
		if c := strings.Compare(x.Caller, y.Caller); c != 0 {
			return c
		}
		return strings.Compare(x.Callee, y.Callee)
	})
}

// collectExposures reads every feature-flag event, spans in b.order, into
// o.Exposures (nil when none; sorted by test, variant, service) and
// o.Conflicts, and sets o.Unit to the first flag event's context id. An
// event without a key or a variant counts in st.BadFlagEvents; a later
// event of the same test, variant and service adds nothing.
func (b *builder) collectExposures(t *summary, o *Observation, st *BuildStats) {
	b.exps = b.exps[:0]
	b.inStartOrder(len(t.flags), func(r int32) uint32 { return t.flags[r].span })
	for _, r := range b.recs {
		f := &t.flags[r]
		if f.key == 0 || f.variant == 0 {
			st.BadFlagEvents++
			continue
		}
		if unit := t.get(f.unit); unit != "" {
			if o.Unit == "" {
				o.Unit = unit
			} else if unit != o.Unit {
				st.ManyUnits = true
			}
		}
		key, variant, service := t.get(f.key), t.get(f.variant), t.get(t.spans[f.span].svc)
		dup := false
		for k := range b.exps {
			x := &b.exps[k]
			if x.Test == key && x.Variant == variant && x.Service == service {
				dup = true
				break
			}
		}
		if !dup {
			b.exps = append(b.exps, Exposure{Test: key, Variant: variant, Service: service, Phase: int(f.phase), Reason: t.get(f.reason)})
		}
	}
	if len(b.exps) > 0 {
		slices.SortFunc(b.exps, func(x, y Exposure) int {
			if c := strings.Compare(x.Test, y.Test); c != 0 {
				return c
			}
			if c := strings.Compare(x.Variant, y.Variant); c != 0 {
				return c
			}
			return strings.Compare(x.Service, y.Service)
		})
		o.Exposures = slices.Clone(b.exps)
		o.Conflicts = conflicts(o.Exposures)
	}
}

// unit returns the trace's unit: flagUnit (from the flag events) when set,
// else the first span's unit attribute, spans in b.order. It sets
// st.ManyUnits when the attributes carry another unit than the one
// returned, or disagree among themselves.
func (b *builder) unit(t *summary, flagUnit string, st *BuildStats) string {
	var attrUnit uint16
	for _, i := range b.order {
		u := t.spans[i].unit
		if u == 0 {
			continue
		}
		if attrUnit == 0 {
			attrUnit = u
		} else if u != attrUnit {
			st.ManyUnits = true
			break
		}
	}
	if flagUnit == "" {
		return t.get(attrUnit)
	}
	if attrUnit != 0 && t.get(attrUnit) != flagUnit {
		st.ManyUnits = true
	}
	return flagUnit
}

// resolveParents sets b.parent[i] to the index of span i's parent, -1 for
// a root or an orphan (a parent id not in the trace, counted in
// st.OrphanSpans). When span ids repeat, the first span with the id is
// the parent.
func (b *builder) resolveParents(t *summary, st *BuildStats) {
	spans := t.spans
	n := len(spans)
	b.parent = slices.Grow(b.parent[:0], n)[:n]
	if n > linearLimit {
		if b.index == nil {
			b.index = make(map[SpanID]int32, n)
		}
		clear(b.index)
		for i := range spans {
			if _, dup := b.index[spans[i].id]; !dup {
				b.index[spans[i].id] = int32(i)
			}
		}
	}
	for i := range spans {
		b.parent[i] = -1
		pid := spans[i].parent
		if pid.IsZero() {
			continue
		}
		if n > linearLimit {
			if p, ok := b.index[pid]; ok {
				b.parent[i] = p
			}
		} else {
			for j := range spans {
				if spans[j].id == pid {
					b.parent[i] = int32(j)
					break
				}
			}
		}
		if b.parent[i] < 0 {
			st.OrphanSpans++
		}
	}
}

// breakCycles finds parent chains that loop and cuts every link of each
// loop, so that the parent relation is a forest.
func (b *builder) breakCycles(st *BuildStats) {
	n := len(b.parent)
	const (
		white = 0
		grey  = 1 // on the chain being walked
		black = 2 // known to end at a root
	)
	b.color = slices.Grow(b.color[:0], n)[:n]
	clear(b.color)
	for i := range n {
		if b.color[i] != white {
			continue
		}
		b.stack = b.stack[:0]
		at := int32(i)
		for at >= 0 && b.color[at] == white {
			b.color[at] = grey
			b.stack = append(b.stack, at)
			at = b.parent[at]
		}
		if at >= 0 && b.color[at] == grey {
			// at is on the current chain: the chain from at onwards is a loop.
			k := slices.Index(b.stack, at)
			for _, c := range b.stack[k:] {
				b.parent[c] = -1
				st.SpansInCycles++
			}
		}
		for _, c := range b.stack {
			b.color[c] = black
		}
	}
}

// conflicts returns the tests exposed with more than one variant; exps is
// sorted by test then variant.
func conflicts(exps []Exposure) []Conflict {
	var out []Conflict
	for i := 0; i < len(exps); {
		j := i + 1
		for j < len(exps) && exps[j].Test == exps[i].Test {
			j++
		}
		var vs []string
		for k := i; k < j; k++ {
			if len(vs) == 0 || vs[len(vs)-1] != exps[k].Variant {
				vs = append(vs, exps[k].Variant)
			}
		}
		if len(vs) > 1 {
			out = append(out, Conflict{Test: exps[i].Test, Variants: vs})
		}
		i = j
	}
	return out
}
