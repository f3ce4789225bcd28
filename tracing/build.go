package tracing

import (
	"cmp"
	"slices"
	"strconv"
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
	b := builderPool.Get().(*builder)
	o, st := b.build(spans)
	builderPool.Put(b)
	return o, st
}

var builderPool = sync.Pool{New: func() any { return new(builder) }}

// builder holds scratch space reused across traces. Not safe for
// concurrent use.
type builder struct {
	order  []int32
	parent []int32
	color  []uint8
	stack  []int32
	index  map[SpanID]int32
	slots  []metricSlot
	edges  []Edge
	exps   []Exposure
}

type metricSlot struct {
	service string
	first   int32
	server  int32
	attrs   map[string]float64
}

// linearLimit is the trace size up to which parent lookup scans instead of
// using a map.
const linearLimit = 32

func (b *builder) build(spans []Span) (*Observation, BuildStats) {
	var st BuildStats
	n := len(spans)
	if n == 0 {
		return nil, st
	}

	// Start order, ties broken by position for determinism.
	b.order = b.order[:0]
	for i := range n {
		b.order = append(b.order, int32(i))
	}
	slices.SortFunc(b.order, func(x, y int32) int {
		if c := spans[x].Start.Compare(spans[y].Start); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})

	b.resolveParents(spans, &st)
	b.breakCycles(&st)

	o := &Observation{TraceID: spans[0].TraceID.String(), Start: spans[b.order[0]].Start}

	// Services and metrics, in start order.
	b.slots = b.slots[:0]
	for _, i := range b.order {
		s := &spans[i]
		k := b.slot(s.Service)
		sl := &b.slots[k]
		if sl.first < 0 {
			sl.first = i
		}
		if sl.server < 0 && s.Kind == KindServer {
			sl.server = i
		}
		for a := range s.Attrs {
			at := &s.Attrs[a]
			if at.Type == AttrString {
				continue
			}
			if sl.attrs == nil {
				sl.attrs = make(map[string]float64, len(s.Attrs))
			}
			if _, dup := sl.attrs[at.Key]; !dup {
				sl.attrs[at.Key] = at.Num
			}
		}
	}
	slices.SortFunc(b.slots, func(x, y metricSlot) int { return strings.Compare(x.service, y.service) })
	o.Services = make([]string, len(b.slots))
	o.Metrics = make([]ServiceMetrics, len(b.slots))
	for k := range b.slots {
		sl := &b.slots[k]
		o.Services[k] = sl.service
		at := sl.first
		if sl.server >= 0 {
			at = sl.server
		}
		s := &spans[at]
		o.Metrics[k] = ServiceMetrics{
			Service:    sl.service,
			LatencyMS:  float64(s.End.Sub(s.Start)) / 1e6,
			Error:      s.Error,
			Attributes: sl.attrs,
		}
		sl.attrs = nil
	}

	// Edges.
	b.edges = b.edges[:0]
	for i := range n {
		p := b.parent[i]
		if p < 0 {
			continue
		}
		caller, callee := spans[p].Service, spans[i].Service
		if caller == callee {
			st.SameServiceCalls++
			continue
		}
		found := false
		for e := range b.edges {
			if b.edges[e].Caller == caller && b.edges[e].Callee == callee {
				b.edges[e].Calls++
				found = true
				break
			}
		}
		if !found {
			b.edges = append(b.edges, Edge{Caller: caller, Callee: callee, Calls: 1})
		}
	}
	if len(b.edges) > 0 {
		slices.SortFunc(b.edges, func(x, y Edge) int {
			if c := strings.Compare(x.Caller, y.Caller); c != 0 {
				return c
			}
			return strings.Compare(x.Callee, y.Callee)
		})
		o.Edges = slices.Clone(b.edges)
	}

	// Exposures and unit.
	b.exps = b.exps[:0]
	var attrUnit string
	for _, i := range b.order {
		s := &spans[i]
		for e := range s.Events {
			ev := &s.Events[e]
			if ev.Name != EventFlagEvaluation && ev.Name != EventFlagLegacy {
				continue
			}
			b.readFlagEvent(s.Service, ev, o, &st)
		}
		if attrUnit == "" || !st.ManyUnits {
			for _, key := range [2]string{UnitAttribute, BaggageUnitAttribute} {
				if a, ok := findAttr(s.Attrs, key); ok && a.Type == AttrString && a.Str != "" {
					if attrUnit == "" {
						attrUnit = a.Str
					} else if a.Str != attrUnit {
						st.ManyUnits = true
					}
					break
				}
			}
		}
	}
	if o.Unit == "" {
		o.Unit = attrUnit
	} else if attrUnit != "" && attrUnit != o.Unit {
		st.ManyUnits = true
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
	return o, st
}

// slot returns the index of service's metric slot, adding it when new.
func (b *builder) slot(service string) int {
	for k := range b.slots {
		if b.slots[k].service == service {
			return k
		}
	}
	b.slots = append(b.slots, metricSlot{service: service, first: -1, server: -1})
	return len(b.slots) - 1
}

func (b *builder) resolveParents(spans []Span, st *BuildStats) {
	n := len(spans)
	b.parent = slices.Grow(b.parent[:0], n)[:n]
	if n > linearLimit {
		if b.index == nil {
			b.index = make(map[SpanID]int32, n)
		}
		clear(b.index)
		for i := range spans {
			if _, dup := b.index[spans[i].SpanID]; !dup {
				b.index[spans[i].SpanID] = int32(i)
			}
		}
	}
	for i := range spans {
		b.parent[i] = -1
		pid := spans[i].ParentID
		if pid.IsZero() {
			continue
		}
		if n > linearLimit {
			if p, ok := b.index[pid]; ok {
				b.parent[i] = p
			}
		} else {
			for j := range spans {
				if spans[j].SpanID == pid {
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

func (b *builder) readFlagEvent(service string, ev *Event, o *Observation, st *BuildStats) {
	var key, variant, unit, reason, abmeshReason string
	phase := 0
	for a := range ev.Attrs {
		at := &ev.Attrs[a]
		switch at.Key {
		case AttrFlagKey:
			key = at.Str
		case AttrFlagVariant:
			variant = at.Str
		case AttrFlagVariantOld:
			if variant == "" {
				variant = at.Str
			}
		case AttrFlagContextID:
			unit = at.Str
		case AttrFlagResultReason:
			reason = strings.ToLower(at.Str)
		case AttrAbmeshReason:
			abmeshReason = strings.ToLower(at.Str)
		case AttrFlagVersion:
			if at.Type == AttrString {
				phase, _ = strconv.Atoi(strings.TrimSpace(at.Str))
			} else if at.Num >= 0 && at.Num < 1<<31 {
				phase = int(at.Num)
			}
		}
	}
	if key == "" || variant == "" {
		st.BadFlagEvents++
		return
	}
	if abmeshReason != "" {
		reason = abmeshReason
	}
	if unit != "" {
		if o.Unit == "" {
			o.Unit = unit
		} else if unit != o.Unit {
			st.ManyUnits = true
		}
	}
	for k := range b.exps {
		x := &b.exps[k]
		if x.Test == key && x.Variant == variant && x.Service == service {
			return
		}
	}
	b.exps = append(b.exps, Exposure{Test: key, Variant: variant, Service: service, Phase: phase, Reason: reason})
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
