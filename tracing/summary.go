package tracing

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SpanSummary is what the Assembler keeps of a span: the fields an
// Observation is built from, nothing else (no name, no attributes other
// than the unit and numeric metrics, no events other than feature-flag
// evaluations). Decoders fill it straight from the wire (Batch.Summaries,
// with its flag events in Batch.Flags and its numeric attributes in
// Batch.Metrics); the Assembler summarizes a Batch's Spans itself.
type SpanSummary struct {
	TraceID  TraceID
	SpanID   SpanID
	ParentID SpanID // zero for a root
	Service  string
	// Unit is the span's unit attribute: the value of its first
	// UnitAttribute attribute when that is a non-empty string, else of its
	// first BaggageUnitAttribute attribute when that is; "" otherwise.
	Unit       string
	Start, End int64 // Unix nanoseconds; Start 0 when missing
	Kind       SpanKind
	Error      bool
	// The span's flag events are Batch.Flags[FlagLo:FlagHi] and its
	// numeric attributes Batch.Metrics[MetricLo:MetricHi].
	FlagLo, FlagHi     uint32
	MetricLo, MetricHi uint32
}

// FlagSummary is one feature-flag event (EventFlagEvaluation or
// EventFlagLegacy) of a span, read as BuildObservation reads it. An event
// without a key or a variant is kept with them empty: it is counted in
// BuildStats.BadFlagEvents.
type FlagSummary struct {
	Key     string // AttrFlagKey
	Variant string // AttrFlagVariant, else AttrFlagVariantOld
	Unit    string // AttrFlagContextID
	Reason  string // AttrAbmeshReason, else AttrFlagResultReason; lower case
	Phase   int32  // AttrFlagVersion, 0 when absent or unreadable
}

// MetricSummary is one numeric attribute of a span (a Bool is 1 or 0).
type MetricSummary struct {
	Key   string
	Value float64
}

// SpanLimits bound what is kept of one span: string values longer than
// MaxValueLen bytes are cut (on a rune boundary), attributes of a span or
// an event beyond MaxAttrs and events beyond MaxEvents are dropped —
// counting only what KeepAttr and KeepEvent keep, in order. Zero fields
// mean DefaultConfig's.
type SpanLimits struct {
	MaxValueLen, MaxAttrs, MaxEvents int
}

// SpanLimits returns the limits of c (defaults applied).
func (c Config) SpanLimits() SpanLimits {
	c.setDefaults()
	return SpanLimits{MaxValueLen: c.MaxValueLen, MaxAttrs: c.MaxAttrsPerSpan, MaxEvents: c.MaxEventsPerSpan}
}

// WithDefaults returns l with its zero fields set to DefaultConfig's.
func (l SpanLimits) WithDefaults() SpanLimits {
	d := DefaultConfig().SpanLimits()
	if l.MaxValueLen <= 0 {
		l.MaxValueLen = d.MaxValueLen
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = d.MaxAttrs
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = d.MaxEvents
	}
	return l
}

// Trimmed counts what SpanLimits cut from a batch's spans.
type Trimmed struct {
	ValuesTruncated, AttrsDropped, EventsDropped int
}

// Cut returns s cut to at most max bytes on a rune boundary (a copy, so
// that a long original can be freed), counting a cut in t.
func (t *Trimmed) Cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	t.ValuesTruncated++
	return cut(s, max)
}

// cut is Trimmed.Cut without the count.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return string([]byte(s[:cut]))
}

// ParseFlagPhase reads a feature_flag.version string attribute as a
// phase (0 when it is not a number).
func ParseFlagPhase(s string) int32 {
	p, _ := strconv.Atoi(strings.TrimSpace(s))
	if p < math.MinInt32 || p > math.MaxInt32 {
		return 0
	}
	return int32(p)
}

// NumFlagPhase reads a numeric feature_flag.version attribute as a phase
// (0 when out of range).
func NumFlagPhase(v float64) int32 {
	if v >= 0 && v < 1<<31 {
		return int32(v)
	}
	return 0
}

