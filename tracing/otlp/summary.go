package otlp

import (
	"bytes"
	"fmt"
	"math"
	"sync"

	"github.com/abmesh/abmesh/tracing"
	"google.golang.org/protobuf/encoding/protowire"
)

// DecodeSummaries decodes the protobuf encoding of an
// ExportTraceServiceRequest (or TracesData) straight into span summaries
// appended to b.Summaries, b.Flags and b.Metrics, with the results of
// DecodeProto followed by Batch.Summarize under b.Limits (what the limits
// cut is counted in b.Trimmed; rejections in b.Malformed and b.Detail as
// DecodeProto counts them). Attributes and events no summary holds are
// skipped without being materialized, and nothing is allocated per span:
// strings are shared from an intern table, unit ids once per request.
//
// The error is non-nil when data is not valid protobuf wire format for
// the message; b is then unchanged.
func DecodeSummaries(data []byte, b *tracing.Batch) error {
	d := summaryPool.Get().(*sumDecoder)
	defer summaryPool.Put(d)
	d.b = b
	d.lim = b.Limits.WithDefaults()
	nSum, nFlags, nMetrics := len(b.Summaries), len(b.Flags), len(b.Metrics)
	malformed, detail, trimmed := b.Malformed, b.Detail, b.Trimmed
	clear(d.units)
	err := d.request(data)
	d.b = nil
	if err != nil {
		clear(b.Summaries[nSum:])
		b.Summaries = b.Summaries[:nSum]
		clear(b.Flags[nFlags:])
		b.Flags = b.Flags[:nFlags]
		b.Metrics = b.Metrics[:nMetrics]
		b.Malformed, b.Detail, b.Trimmed = malformed, detail, trimmed
		return fmt.Errorf("otlp: decode request: %w", err)
	}
	return nil
}

var summaryPool = sync.Pool{New: func() any {
	return &sumDecoder{intern: make(map[string]string), units: make(map[string]string)}
}}

// sumDecoder holds DecodeSummaries' state and the tables it reuses.
type sumDecoder struct {
	b      *tracing.Batch
	lim    tracing.SpanLimits
	intern map[string]string // short repeated strings: keys, services, tests, variants, reasons
	units  map[string]string // this request's unit ids
	lower  []byte
	recent [8]string // the strings str returned last, looked at before intern
	next   int
}

// str interns s (see decoder.str), looking at the strings it returned
// last first: a span's attribute keys repeat span after span.
func (d *sumDecoder) str(s []byte) string {
	if len(s) == 0 {
		return ""
	}
	if len(s) > internMaxLen {
		return string(s)
	}
	for _, r := range d.recent {
		if r == string(s) {
			return r
		}
	}
	v, ok := d.intern[string(s)]
	if !ok {
		v = d.add(s)
	}
	d.recent[d.next] = v
	d.next = (d.next + 1) % len(d.recent)
	return v
}

// add adds s to the intern table.
func (d *sumDecoder) add(s []byte) string {
	if len(d.intern) >= internMax {
		clear(d.intern)
	}
	v := string(s)
	d.intern[v] = v
	return v
}

// unit returns a unit id as a string, one copy per request.
func (d *sumDecoder) unit(s []byte) string {
	if len(s) == 0 {
		return ""
	}
	if v, ok := d.units[string(s)]; ok {
		return v
	}
	v := string(s)
	d.units[v] = v
	return v
}

// value returns a kept string value cut to the limit (the cut is counted
// by the caller), interned unless it is a unit id.
func (d *sumDecoder) value(s []byte, isUnit bool) string {
	if len(s) > d.lim.MaxValueLen {
		return cutString(s, d.lim.MaxValueLen)
	}
	if isUnit {
		return d.unit(s)
	}
	return d.str(s)
}

// cutString is tracing's rune-boundary cut of s to max bytes, copied.
func cutString(s []byte, max int) string {
	cut := max
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return string(s[:cut])
}

