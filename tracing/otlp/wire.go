package otlp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/abmesh/abmesh/tracing"
	"google.golang.org/protobuf/encoding/protowire"
)

// DecodeProto converts the protobuf encoding of an
// ExportTraceServiceRequest (or of TracesData, which has the same layout)
// straight into spans appended to b, with exactly the results of
// proto.Unmarshal followed by Convert, but without building the
// intermediate messages: only the kept attributes and events are
// materialized. It is the receiver's hot path.
//
// The error is non-nil when data is not valid protobuf wire format for the
// message (truncated, bad tags or lengths); b is then unchanged. Strings
// are not checked for valid UTF-8.
func DecodeProto(data []byte, b *tracing.Batch) error {
	d := decoderPool.Get().(*decoder)
	defer decoderPool.Put(d)
	d.b = b
	d.nSpans = len(b.Spans)
	d.malformed = b.Malformed
	d.detail = b.Detail
	d.attrs, d.events = nil, nil
	if err := d.request(data); err != nil {
		clear(b.Spans[d.nSpans:])
		b.Spans = b.Spans[:d.nSpans]
		b.Malformed = d.malformed
		b.Detail = d.detail
		d.b = nil
		return fmt.Errorf("otlp: decode request: %w", err)
	}
	d.b = nil
	return nil
}

// CountProtoSpans counts the spans of the protobuf encoding of an
// ExportTraceServiceRequest (or TracesData) without decoding them: it
// reads only the tags and lengths of resource_spans, scope_spans and
// spans, and allocates nothing, so that a receiver can size a request's
// decoding before doing it. The error is non-nil when those levels are not
// valid wire format (DecodeProto checks the rest).
func CountProtoSpans(data []byte) (int, error) {
	n := 0
	err := forEachBytes(data, 1, func(rs []byte) error { // resource_spans
		return forEachBytes(rs, 2, func(ss []byte) error { // scope_spans
			return forEachBytes(ss, 2, func([]byte) error { n++; return nil }) // spans
		})
	})
	if err != nil {
		return 0, fmt.Errorf("otlp: decode request: %w", err)
	}
	return n, nil
}

// forEachBytes calls f with the payload of every length-delimited field
// number fn of the message data, in order.
func forEachBytes(data []byte, fn protowire.Number, f func([]byte) error) error {
	for len(data) > 0 {
		num, wt, v, _, n := field(data)
		if n < 0 {
			return errWire
		}
		data = data[n:]
		if num == fn && wt == protowire.BytesType {
			if err := f(v); err != nil {
				return err
			}
		}
	}
	return nil
}

var decoderPool = sync.Pool{New: func() any { return &decoder{intern: make(map[string]string)} }}

var errWire = errors.New("invalid wire format")

// decoder holds per-call state and scratch space reused across calls.
type decoder struct {
	b         *tracing.Batch
	nSpans    int                  // len(b.Spans) at the start, to undo on error
	malformed tracing.RejectCounts // b's counts at the start, to undo on error
	detail    string

	attrs  []tracing.Attr  // current arena chunk
	events []tracing.Event // current arena chunk

	scratchAttrs  []tracing.Attr
	scratchEvents []tracing.Event
	intern        map[string]string
}

const (
	arenaChunk   = 2048
	internMax    = 8192
	internMaxLen = 128
)

// str returns s as a string, sharing one copy of short, repeated strings
// (keys, names, variants). Unit ids are not interned: unique would be
// wasted.
func (d *decoder) str(s []byte) string {
	if len(s) == 0 {
		return ""
	}
	if len(s) > internMaxLen {
		return string(s)
	}
	if v, ok := d.intern[string(s)]; ok {
		return v
	}
	if len(d.intern) >= internMax {
		clear(d.intern)
	}
	v := string(s)
	d.intern[v] = v
	return v
}

// allocAttrs copies attrs into the arena and returns the copy (nil when
// empty); the copy's capacity is its length.
func (d *decoder) allocAttrs(attrs []tracing.Attr) []tracing.Attr {
	n := len(attrs)
	if n == 0 {
		return nil
	}
	if cap(d.attrs)-len(d.attrs) < n {
		d.attrs = make([]tracing.Attr, 0, max(arenaChunk, n))
	}
	start := len(d.attrs)
	d.attrs = append(d.attrs, attrs...)
	return d.attrs[start:len(d.attrs):len(d.attrs)]
}

