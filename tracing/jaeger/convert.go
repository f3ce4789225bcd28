package jaeger

import (
	"encoding/binary"
	"strings"

	"github.com/abmesh/abmesh/tracing"
	model "github.com/jaegertracing/jaeger-idl/model/v1"
)

// Tag and log field names with a meaning in Jaeger's model.
const (
	tagSpanKind   = "span.kind"
	tagError      = "error"
	tagOtelStatus = "otel.status_code"
	fieldEvent    = "event"
)

// Convert appends spans to b as tracing.Spans. The service is the span's
// Process.ServiceName ("" when Process is nil: the Assembler rejects it);
// the parent is the first CHILD_OF (else FOLLOWS_FROM) reference within
// the same trace; kind comes from the span.kind tag, error from error=true
// or otel.status_code=ERROR; logs with an `event` field become events named
// by it. Attributes and events are kept as tracing.KeepAttr and
// tracing.KeepEvent say. Convert does not judge validity (zero ids,
// negative durations): tracing.Assembler.Add does.
func Convert(spans []model.Span, b *tracing.Batch) {
	for i := range spans {
		b.Spans = append(b.Spans, convertSpan(&spans[i]))
	}
}

// ConvertPointers is Convert for a slice of pointers (as in model.Trace);
// nil entries are skipped.
func ConvertPointers(spans []*model.Span, b *tracing.Batch) {
	for _, s := range spans {
		if s != nil {
			b.Spans = append(b.Spans, convertSpan(s))
		}
	}
}

func convertSpan(s *model.Span) tracing.Span {
	out := tracing.Span{
		TraceID:  traceID(s.TraceID),
		SpanID:   spanID(s.SpanID),
		ParentID: spanID(s.ParentSpanID()),
		Name:     s.OperationName,
		Start:    s.StartTime.UTC(),
	}
	if !s.StartTime.IsZero() {
		out.End = out.Start.Add(s.Duration)
	}
	if s.Process != nil {
		out.Service = s.Process.ServiceName
	}
	n := 0
	for i := range s.Tags {
		kv := &s.Tags[i]
		switch kv.Key {
		case tagSpanKind:
			out.Kind = tracing.ParseSpanKind(kv.VStr)
			continue
		case tagError:
			if kv.VBool || (kv.VType == model.ValueType_STRING && strings.EqualFold(kv.VStr, "true")) {
				out.Error = true
			}
			continue
		case tagOtelStatus:
			if strings.EqualFold(kv.VStr, "ERROR") {
				out.Error = true
			}
			continue
		}
		if _, ok := attr(kv); ok {
			n++
		}
	}
	if n > 0 {
		out.Attrs = make([]tracing.Attr, 0, n)
		for i := range s.Tags {
			kv := &s.Tags[i]
			if kv.Key == tagSpanKind || kv.Key == tagError || kv.Key == tagOtelStatus {
				continue
			}
			if a, ok := attr(kv); ok {
				out.Attrs = append(out.Attrs, a)
			}
		}
	}
	for i := range s.Logs {
		l := &s.Logs[i]
		name := ""
		for j := range l.Fields {
			if l.Fields[j].Key == fieldEvent {
				name = l.Fields[j].VStr
				break
			}
		}
		if !tracing.KeepEvent(name) {
			continue
		}
		ev := tracing.Event{Name: name, Time: l.Timestamp.UTC()}
		for j := range l.Fields {
			if l.Fields[j].Key == fieldEvent {
				continue
			}
			if a, ok := attr(&l.Fields[j]); ok {
				ev.Attrs = append(ev.Attrs, a)
			}
		}
		out.Events = append(out.Events, ev)
	}
	return out
}

// attr converts a tag when tracing.KeepAttr keeps it.
func attr(kv *model.KeyValue) (tracing.Attr, bool) {
	switch kv.VType {
	case model.ValueType_STRING:
		if tracing.KeepAttr(kv.Key, false) {
			return tracing.StringAttr(kv.Key, kv.VStr), true
		}
	case model.ValueType_BOOL:
		return tracing.BoolAttr(kv.Key, kv.VBool), true
	case model.ValueType_INT64:
		return tracing.IntAttr(kv.Key, kv.VInt64), true
	case model.ValueType_FLOAT64:
		return tracing.FloatAttr(kv.Key, kv.VFloat64), true
	}
	return tracing.Attr{}, false
}

func traceID(t model.TraceID) tracing.TraceID {
	var id tracing.TraceID
	binary.BigEndian.PutUint64(id[:8], t.High)
	binary.BigEndian.PutUint64(id[8:], t.Low)
	return id
}

func spanID(s model.SpanID) tracing.SpanID {
	var id tracing.SpanID
	binary.BigEndian.PutUint64(id[:], uint64(s))
	return id
}

// TraceIDString formats a Jaeger trace id as abmesh does: 32 hex digits.
func TraceIDString(t model.TraceID) string { return traceID(t).String() }