// lowerStr returns s lower-cased and interned (no allocation when seen).
func (d *sumDecoder) lowerStr(s string) string {
	hasUpper := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' || c >= 0x80 {
			hasUpper = true
			break
		}
	}
	if !hasUpper {
		return s
	}
	d.lower = append(d.lower[:0], s...)
	if !isASCII(d.lower) {
		return string(bytes.ToLower(d.lower))
	}
	for i, c := range d.lower {
		if c >= 'A' && c <= 'Z' {
			d.lower[i] = c + 'a' - 'A'
		}
	}
	return d.str(d.lower)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func (d *sumDecoder) request(data []byte) error {
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

func (d *sumDecoder) resourceSpans(data []byte, ri int) error {
	var service []byte
	found := false
	for rest := data; len(rest) > 0; {
		fn, wt, v, _, n := field(rest)
		if n < 0 {
			return errWire
		}
		rest = rest[n:]
		if fn == 1 && wt == protowire.BytesType {
			s, ok, err := resourceService(v)
			if err != nil {
				return err
			}
			if ok && !found {
				service, found = s, true
			}
		}
	}
	svc := d.str(service)
	long := len(svc) > d.lim.MaxValueLen
	if long {
		svc = cutString(service, d.lim.MaxValueLen)
	}
	si := 0
	for len(data) > 0 {
		fn, wt, v, _, n := field(data)
		if n < 0 {
			return errWire
		}
		data = data[n:]
		if fn == 2 && wt == protowire.BytesType {
			if err := d.scopeSpans(v, svc, long, ri, si); err != nil {
				return err
			}
			si++
		}
	}
	return nil
}

// resourceService returns the first service.name attribute's value of a
// Resource (nil when it is not a string).
func resourceService(data []byte) (service []byte, found bool, err error) {
	for len(data) > 0 {
		fn, wt, v, _, n := field(data)
		if n < 0 {
			return nil, false, errWire
		}
		data = data[n:]
		if fn != 1 || wt != protowire.BytesType {
			continue
		}
		key, val, err := keyValue(v)
		if err != nil {
			return nil, false, err
		}
		if !found && string(key) == ServiceNameKey {
			found = true
			if val.kind == valString {
				service = val.str
			}
		}
	}
	return service, found, nil
}

func (d *sumDecoder) scopeSpans(data []byte, service string, long bool, ri, si int) error {
	pi := 0
	for len(data) > 0 {
		fn, wt, v, _, n := field(data)
		if n < 0 {
			return errWire
		}
		data = data[n:]
		if fn == 2 && wt == protowire.BytesType {
			if err := d.span(v, service, long, ri, si, pi); err != nil {
				return err
			}
			pi++
		}
	}
	return nil
}

// keptString reports whether tracing.KeepAttr keeps a string attribute
// named key.
func keptString(key []byte) bool {
	return bytes.HasPrefix(key, []byte("abmesh.")) || bytes.HasPrefix(key, []byte("feature_flag.")) ||
		bytes.HasPrefix(key, []byte("baggage."))
}

// numeric returns a kept numeric value as a float64.
func numeric(val anyValue) float64 {
	switch val.kind {
	case valBool:
		if val.num != 0 {
			return 1
		}
		return 0
	case valInt:
		return float64(int64(val.num))
	}
	return math.Float64frombits(val.num)
}

func (d *sumDecoder) span(data []byte, service string, long bool, ri, si, pi int) error {
	b := d.b
	out := tracing.SpanSummary{Service: service}
	var (
		traceID, spanID, pid []byte
		start, end           uint64
		nameLen              int
		kept, events         int
		units                unitAttrs
	)
	nFlags, nMetrics, trimmed := len(b.Flags), len(b.Metrics), b.Trimmed
	out.FlagLo, out.MetricLo = uint32(nFlags), uint32(nMetrics)
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
			nameLen = len(v)
		case fn == 6 && wt == protowire.VarintType:
			out.Kind = tracing.KindUnspecified
			if k := int32(num); k >= 0 && k <= 5 {
				out.Kind = tracing.SpanKind(k)
			}
		case fn == 7 && wt == protowire.Fixed64Type:
			start = num
		case fn == 8 && wt == protowire.Fixed64Type:
			end = num
		case fn == 9 && wt == protowire.BytesType:
			key, val, err := keyValue(v)
			if err != nil {
				return err
			}
			if !d.keepAttr(key, val, &kept) {
				continue
			}
			if val.kind != valString {
				b.Metrics = append(b.Metrics, tracing.MetricSummary{Key: d.str(key), Value: numeric(val)})
			}
			units.see(key, val)
		case fn == 11 && wt == protowire.BytesType:
			if err := d.event(v, &events); err != nil {
				return err
			}
		case fn == 15 && wt == protowire.BytesType:
			isErr, err := statusIsError(v)
			if err != nil {
				return err
			}
			out.Error = isErr
		}
	}

	if reason, detail := badIDs(traceID, spanID, pid); detail != "" {
		// Undo what the span's attributes and events added.
		b.Trimmed = trimmed
		clear(b.Flags[nFlags:])
		b.Flags = b.Flags[:nFlags]
		b.Metrics = b.Metrics[:nMetrics]
		b.Reject(reason, fmt.Sprintf("resource %d scope %d span %d: ", ri, si, pi)+detail)
		return nil
	}
	copy(out.TraceID[:], traceID)
	copy(out.SpanID[:], spanID)
	copy(out.ParentID[:], pid)
	out.Start, out.End = nanos(start), nanos(end)
	if long {
		b.Trimmed.ValuesTruncated++
	}
	if nameLen > d.lim.MaxValueLen {
		b.Trimmed.ValuesTruncated++
	}
	unit := units.unit()
	if len(unit) > d.lim.MaxValueLen {
		out.Unit = cutString(unit, d.lim.MaxValueLen)
	} else {
		out.Unit = d.unit(unit)
	}
	out.FlagHi, out.MetricHi = uint32(len(b.Flags)), uint32(len(b.Metrics))
	b.Summaries = append(b.Summaries, out)
	return nil
}

