package otlp

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/tracing"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func num(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func resourceSpans(service string, spans ...*tracepb.Span) *tracepb.ResourceSpans {
	rs := &tracepb.ResourceSpans{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}}}
	if service != "" {
		rs.Resource = &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("host.name", "h"), str(ServiceNameKey, service)}}
	}
	return rs
}

func pbSpan(trace, id, parent byte) *tracepb.Span {
	s := &tracepb.Span{
		TraceId:           append(make([]byte, 15), trace),
		SpanId:            append(make([]byte, 7), id),
		Name:              "GET /",
		Kind:              tracepb.Span_SPAN_KIND_SERVER,
		StartTimeUnixNano: uint64(t0.UnixNano()),
		EndTimeUnixNano:   uint64(t0.Add(25 * time.Millisecond).UnixNano()),
		Attributes: []*commonpb.KeyValue{
			str("http.url", "https://example.com/very/long"), // not kept
			num("http.status_code", 200),
			{Key: "ratio", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 0.5}}},
			{Key: "cached", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
			{Key: "list", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{}}},
			{Key: "nil"},
			nil,
			str(tracing.UnitAttribute, "user-1"),
		},
		Events: []*tracepb.Span_Event{
			{Name: "message", Attributes: []*commonpb.KeyValue{num("message.id", 1)}}, // not kept
			{Name: tracing.EventFlagEvaluation, TimeUnixNano: uint64(t0.UnixNano()), Attributes: []*commonpb.KeyValue{
				str(tracing.AttrFlagKey, "t1"), str(tracing.AttrFlagVariant, "b"), num(tracing.AttrFlagVersion, 3),
			}},
			nil,
		},
		Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR},
	}
	if parent != 0 {
		s.ParentSpanId = append(make([]byte, 7), parent)
	}
	return s
}

func TestConvert(t *testing.T) {
	bad := func(f func(*tracepb.Span)) *tracepb.Span { s := pbSpan(1, 9, 0); f(s); return s }
	rss := []*tracepb.ResourceSpans{
		resourceSpans("web", pbSpan(1, 1, 0), pbSpan(1, 2, 1), nil),
		resourceSpans("", pbSpan(1, 3, 1)), // no service: the Assembler judges
		resourceSpans("api",
			bad(func(s *tracepb.Span) { s.TraceId = s.TraceId[:8] }),
			bad(func(s *tracepb.Span) { s.SpanId = nil }),
			bad(func(s *tracepb.Span) { s.ParentSpanId = []byte{1, 2, 3} }),
			bad(func(s *tracepb.Span) { s.StartTimeUnixNano = 1 << 63 }),
		),
		nil,
		{ScopeSpans: []*tracepb.ScopeSpans{nil}},
	}
	var b tracing.Batch
	Convert(rss, &b)
	if len(b.Spans) != 4 || b.Malformed.Total() != 3 {
		t.Fatalf("%d spans, %d malformed (%s)", len(b.Spans), b.Malformed.Total(), b.Malformed.String())
	}
	for _, r := range []tracing.Reason{tracing.ReasonInvalidTraceID, tracing.ReasonInvalidSpanID, tracing.ReasonInvalidParentID} {
		if b.Malformed[r] != 1 {
			t.Errorf("Malformed[%s] = %d, want 1", r, b.Malformed[r])
		}
	}
	if !strings.Contains(b.Detail, "resource 2 scope 0 span 0: trace_id has 8 bytes") {
		t.Errorf("Detail = %q", b.Detail)
	}
	if n := CountSpans(rss); n != 7 {
		t.Errorf("CountSpans = %d, want 7", n)
	}

	s := b.Spans[1]
	if s.Service != "web" || s.Kind != tracing.KindServer || !s.Error || s.Name != "GET /" ||
		s.ParentID[7] != 1 || s.SpanID[7] != 2 || s.TraceID[15] != 1 ||
		!s.Start.Equal(t0) || s.Duration() != 25*time.Millisecond {
		t.Errorf("span = %+v", s)
	}
	wantAttrs := []tracing.Attr{
		tracing.IntAttr("http.status_code", 200), tracing.FloatAttr("ratio", 0.5),
		tracing.BoolAttr("cached", true), tracing.StringAttr(tracing.UnitAttribute, "user-1"),
	}
	if !reflect.DeepEqual(s.Attrs, wantAttrs) {
		t.Errorf("Attrs = %+v, want %+v", s.Attrs, wantAttrs)
	}
	if len(s.Events) != 1 || s.Events[0].Name != tracing.EventFlagEvaluation || len(s.Events[0].Attrs) != 3 {
		t.Errorf("Events = %+v", s.Events)
	}
	if b.Spans[2].Service != "" {
		t.Errorf("service of a span without resource = %q", b.Spans[2].Service)
	}
	if got := b.Spans[3].Start; got.UnixNano() <= 0 || got.Year() < 2200 {
		t.Errorf("clamped start = %v", got)
	}
	// Appending to one span's attributes must not clobber the next span's.
	b.Spans[0].Attrs = append(b.Spans[0].Attrs, tracing.IntAttr("x", 1))
	if b.Spans[1].Attrs[0].Key != "http.status_code" {
		t.Error("spans share attribute capacity")
	}
}