func (d *decoder) allocEvents(events []tracing.Event) []tracing.Event {
	n := len(events)
	if n == 0 {
		return nil
	}
	if cap(d.events)-len(d.events) < n {
		d.events = make([]tracing.Event, 0, max(arenaChunk/8, n))
	}
	start := len(d.events)
	d.events = append(d.events, events...)
	return d.events[start:len(d.events):len(d.events)]
}

// field reads one field's tag and value. For the bytes wire type v is
// the payload; for varint and fixed types num holds the value.
func field(data []byte) (fn protowire.Number, wt protowire.Type, v []byte, num uint64, n int) {
	// Fast path: a one-byte tag (fields 1 to 15) with a one-byte length or
	// varint, or a fixed64, as nearly every field of a span is encoded.
	if len(data) >= 2 && data[0] < 0x80 && data[0] >= 8 {
		fn, wt = protowire.Number(data[0]>>3), protowire.Type(data[0]&7)
		switch {
		case wt == protowire.BytesType && data[1] < 0x80 && 2+int(data[1]) <= len(data):
			l := 2 + int(data[1])
			return fn, wt, data[2:l], 0, l
		case wt == protowire.VarintType && data[1] < 0x80:
			return fn, wt, nil, uint64(data[1]), 2
		case wt == protowire.Fixed64Type && len(data) >= 9:
			return fn, wt, nil, binary.LittleEndian.Uint64(data[1:9]), 9
		}
	}
	fn, wt, n = protowire.ConsumeTag(data)
	if n < 0 {
		return 0, 0, nil, 0, -1
	}
	rest := data[n:]
	var m int
	switch wt {
	case protowire.BytesType:
		v, m = protowire.ConsumeBytes(rest)
	case protowire.VarintType:
		num, m = protowire.ConsumeVarint(rest)
	case protowire.Fixed64Type:
		num, m = protowire.ConsumeFixed64(rest)
	case protowire.Fixed32Type:
		var x uint32
		x, m = protowire.ConsumeFixed32(rest)
		num = uint64(x)
	default:
		m = protowire.ConsumeFieldValue(fn, wt, rest)
	}
	if m < 0 {
		return 0, 0, nil, 0, -1
	}
	return fn, wt, v, num, n + m
}

// request decodes ExportTraceServiceRequest { repeated ResourceSpans
// resource_spans = 1; }.
func (d *decoder) request(data []byte) error {
	ri := 0
	for len(data) > 0 {
		fn, wt, v, _, n := field(data)
		if n < 0 {
			return errWire
		}
		data = data[n:]
		if fn == 1 && wt == protowire.BytesType {
			if err := d.resourceSpans(v, ri); err != nil {
				return err
			}
			ri++
		}
	}
	return nil
}

// resourceSpans decodes ResourceSpans { Resource resource = 1;
// repeated ScopeSpans scope_spans = 2; }. The resource is read first,
// wherever it is.
func (d *decoder) resourceSpans(data []byte, ri int) error {
	service, found := "", false
	for rest := data; len(rest) > 0; {
		fn, wt, v, _, n := field(rest)
		if n < 0 {
			return errWire
		}
		rest = rest[n:]
		if fn == 1 && wt == protowire.BytesType {
			// Repeated message fields merge: the attribute lists
			// concatenate, so the first service.name wins.
			s, ok, err := d.resource(v)
			if err != nil {
				return err
			}
			if ok && !found {
				service, found = s, true
			}
		}
	}
	si := 0
	for len(data) > 0 {
		fn, wt, v, _, n := field(data)
		if n < 0 {
			return errWire
		}
		data = data[n:]
		if fn == 2 && wt == protowire.BytesType {
			if err := d.scopeSpans(v, service, ri, si); err != nil {
				return err
			}
			si++
		}
	}
	return nil
}

// resource decodes Resource { repeated KeyValue attributes = 1; } for its
// first service.name attribute (found even when it is not a string).
func (d *decoder) resource(data []byte) (service string, found bool, err error) {
	for len(data) > 0 {
		fn, wt, v, _, n := field(data)
		if n < 0 {
			return "", false, errWire
		}
		data = data[n:]
		if fn != 1 || wt != protowire.BytesType {
			continue
		}
		key, val, err := keyValue(v)
		if err != nil {
			return "", false, err
		}
		if !found && string(key) == ServiceNameKey {
			found = true
			if val.kind == valString {
				service = d.str(val.str)
			}
		}
	}
	return service, found, nil
}

