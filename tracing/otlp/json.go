package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/abmesh/abmesh/tracing"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// DecodeJSON reads one OTLP JSON document — an ExportTraceServiceRequest
// or TracesData as the OTLP/HTTP JSON encoding and the collector's file
// exporter write it: lowerCamelCase keys, trace and span ids in hex
// (base64, as plain protojson writes bytes, is accepted too), 64-bit
// integers as strings or numbers, enums as numbers or names — and converts
// its spans as Convert does, appending them to b.
//
// Spans whose ids cannot be decoded are counted in b.Malformed. The error
// is non-nil only when data is not JSON or does not have the OTLP shape
// (e.g. a string where an object belongs); it is then a *json.SyntaxError
// or *json.UnmarshalTypeError (whose Offset locates the problem in data),
// possibly wrapped, and b is unchanged.
func DecodeJSON(data []byte, b *tracing.Batch) error {
	var doc jTracesData
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	rss := make([]*tracepb.ResourceSpans, 0, len(doc.ResourceSpans))
	for ri := range doc.ResourceSpans {
		rss = append(rss, doc.ResourceSpans[ri].proto(ri, b))
	}
	Convert(rss, b)
	return nil
}

type jTracesData struct {
	ResourceSpans []jResourceSpans `json:"resourceSpans"`
}

type jResourceSpans struct {
	Resource   jResource     `json:"resource"`
	ScopeSpans []jScopeSpans `json:"scopeSpans"`
}

type jResource struct {
	Attributes []jKeyValue `json:"attributes"`
}

type jScopeSpans struct {
	Spans []jSpan `json:"spans"`
}

type jSpan struct {
	TraceID           string      `json:"traceId"`
	SpanID            string      `json:"spanId"`
	ParentSpanID      string      `json:"parentSpanId"`
	Name              string      `json:"name"`
	Kind              jEnum       `json:"kind"`
	StartTimeUnixNano jNumber     `json:"startTimeUnixNano"`
	EndTimeUnixNano   jNumber     `json:"endTimeUnixNano"`
	Attributes        []jKeyValue `json:"attributes"`
	Events            []jEvent    `json:"events"`
	Status            jStatus     `json:"status"`
}

type jEvent struct {
	TimeUnixNano jNumber     `json:"timeUnixNano"`
	Name         string      `json:"name"`
	Attributes   []jKeyValue `json:"attributes"`
}

type jStatus struct {
	Code jEnum `json:"code"`
}

type jKeyValue struct {
	Key   string    `json:"key"`
	Value jAnyValue `json:"value"`
}

type jAnyValue struct {
	StringValue *string  `json:"stringValue"`
	BoolValue   *bool    `json:"boolValue"`
	IntValue    *jNumber `json:"intValue"`
	DoubleValue *jNumber `json:"doubleValue"`
	// arrayValue, kvlistValue and bytesValue are not kept (see Convert);
	// json ignores them.
}

// jNumber is a JSON number or a string holding one (protojson writes
// 64-bit integers as strings; doubles may be "NaN" or "Infinity"). A value
// that is neither is kept as its text and reads as invalid.
type jNumber struct {
	text string
}

func (n *jNumber) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		n.text = s
		return nil
	}
	n.text = string(data)
	return nil
}

func (n jNumber) uint64() uint64 {
	v, err := strconv.ParseUint(n.text, 10, 64)
	if err != nil {
		// Exponent notation such as 1.7e18 is valid JSON for a number.
		f, ferr := strconv.ParseFloat(n.text, 64)
		if ferr != nil || f < 0 || f >= math.MaxUint64 || math.IsNaN(f) {
			return 0
		}
		return uint64(f)
	}
	return v
}

func (n jNumber) int64() (int64, bool) {
	v, err := strconv.ParseInt(n.text, 10, 64)
	return v, err == nil
}

func (n jNumber) float64() (float64, bool) {
	v, err := strconv.ParseFloat(n.text, 64)
	return v, err == nil
}

// jEnum is an enum written as a number or as its name.
type jEnum struct {
	num  int32
	name string
}

func (e *jEnum) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		return json.Unmarshal(data, &e.name)
	}
	if bytes.Equal(data, []byte("null")) {
		return nil
	}
	v, err := strconv.ParseInt(string(data), 10, 32)
	if err != nil {
		e.num = -1
		return nil
	}
	e.num = int32(v)
	return nil
}