const otlpJSON = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},
 "scopeSpans":[{"scope":{"name":"x"},"spans":[
  {"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","parentSpanId":"",
   "name":"GET","kind":2,"startTimeUnixNano":"1772366400000000000","endTimeUnixNano":1772366400025000000,
   "attributes":[{"key":"http.status_code","value":{"intValue":"200"}},{"key":"score","value":{"doubleValue":"NaN"}},
                 {"key":"bad","value":{"intValue":"x"}},{"key":"arr","value":{"arrayValue":{"values":[]}}}],
   "events":[{"timeUnixNano":"1772366400001000000","name":"feature_flag","attributes":[
      {"key":"feature_flag.key","value":{"stringValue":"t"}},{"key":"feature_flag.variant","value":{"stringValue":"on"}}]}],
   "status":{"code":"STATUS_CODE_ERROR"}},
  {"traceId":"W47/95gDgQPSabYzgT/GDA==","spanId":"AAAAAAAAAAE=","parentSpanId":"eee19b7ec3c1b174","kind":"SPAN_KIND_CLIENT",
   "startTimeUnixNano":"1772366400000000000","endTimeUnixNano":"1772366400000000000"},
  {"traceId":"zz","spanId":"0000000000000001"},
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"01"},
  {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"0000000000000002","parentSpanId":"xyz"}
 ]}]}]}`

func TestDecodeJSON(t *testing.T) {
	var b tracing.Batch
	if err := DecodeJSON([]byte(otlpJSON), &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Spans) != 2 || b.Malformed.String() != "invalid_trace_id=1, invalid_span_id=1, invalid_parent_id=1" {
		t.Fatalf("%d spans, malformed %s", len(b.Spans), b.Malformed.String())
	}
	s0, s1 := b.Spans[0], b.Spans[1]
	if s0.TraceID.String() != "5b8efff798038103d269b633813fc60c" || s0.SpanID.String() != "eee19b7ec3c1b174" ||
		s0.Kind != tracing.KindServer || !s0.Error || s0.Duration() != 25*time.Millisecond {
		t.Errorf("span 0 = %+v", s0)
	}
	if len(s0.Attrs) != 2 || s0.Attrs[0].Num != 200 || len(s0.Events) != 1 {
		t.Errorf("span 0 attrs %+v events %+v", s0.Attrs, s0.Events)
	}
	if s1.TraceID != s0.TraceID || s1.ParentID != s0.SpanID || s1.Kind != tracing.KindClient || s1.SpanID[7] != 1 {
		t.Errorf("span 1 (base64 ids) = %+v", s1)
	}

	for _, tc := range []struct {
		in     string
		offset int64
	}{
		{`{"resourceSpans":[{]}`, 20},
		{`{"resourceSpans":"x"}`, 20},
		{`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":5}]}]}]}`, 55},
	} {
		var b tracing.Batch
		err := DecodeJSON([]byte(tc.in), &b)
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			if se.Offset != tc.offset {
				t.Errorf("%s: syntax error at %d, want %d", tc.in, se.Offset, tc.offset)
			}
		case errors.As(err, &te):
			if te.Offset != tc.offset {
				t.Errorf("%s: type error at %d, want %d", tc.in, te.Offset, tc.offset)
			}
		default:
			t.Errorf("%s: err = %v, want a json error", tc.in, err)
		}
		if len(b.Spans) != 0 {
			t.Errorf("%s: spans appended on error", tc.in)
		}
	}
}

// FuzzJSONRoundTrip builds an OTLP message from fuzz data, encodes it with
// protojson (base64 ids) and with hex ids as OTLP JSON, and checks both
// decode to what Convert gives for the message itself.
var idField = regexp.MustCompile(`("(?:traceId|spanId|parentSpanId)")\s*:\s*"([^"]*)"`)

func FuzzJSONRoundTrip(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, "web", int64(200))
	f.Add([]byte{0, 0, 0}, "", int64(-1))
	f.Add([]byte{255, 1}, "é\x00\"", int64(1<<62))
	f.Fuzz(func(t *testing.T, ids []byte, service string, n int64) {
		if len(ids) == 0 {
			return
		}
		td := &tracepb.TracesData{}
		var spans []*tracepb.Span
		for i, x := range ids {
			s := pbSpan(x%3, x, ids[(i+1)%len(ids)]%4)
			s.Attributes = append(s.Attributes, num("n", n), str("abmesh.s", service))
			s.StartTimeUnixNano = uint64(n)
			spans = append(spans, s)
		}
		td.ResourceSpans = []*tracepb.ResourceSpans{resourceSpans(service, spans...)}
		var want tracing.Batch
		Convert(td.ResourceSpans, &want)

		pj, err := protojson.Marshal(td)
		if err != nil {
			t.Skip("not encodable:", err) // invalid UTF-8 in strings
		}
		var got tracing.Batch
		if err := DecodeJSON(pj, &got); err != nil {
			t.Fatalf("protojson output: %v\n%s", err, pj)
		}
		if !reflect.DeepEqual(want.Spans, got.Spans) || want.Malformed != got.Malformed {
			t.Fatalf("protojson round trip differs:\nwant %+v\ngot  %+v", want.Spans, got.Spans)
		}
		hexed := idField.ReplaceAllFunc(pj, func(m []byte) []byte {
			sub := idField.FindSubmatch(m)
			raw, err := base64.StdEncoding.DecodeString(string(sub[2]))
			if err != nil {
				t.Fatalf("protojson id %s: %v", sub[2], err)
			}
			return []byte(fmt.Sprintf("%s:%q", sub[1], hex.EncodeToString(raw)))
		})
		var got2 tracing.Batch
		if err := DecodeJSON(hexed, &got2); err != nil {
			t.Fatalf("hex ids: %v\n%s", err, hexed)
		}
		if !reflect.DeepEqual(want.Spans, got2.Spans) || want.Malformed != got2.Malformed {
			t.Fatalf("OTLP JSON round trip differs:\nwant %+v\ngot  %+v", want.Spans, got2.Spans)
		}
	})
}