// scopeSpans decodes ScopeSpans { InstrumentationScope scope = 1;
// repeated Span spans = 2; }.
func (d *decoder) scopeSpans(data []byte, service string, ri, si int) error {
	pi := 0
	for len(data) > 0 {
		fn, wt, v, _, n := field(data)
		if n < 0 {
			return errWire
		}
		data = data[n:]
		if fn == 2 && wt == protowire.BytesType {
			if err := d.span(v, service, ri, si, pi); err != nil {
				return err
			}
			pi++
		}
	}
	return nil
}

type valueKind uint8

const (
	valNone valueKind = iota
	valString
	valBool
	valInt
	valDouble
)

type anyValue struct {
	kind valueKind
	str  []byte
	num  uint64
}

// keyValue decodes KeyValue { string key = 1; AnyValue value = 2; }.
func keyValue(data []byte) (key []byte, val anyValue, err error) {
	for len(data) > 0 {
		fn, wt, v, _, n := field(data)
		if n < 0 {
			return nil, val, errWire
		}
		data = data[n:]
		switch {
		case fn == 1 && wt == protowire.BytesType:
			key = v
		case fn == 2 && wt == protowire.BytesType:
			// A repeated message field merges: an empty AnyValue keeps
			// the value before it.
			w, set, err := anyVal(v)
			if err != nil {
				return nil, val, err
			}
			if set {
				val = w
			}
		}
	}
	return key, val, nil
}

// anyVal decodes AnyValue's oneof; the last field present wins, as in
// protobuf. Arrays, maps, bytes and string indexes read as valNone. set
// reports whether any oneof field was present.
func anyVal(data []byte) (val anyValue, set bool, err error) {
	for len(data) > 0 {
		fn, wt, v, num, n := field(data)
		if n < 0 {
			return val, set, errWire
		}
		data = data[n:]
		switch {
		case fn == 1 && wt == protowire.BytesType:
			val, set = anyValue{kind: valString, str: v}, true
		case fn == 2 && wt == protowire.VarintType:
			val, set = anyValue{kind: valBool, num: num}, true
		case fn == 3 && wt == protowire.VarintType:
			val, set = anyValue{kind: valInt, num: num}, true
		case fn == 4 && wt == protowire.Fixed64Type:
			val, set = anyValue{kind: valDouble, num: num}, true
		case (fn >= 5 && fn <= 7 && wt == protowire.BytesType) || (fn == 8 && wt == protowire.VarintType):
			val, set = anyValue{}, true
		}
	}
	return val, set, nil
}

// attr converts a key/value when tracing.KeepAttr keeps it.
func (d *decoder) attr(data []byte) (tracing.Attr, bool, error) {
	key, val, err := keyValue(data)
	if err != nil {
		return tracing.Attr{}, false, err
	}
	switch val.kind {
	case valString:
		k := d.str(key)
		if !tracing.KeepAttr(k, false) {
			return tracing.Attr{}, false, nil
		}
		var s string
		switch k {
		case tracing.AttrFlagContextID, tracing.UnitAttribute, tracing.BaggageUnitAttribute:
			s = string(val.str) // unique per unit: not interned
		default:
			s = d.str(val.str)
		}
		return tracing.StringAttr(k, s), true, nil
	case valBool:
		return tracing.BoolAttr(d.str(key), val.num != 0), true, nil
	case valInt:
		return tracing.IntAttr(d.str(key), int64(val.num)), true, nil
	case valDouble:
		return tracing.FloatAttr(d.str(key), math.Float64frombits(val.num)), true, nil
	}
	return tracing.Attr{}, false, nil
}