// Summarize appends the summary of s to b (b.Summaries, b.Flags,
// b.Metrics) under lim, counting what lim cuts in b.Trimmed. It reads s
// as the Assembler always has: the attributes and events converters keep
// (KeepAttr, KeepEvent), cut to lim.
func (b *Batch) Summarize(s *Span, lim SpanLimits) {
	t := &b.Trimmed
	maxLen := lim.MaxValueLen
	sum := SpanSummary{
		TraceID: s.TraceID, SpanID: s.SpanID, ParentID: s.ParentID,
		Service: t.Cut(s.Service, maxLen), Kind: s.Kind, Error: s.Error,
	}
	if !s.Start.IsZero() && s.Start.UnixNano() > 0 {
		sum.Start = s.Start.UnixNano()
	}
	if !s.End.IsZero() {
		sum.End = s.End.UnixNano()
	}
	if len(s.Name) > maxLen {
		t.ValuesTruncated++
	}
	attrs := s.Attrs
	if len(attrs) > lim.MaxAttrs {
		t.AttrsDropped += len(attrs) - lim.MaxAttrs
		attrs = attrs[:lim.MaxAttrs]
	}
	var unitSeen, baggageSeen bool
	var baggage string
	sum.MetricLo = uint32(len(b.Metrics))
	for i := range attrs {
		a := &attrs[i]
		if a.Type != AttrString {
			b.Metrics = append(b.Metrics, MetricSummary{Key: a.Key, Value: a.Num})
		} else if len(a.Str) > maxLen {
			t.ValuesTruncated++
		}
		switch a.Key {
		case UnitAttribute:
			if !unitSeen {
				unitSeen = true
				if a.Type == AttrString {
					sum.Unit = a.Str
				}
			}
		case BaggageUnitAttribute:
			if !baggageSeen {
				baggageSeen = true
				if a.Type == AttrString {
					baggage = a.Str
				}
			}
		}
	}
	sum.MetricHi = uint32(len(b.Metrics))
	if sum.Unit == "" {
		sum.Unit = baggage
	}
	sum.Unit = cut(sum.Unit, maxLen) // counted above
	events := s.Events
	if len(events) > lim.MaxEvents {
		t.EventsDropped += len(events) - lim.MaxEvents
		events = events[:lim.MaxEvents]
	}
	sum.FlagLo = uint32(len(b.Flags))
	for e := range events {
		ev := &events[e]
		if len(ev.Name) > maxLen {
			t.ValuesTruncated++
		}
		ea := ev.Attrs
		if len(ea) > lim.MaxAttrs {
			t.AttrsDropped += len(ea) - lim.MaxAttrs
			ea = ea[:lim.MaxAttrs]
		}
		isFlag := ev.Name == EventFlagEvaluation || ev.Name == EventFlagLegacy
		var r FlagReader
		for i := range ea {
			a := &ea[i]
			if a.Type == AttrString && len(a.Str) > maxLen {
				t.ValuesTruncated++
			}
			if isFlag {
				if a.Type == AttrString {
					r.String(a.Key, cut(a.Str, maxLen)) // counted above
				} else {
					r.Number(a.Key, a.Num)
				}
			}
		}
		if isFlag {
			b.Flags = append(b.Flags, r.Summary())
		}
	}
	sum.FlagHi = uint32(len(b.Flags))
	b.Summaries = append(b.Summaries, sum)
}

// FlagReader collects a feature-flag event's attributes, in order, into a
// FlagSummary: the first key, variant and context id win as in
// BuildObservation (later ones replace earlier ones, as attributes of one
// event are read in order, except that the old variant key never replaces
// the new one).
type FlagReader struct {
	f                    FlagSummary
	reason, abmeshReason string
}

// String takes a string attribute of the event.
func (r *FlagReader) String(key, v string) {
	switch key {
	case AttrFlagKey:
		r.f.Key = v
	case AttrFlagVariant:
		r.f.Variant = v
	case AttrFlagVariantOld:
		if r.f.Variant == "" {
			r.f.Variant = v
		}
	case AttrFlagContextID:
		r.f.Unit = v
	case AttrFlagResultReason:
		r.reason = v
	case AttrAbmeshReason:
		r.abmeshReason = v
	case AttrFlagVersion:
		r.f.Phase = ParseFlagPhase(v)
	}
}

// Number takes a numeric attribute of the event (only the version is
// read; a numeric value of a string key clears it, as before).
func (r *FlagReader) Number(key string, v float64) {
	switch key {
	case AttrFlagVersion:
		r.f.Phase = NumFlagPhase(v)
	case AttrFlagKey:
		r.f.Key = ""
	case AttrFlagVariant:
		r.f.Variant = ""
	case AttrFlagVariantOld:
		// an empty old variant never replaces one
	case AttrFlagContextID:
		r.f.Unit = ""
	case AttrFlagResultReason:
		r.reason = ""
	case AttrAbmeshReason:
		r.abmeshReason = ""
	}
}

// Summary returns the event's summary; the reason is lower-cased (with
// an allocation only when it has upper-case letters: use Lower with an
// interning decoder to avoid it).
func (r *FlagReader) Summary() FlagSummary {
	f := r.f
	f.Reason = r.abmeshReason
	if f.Reason == "" {
		f.Reason = r.reason
	}
	f.Reason = strings.ToLower(f.Reason)
	return f
}

// Reasons returns the raw reason attributes (abmesh's, OpenTelemetry's)
// for a decoder that lower-cases them itself.
func (r *FlagReader) Reasons() (abmesh, otel string) { return r.abmeshReason, r.reason }

// Raw returns the summary without the reason.
func (r *FlagReader) Raw() FlagSummary { return r.f }