// unitAttrs is the first value of a span's unit attribute and of its
// baggage unit attribute (the unit is the former, else the latter).
type unitAttrs struct {
	own, bag         []byte
	ownSeen, bagSeen bool
}

// see notes a kept attribute of the span.
func (u *unitAttrs) see(key []byte, val anyValue) {
	var seen *bool
	var dst *[]byte
	switch string(key) {
	case tracing.UnitAttribute:
		seen, dst = &u.ownSeen, &u.own
	case tracing.BaggageUnitAttribute:
		seen, dst = &u.bagSeen, &u.bag
	default:
		return
	}
	if !*seen {
		*seen = true
		if val.kind == valString {
			*dst = val.str
		}
	}
}

// unit is the span's unit: its own attribute's, else the baggage's.
func (u *unitAttrs) unit() []byte {
	if len(u.own) == 0 {
		return u.bag
	}
	return u.own
}

// statusIsError reads a Span.Status: whether its code is
// STATUS_CODE_ERROR.
func statusIsError(data []byte) (bool, error) {
	isErr := false
	for len(data) > 0 {
		fn, wt, _, num, n := field(data)
		if n < 0 {
			return false, errWire
		}
		data = data[n:]
		if fn == 3 && wt == protowire.VarintType {
			isErr = int32(num) == 2 // STATUS_CODE_ERROR
		}
	}
	return isErr, nil
}

// badIDs is why a span's ids make it malformed (the reason and its
// detail), or an empty detail when they are well formed.
func badIDs(traceID, spanID, parentID []byte) (tracing.Reason, string) {
	var s tracing.SpanSummary
	switch {
	case len(traceID) != len(s.TraceID):
		return tracing.ReasonInvalidTraceID, fmt.Sprintf("trace_id has %d bytes, want 16", len(traceID))
	case len(spanID) != len(s.SpanID):
		return tracing.ReasonInvalidSpanID, fmt.Sprintf("span_id has %d bytes, want 8", len(spanID))
	case len(parentID) != 0 && len(parentID) != len(s.ParentID):
		return tracing.ReasonInvalidParentID, fmt.Sprintf("parent_span_id has %d bytes, want 0 or 8", len(parentID))
	}
	return 0, ""
}