// span decodes one Span (fields as in opentelemetry/proto/trace/v1).
func (d *decoder) span(data []byte, service string, ri, si, pi int) error {
	var (
		out                  tracing.Span
		traceID, spanID, pid []byte
		start, end           uint64
		name                 []byte
	)
	d.scratchAttrs = d.scratchAttrs[:0]
	d.scratchEvents = d.scratchEvents[:0]
	for len(data) > 0 {
		fn, wt, v, num, n := field(data)
		if n < 0 {
			return errWire
		}
		data = data[n:]
		switch {
		case fn == 1 && wt == protowire.BytesType:
			traceID = v
		case fn == 2 && wt == protowire.BytesType:
			spanID = v
		case fn == 4 && wt == protowire.BytesType:
			pid = v
		case fn == 5 && wt == protowire.BytesType:
			name = v
		case fn == 6 && wt == protowire.VarintType:
			out.Kind = tracing.KindUnspecified
			if k := int32(num); k >= 0 && k <= 5 { // enums are int32 on the wire
				out.Kind = tracing.SpanKind(k)
			}
		case fn == 7 && wt == protowire.Fixed64Type:
			start = num
		case fn == 8 && wt == protowire.Fixed64Type:
			end = num
		case fn == 9 && wt == protowire.BytesType:
			a, ok, err := d.attr(v)
			if err != nil {
				return err
			}
			if ok {
				d.scratchAttrs = append(d.scratchAttrs, a)
			}
		case fn == 11 && wt == protowire.BytesType:
			if err := d.event(v); err != nil {
				return err
			}
		case fn == 15 && wt == protowire.BytesType:
			// Status { string message = 2; StatusCode code = 3; }; a
			// repeated occurrence merges, so only a code present counts.
			for st := v; len(st) > 0; {
				fn, wt, _, num, n := field(st)
				if n < 0 {
					return errWire
				}
				st = st[n:]
				if fn == 3 && wt == protowire.VarintType {
					out.Error = int32(num) == 2 // STATUS_CODE_ERROR
				}
			}
		}
	}

	where := func(format string, args ...any) string {
		return fmt.Sprintf("resource %d scope %d span %d: ", ri, si, pi) + fmt.Sprintf(format, args...)
	}
	switch {
	case len(traceID) != len(out.TraceID):
		d.reject(tracing.ReasonInvalidTraceID, where("trace_id has %d bytes, want 16", len(traceID)))
		return nil
	case len(spanID) != len(out.SpanID):
		d.reject(tracing.ReasonInvalidSpanID, where("span_id has %d bytes, want 8", len(spanID)))
		return nil
	case len(pid) != 0 && len(pid) != len(out.ParentID):
		d.reject(tracing.ReasonInvalidParentID, where("parent_span_id has %d bytes, want 0 or 8", len(pid)))
		return nil
	}
	copy(out.TraceID[:], traceID)
	copy(out.SpanID[:], spanID)
	copy(out.ParentID[:], pid)
	out.Service = service
	out.Name = d.str(name)
	out.Start = unixNano(start)
	out.End = unixNano(end)
	out.Attrs = d.allocAttrs(d.scratchAttrs)
	out.Events = d.allocEvents(d.scratchEvents)
	d.b.Spans = append(d.b.Spans, out)
	return nil
}

func (d *decoder) reject(r tracing.Reason, detail string) { d.b.Reject(r, detail) }

// event decodes Span.Event { fixed64 time_unix_nano = 1; string name = 2;
// repeated KeyValue attributes = 3; } into d.scratchEvents when
// tracing.KeepEvent keeps it. Its attributes go straight to the arena.
func (d *decoder) event(data []byte) error {
	var (
		ts    uint64
		name  []byte
		attrs [][]byte
		buf   [8][]byte
	)
	attrs = buf[:0]
	for len(data) > 0 {
		fn, wt, v, num, n := field(data)
		if n < 0 {
			return errWire
		}
		data = data[n:]
		switch {
		case fn == 1 && wt == protowire.Fixed64Type:
			ts = num
		case fn == 2 && wt == protowire.BytesType:
			name = v
		case fn == 3 && wt == protowire.BytesType:
			attrs = append(attrs, v)
		}
	}
	evName := d.str(name)
	if !tracing.KeepEvent(evName) {
		// Still check the attributes' wire format, as proto.Unmarshal would.
		for _, a := range attrs {
			if _, _, err := keyValue(a); err != nil {
				return err
			}
		}
		return nil
	}
	ev := tracing.Event{Name: evName, Time: unixNano(ts)}
	// Event attributes are collected after the span's so far, then moved.
	mark := len(d.scratchAttrs)
	for _, a := range attrs {
		at, ok, err := d.attr(a)
		if err != nil {
			return err
		}
		if ok {
			d.scratchAttrs = append(d.scratchAttrs, at)
		}
	}
	ev.Attrs = d.allocAttrs(d.scratchAttrs[mark:])
	d.scratchAttrs = d.scratchAttrs[:mark]
	d.scratchEvents = append(d.scratchEvents, ev)
	return nil
}
