package otlp

import (
	"reflect"
	"testing"

	"github.com/abmesh/abmesh/tracing"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

func sampleRequest() *collectortrace.ExportTraceServiceRequest {
	bad := pbSpan(1, 9, 0)
	bad.SpanId = []byte{1, 2}
	return &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		resourceSpans("web", pbSpan(1, 1, 0), pbSpan(1, 2, 1)),
		resourceSpans("", pbSpan(1, 3, 1)),
		resourceSpans("api", bad, pbSpan(2, 4, 0)),
	}}
}

// checkSame decodes data both ways and compares when proto accepts it.
func checkSame(t *testing.T, data []byte) {
	t.Helper()
	var fast tracing.Batch
	fast.Spans = append(fast.Spans, tracing.Span{Name: "already there"})
	fast.Reject(tracing.ReasonMalformed, "before")
	before := fast
	before.Spans = append([]tracing.Span(nil), fast.Spans...)
	ferr := DecodeProto(data, &fast)
	checkCount(t, data, ferr, len(fast.Spans)-len(before.Spans)+fast.Malformed.Total()-before.Malformed.Total())

	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		if ferr != nil && (!reflect.DeepEqual(fast.Spans, before.Spans) || fast.Malformed != before.Malformed || fast.Detail != before.Detail) {
			t.Fatalf("failed decode changed the batch")
		}
		return
	}
	if ferr != nil {
		t.Fatalf("DecodeProto failed where proto.Unmarshal succeeded: %v", ferr)
	}
	slow := tracing.Batch{Spans: []tracing.Span{{Name: "already there"}}}
	slow.Reject(tracing.ReasonMalformed, "before")
	Convert(req.ResourceSpans, &slow)
	if !reflect.DeepEqual(fast.Spans, slow.Spans) || fast.Malformed != slow.Malformed || fast.Detail != slow.Detail {
		t.Fatalf("DecodeProto differs from Unmarshal+Convert:\nfast %+v %v\nslow %+v %v", fast.Spans, fast.Malformed, slow.Spans, slow.Malformed)
	}
}

// checkCount checks CountProtoSpans against DecodeProto's outcome on
// data: where DecodeProto succeeded (ferr nil, decoded spans converted or
// rejected), the same count; where CountProtoSpans fails, DecodeProto
// failed too (it reads the same levels the same way).
func checkCount(t *testing.T, data []byte, ferr error, decoded int) {
	t.Helper()
	n, err := CountProtoSpans(data)
	switch {
	case err != nil && ferr == nil:
		t.Fatalf("CountProtoSpans failed (%v) where DecodeProto succeeded", err)
	case ferr == nil && n != decoded:
		t.Fatalf("CountProtoSpans = %d, DecodeProto decoded %d", n, decoded)
	}
}

func TestDecodeProtoMatchesConvert(t *testing.T) {
	data, err := proto.Marshal(sampleRequest())
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, data)
	var b tracing.Batch
	if err := DecodeProto(data, &b); err != nil || len(b.Spans) != 4 || b.Malformed[tracing.ReasonInvalidSpanID] != 1 {
		t.Fatalf("%v: %d spans, %s", err, len(b.Spans), b.Malformed.String())
	}
	if b.Spans[0].Service != "web" || len(b.Spans[0].Events) != 1 || len(b.Spans[0].Attrs) != 4 {
		t.Errorf("span = %+v", b.Spans[0])
	}
	// Truncated input fails and leaves b as it was.
	before := len(b.Spans)
	if err := DecodeProto(data[:len(data)-3], &b); err == nil || len(b.Spans) != before {
		t.Errorf("truncated: %v, %d spans", err, len(b.Spans))
	}
	// Fields out of the usual order, repeated resources and statuses.
	rs := sampleRequest().ResourceSpans[0]
	raw, _ := proto.Marshal(rs)
	checkSame(t, append(append([]byte{0x0a, byte(len(raw))}, raw...), raw...))
}

func BenchmarkDecodeProto(b *testing.B) {
	req := sampleRequest()
	for range 100 {
		req.ResourceSpans = append(req.ResourceSpans, resourceSpans("svc", pbSpan(3, 1, 0), pbSpan(3, 2, 1), pbSpan(3, 3, 2), pbSpan(3, 4, 3)))
	}
	data, _ := proto.Marshal(req)
	n := CountSpans(req.ResourceSpans)
	var batch tracing.Batch
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		if err := DecodeProto(data, &batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/span")
}

func BenchmarkUnmarshalConvert(b *testing.B) {
	req := sampleRequest()
	for range 100 {
		req.ResourceSpans = append(req.ResourceSpans, resourceSpans("svc", pbSpan(3, 1, 0), pbSpan(3, 2, 1), pbSpan(3, 3, 2), pbSpan(3, 4, 3)))
	}
	data, _ := proto.Marshal(req)
	n := CountSpans(req.ResourceSpans)
	var batch tracing.Batch
	b.ReportAllocs()
	for b.Loop() {
		batch.Reset()
		var r collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(data, &r); err != nil {
			b.Fatal(err)
		}
		Convert(r.ResourceSpans, &batch)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/span")
}

// FuzzDecodeProto checks the hand-written decoder against proto.Unmarshal
// followed by Convert on arbitrary bytes: wherever protobuf accepts the
// input, both give the same spans and counts; nothing panics.
func FuzzDecodeProto(f *testing.F) {
	data, err := proto.Marshal(sampleRequest())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte{0x0a, 0x00})
	f.Add([]byte{0x0a, 0x04, 0x12, 0x02, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) { checkSame(t, data) })
}