// nanos converts an OTLP timestamp to Unix nanoseconds (0 stays 0).
func nanos(ns uint64) int64 {
	if ns > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(ns)
}

// keepAttr applies the summary's attribute rules to one attribute of a
// span or an event, as Batch.Summarize does: only numbers and the strings a
// summary reads (keptString) count, and *kept counts them; past
// MaxAttrs the rest are dropped (Trimmed.AttrsDropped), and a kept string
// over MaxValueLen is counted in Trimmed.ValuesTruncated.
func (d *sumDecoder) keepAttr(key []byte, val anyValue, kept *int) bool {
	switch val.kind {
	case valString:
		if !keptString(key) {
			return false
		}
	case valBool, valInt, valDouble:
	default:
		return false
	}
	if *kept++; *kept > d.lim.MaxAttrs {
		d.b.Trimmed.AttrsDropped++
		return false
	}
	if val.kind == valString && len(val.str) > d.lim.MaxValueLen {
		d.b.Trimmed.ValuesTruncated++
	}
	return true
}

// event decodes one Span.Event into b.Flags when it is a feature-flag
// evaluation, counting it among the span's kept events (*kept).
func (d *sumDecoder) event(data []byte, kept *int) error {
	var name []byte
	body := data
	for len(data) > 0 {
		fn, wt, v, _, n := field(data)
		if n < 0 {
			return errWire
		}
		data = data[n:]
		if fn == 2 && wt == protowire.BytesType {
			name = v
		}
	}
	if !bytes.HasPrefix(name, []byte(tracing.EventFlagLegacy)) { // not tracing.KeepEvent
		return checkAttrs(body)
	}
	if *kept++; *kept > d.lim.MaxEvents {
		d.b.Trimmed.EventsDropped++
		return checkAttrs(body)
	}
	if len(name) > d.lim.MaxValueLen {
		d.b.Trimmed.ValuesTruncated++
	}
	isFlag := string(name) == tracing.EventFlagEvaluation || string(name) == tracing.EventFlagLegacy
	var r tracing.FlagReader
	attrs := 0
	for data = body; len(data) > 0; {
		fn, wt, v, _, n := field(data)
		if n < 0 {
			return errWire
		}
		data = data[n:]
		if fn != 3 || wt != protowire.BytesType {
			continue
		}
		key, val, err := keyValue(v)
		if err != nil {
			return err
		}
		if !d.keepAttr(key, val, &attrs) {
			continue
		}
		if !isFlag {
			continue
		}
		k := d.str(key)
		if val.kind == valString {
			switch k {
			case tracing.AttrFlagContextID:
				r.String(k, d.value(val.str, true))
			case tracing.AttrFlagKey, tracing.AttrFlagVariant, tracing.AttrFlagVariantOld,
				tracing.AttrFlagResultReason, tracing.AttrAbmeshReason, tracing.AttrFlagVersion:
				r.String(k, d.value(val.str, false))
			}
		} else {
			r.Number(k, numeric(val))
		}
	}
	if isFlag {
		f := r.Raw()
		abmesh, otel := r.Reasons()
		f.Reason = abmesh
		if f.Reason == "" {
			f.Reason = otel
		}
		f.Reason = d.lowerStr(f.Reason)
		d.b.Flags = append(d.b.Flags, f)
	}
	return nil
}

// checkAttrs checks the wire format of an event's attributes, as
// proto.Unmarshal would, without keeping them.
func checkAttrs(data []byte) error {
	for len(data) > 0 {
		fn, wt, v, _, n := field(data)
		if n < 0 {
			return errWire
		}
		data = data[n:]
		if fn == 3 && wt == protowire.BytesType {
			if _, _, err := keyValue(v); err != nil {
				return err
			}
		}
	}
	return nil
}