func (e jEnum) value(names map[string]int32) int32 {
	if e.name != "" {
		return names[strings.ToUpper(e.name)]
	}
	return e.num
}

func (rs *jResourceSpans) proto(ri int, b *tracing.Batch) *tracepb.ResourceSpans {
	out := &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: protoAttrs(rs.Resource.Attributes)}}
	for si := range rs.ScopeSpans {
		ss := &tracepb.ScopeSpans{}
		for pi := range rs.ScopeSpans[si].Spans {
			js := &rs.ScopeSpans[si].Spans[pi]
			where := fmt.Sprintf("resource %d scope %d span %d: ", ri, si, pi)
			tid, ok := decodeID(js.TraceID, 16)
			if !ok {
				b.Reject(tracing.ReasonInvalidTraceID, where+fmt.Sprintf("traceId %q is not 16 bytes in hex", clip(js.TraceID)))
				continue
			}
			sid, ok := decodeID(js.SpanID, 8)
			if !ok {
				b.Reject(tracing.ReasonInvalidSpanID, where+fmt.Sprintf("spanId %q is not 8 bytes in hex", clip(js.SpanID)))
				continue
			}
			var pid []byte
			if js.ParentSpanID != "" {
				if pid, ok = decodeID(js.ParentSpanID, 8); !ok {
					b.Reject(tracing.ReasonInvalidParentID, where+fmt.Sprintf("parentSpanId %q is not 8 bytes in hex", clip(js.ParentSpanID)))
					continue
				}
			}
			sp := &tracepb.Span{
				TraceId:           tid,
				SpanId:            sid,
				ParentSpanId:      pid,
				Name:              js.Name,
				Kind:              tracepb.Span_SpanKind(js.Kind.value(tracepb.Span_SpanKind_value)),
				StartTimeUnixNano: js.StartTimeUnixNano.uint64(),
				EndTimeUnixNano:   js.EndTimeUnixNano.uint64(),
				Attributes:        protoAttrs(js.Attributes),
				Status:            &tracepb.Status{Code: tracepb.Status_StatusCode(js.Status.Code.value(tracepb.Status_StatusCode_value))},
			}
			for _, e := range js.Events {
				sp.Events = append(sp.Events, &tracepb.Span_Event{
					TimeUnixNano: e.TimeUnixNano.uint64(), Name: e.Name, Attributes: protoAttrs(e.Attributes),
				})
			}
			ss.Spans = append(ss.Spans, sp)
		}
		out.ScopeSpans = append(out.ScopeSpans, ss)
	}
	return out
}

func protoAttrs(kvs []jKeyValue) []*commonpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]*commonpb.KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		v := &commonpb.AnyValue{}
		switch a := kv.Value; {
		case a.StringValue != nil:
			v.Value = &commonpb.AnyValue_StringValue{StringValue: *a.StringValue}
		case a.BoolValue != nil:
			v.Value = &commonpb.AnyValue_BoolValue{BoolValue: *a.BoolValue}
		case a.IntValue != nil:
			n, ok := a.IntValue.int64()
			if !ok {
				continue
			}
			v.Value = &commonpb.AnyValue_IntValue{IntValue: n}
		case a.DoubleValue != nil:
			f, ok := a.DoubleValue.float64()
			if !ok {
				continue
			}
			v.Value = &commonpb.AnyValue_DoubleValue{DoubleValue: f}
		default:
			continue
		}
		out = append(out, &commonpb.KeyValue{Key: kv.Key, Value: v})
	}
	return out
}

// decodeID decodes an id of n bytes written in hex (OTLP JSON) or base64
// (plain protojson). The empty string and any other length fail.
func decodeID(s string, n int) ([]byte, bool) {
	if len(s) == 2*n {
		if b, err := hex.DecodeString(s); err == nil {
			return b, true
		}
	}
	if len(s) == base64.StdEncoding.EncodedLen(n) {
		if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == n {
			return b, true
		}
		if b, err := base64.URLEncoding.DecodeString(s); err == nil && len(b) == n {
			return b, true
		}
	}
	return nil, false
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