// Reset empties r for the next event.
func (r *FlagReader) Reset() { *r = FlagReader{} }

// spanRec is a span in flight: 40 bytes, no pointers. Strings are indices
// into the trace's string table (0 is "").
type spanRec struct {
	id, parent SpanID
	start, dur int64
	svc, unit  uint16
	kind       SpanKind
	err        bool
}

// flagRec is a flag event of span span in flight (16 bytes).
type flagRec struct {
	span                       uint32
	key, variant, unit, reason uint16
	phase                      int32
}

// metricRec is a numeric attribute of span span in flight (16 bytes).
type metricRec struct {
	span uint32
	key  uint16
	val  float64
}

// Sizes for the byte accounting of a trace in flight.
const (
	spanRecBytes   = 40
	flagRecBytes   = 16
	metricRecBytes = 16
	strHeaderBytes = 16
	// traceBytes is the fixed cost of a trace in flight: its pending
	// record and its entry in the trace map.
	traceBytes = 320
	// maxStrs is the size of a trace's string table; strings past it
	// read as "".
	maxStrs = math.MaxUint16
	// strIndexAt is the table size from which a trace indexes its table
	// with a map.
	strIndexAt = 24
)

// summary is a trace in flight: its spans, flag events and numeric
// attributes kept as pointer-free records, and a string table for the
// services, units, tests, variants, reasons and attribute keys.
type summary struct {
	spans   []spanRec
	flags   []flagRec
	metrics []metricRec
	strs    []string
	index   map[string]uint16 // built when strs outgrows a linear scan
	owned   int               // bytes of unit strings the table holds
}

// str returns s's index in the table (adding it), 0 for "".
func (t *summary) str(s string) uint16 {
	if s == "" {
		return 0
	}
	if t.index != nil {
		if i, ok := t.index[s]; ok {
			return i
		}
	} else {
		for i := range t.strs {
			if t.strs[i] == s {
				return uint16(i + 1)
			}
		}
	}
	if len(t.strs) >= maxStrs {
		return 0
	}
	t.strs = append(t.strs, s)
	i := uint16(len(t.strs))
	if t.index != nil {
		t.index[s] = i
	} else if len(t.strs) > strIndexAt {
		t.index = make(map[string]uint16, 2*len(t.strs))
		for k, v := range t.strs {
			t.index[v] = uint16(k + 1)
		}
	}
	return i
}

// unitStr is str for a unit id, whose bytes the trace is charged for.
func (t *summary) unitStr(s string) uint16 {
	n := len(t.strs)
	i := t.str(s)
	if len(t.strs) > n {
		t.owned += len(s)
	}
	return i
}

// get returns string i of the table.
func (t *summary) get(i uint16) string {
	if i == 0 {
		return ""
	}
	return t.strs[i-1]
}

// add appends span s with its flag events and the numeric attributes that
// keep accepts (all when keep is nil).
func (t *summary) add(s *SpanSummary, flags []FlagSummary, metrics []MetricSummary, keep func(string) bool) {
	at := uint32(len(t.spans))
	t.spans = append(t.spans, spanRec{
		id: s.SpanID, parent: s.ParentID, start: s.Start, dur: s.End - s.Start,
		svc: t.str(s.Service), unit: t.unitStr(s.Unit), kind: s.Kind, err: s.Error,
	})
	for i := range flags {
		f := &flags[i]
		t.flags = append(t.flags, flagRec{
			span: at, key: t.str(f.Key), variant: t.str(f.Variant), unit: t.unitStr(f.Unit),
			reason: t.str(f.Reason), phase: f.Phase,
		})
	}
	for i := range metrics {
		m := &metrics[i]
		if keep == nil || keep(m.Key) {
			t.metrics = append(t.metrics, metricRec{span: at, key: t.str(m.Key), val: m.Value})
		}
	}
}

// bytes is what the trace is charged for its records, its table and its
// unit strings (capacities, not lengths: what the heap holds).
func (t *summary) bytes() int {
	n := traceBytes + cap(t.spans)*spanRecBytes + cap(t.flags)*flagRecBytes +
		cap(t.metrics)*metricRecBytes + cap(t.strs)*strHeaderBytes + t.owned
	if t.index != nil {
		n += len(t.index) * 48
	}
	return n
}

// reset empties t, keeping the records' capacity when it is small.
func (t *summary) reset() {
	const keep = 64
	t.spans = reuse(t.spans, keep)
	t.flags = reuse(t.flags, keep)
	t.metrics = reuse(t.metrics, keep)
	clear(t.strs)
	t.strs = reuse(t.strs, keep)
	t.index = nil
	t.owned = 0
}

func reuse[T any](s []T, keep int) []T {
	if cap(s) > keep {
		return nil
	}
	return s[:0]
}

// startTime converts Unix nanoseconds back to a time.
func startTime(ns int64) time.Time { return time.Unix(0, ns) }
