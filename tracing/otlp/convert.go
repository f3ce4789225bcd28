package otlp

import (
	"fmt"
	"math"
	"time"

	"github.com/abmesh/abmesh/tracing"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// ServiceNameKey is the resource attribute naming a span's service.
const ServiceNameKey = "service.name"

// Convert appends the spans of rss to b.Spans and counts the spans it
// cannot represent in b.Malformed: a trace id that is not 16 bytes
// (tracing.ReasonInvalidTraceID), a span id that is not 8 bytes
// (ReasonInvalidSpanID), a parent span id that is neither empty nor 8 bytes
// (ReasonInvalidParentID). Everything else (zero ids, missing service,
// absurd times) is left to tracing.Assembler.Add to judge.
//
// The service is the resource's service.name string attribute ("" when
// absent). Attributes and events are kept as tracing.KeepAttr and
// tracing.KeepEvent say; array, map and bytes values are not kept. The
// spans of one call share backing arrays for attributes and events. Nil
// entries anywhere are skipped. Convert never panics on any message.
func Convert(rss []*tracepb.ResourceSpans, b *tracing.Batch) {
	nAttrs, nEvents := 0, 0
	for _, rs := range rss {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				nAttrs += len(s.GetAttributes())
				nEvents += len(s.GetEvents())
				for _, e := range s.GetEvents() {
					nAttrs += len(e.GetAttributes())
				}
			}
		}
	}
	c := converter{b: b, attrs: make([]tracing.Attr, 0, nAttrs)}
	if nEvents > 0 {
		c.events = make([]tracing.Event, 0, nEvents)
	}
	for ri, rs := range rss {
		service := serviceName(rs)
		for si, ss := range rs.GetScopeSpans() {
			for pi, s := range ss.GetSpans() {
				if s == nil {
					continue
				}
				c.span(s, service, ri, si, pi)
			}
		}
	}
}

// CountSpans returns the number of non-nil spans in rss.
func CountSpans(rss []*tracepb.ResourceSpans) int {
	n := 0
	for _, rs := range rss {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				if s != nil {
					n++
				}
			}
		}
	}
	return n
}

func serviceName(rs *tracepb.ResourceSpans) string {
	for _, kv := range rs.GetResource().GetAttributes() {
		if kv.GetKey() == ServiceNameKey {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

type converter struct {
	b      *tracing.Batch
	attrs  []tracing.Attr  // arena shared by the call's spans
	events []tracing.Event // arena shared by the call's spans
}

func (c *converter) span(s *tracepb.Span, service string, ri, si, pi int) {
	where := func(format string, args ...any) string {
		return fmt.Sprintf("resource %d scope %d span %d: ", ri, si, pi) + fmt.Sprintf(format, args...)
	}
	var out tracing.Span
	if len(s.TraceId) != len(out.TraceID) {
		c.b.Reject(tracing.ReasonInvalidTraceID, where("trace_id has %d bytes, want 16", len(s.TraceId)))
		return
	}
	if len(s.SpanId) != len(out.SpanID) {
		c.b.Reject(tracing.ReasonInvalidSpanID, where("span_id has %d bytes, want 8", len(s.SpanId)))
		return
	}
	switch len(s.ParentSpanId) {
	case 0:
	case len(out.ParentID):
		copy(out.ParentID[:], s.ParentSpanId)
	default:
		c.b.Reject(tracing.ReasonInvalidParentID, where("parent_span_id has %d bytes, want 0 or 8", len(s.ParentSpanId)))
		return
	}
	copy(out.TraceID[:], s.TraceId)
	copy(out.SpanID[:], s.SpanId)
	out.Service = service
	out.Name = s.Name
	if k := s.Kind; k >= 0 && k <= tracepb.Span_SPAN_KIND_CONSUMER {
		out.Kind = tracing.SpanKind(k) // same numbering
	}
	out.Start = unixNano(s.StartTimeUnixNano)
	out.End = unixNano(s.EndTimeUnixNano)
	out.Error = s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR
	out.Attrs = c.convAttrs(s.Attributes)
	first := len(c.events)
	for _, e := range s.Events {
		if e == nil || !tracing.KeepEvent(e.Name) {
			continue
		}
		c.events = append(c.events, tracing.Event{Name: e.Name, Time: unixNano(e.TimeUnixNano), Attrs: c.convAttrs(e.Attributes)})
	}
	if len(c.events) > first {
		out.Events = c.events[first:len(c.events):len(c.events)]
	}
	c.b.Spans = append(c.b.Spans, out)
}

// convAttrs appends the kept attributes to the arena and returns them (nil
// when none).
func (c *converter) convAttrs(kvs []*commonpb.KeyValue) []tracing.Attr {
	start := len(c.attrs)
	for _, kv := range kvs {
		if kv == nil || kv.Value == nil {
			continue
		}
		var a tracing.Attr
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			if !tracing.KeepAttr(kv.Key, false) {
				continue
			}
			a = tracing.StringAttr(kv.Key, v.StringValue)
		case *commonpb.AnyValue_IntValue:
			a = tracing.IntAttr(kv.Key, v.IntValue)
		case *commonpb.AnyValue_DoubleValue:
			a = tracing.FloatAttr(kv.Key, v.DoubleValue)
		case *commonpb.AnyValue_BoolValue:
			a = tracing.BoolAttr(kv.Key, v.BoolValue)
		default:
			continue
		}
		c.attrs = append(c.attrs, a)
	}
	if len(c.attrs) == start {
		return nil
	}
	return c.attrs[start:len(c.attrs):len(c.attrs)]
}

// unixNano converts OTLP's unsigned nanoseconds; values beyond int64 are
// clamped (and then rejected as a future start by the Assembler).
func unixNano(ns uint64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	if ns > math.MaxInt64 {
		ns = math.MaxInt64
	}
	return time.Unix(0, int64(ns)).UTC()
}
