package otlp

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/abmesh/abmesh/tracing"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// checkSummaries decodes data with DecodeSummaries under lim and
// independently with DecodeProto followed by Batch.Summarize, and fails
// t when they differ (summaries, flags, metrics, rejections, trims, or
// whether the input is valid) or when a failed decode changed the batch.
func checkSummaries(t *testing.T, data []byte, lim tracing.SpanLimits) {
	t.Helper()
	lim = lim.WithDefaults()
	fast := tracing.Batch{Limits: lim}
	fast.Reject(tracing.ReasonMalformed, "before")
	fast.Summarize(&tracing.Span{TraceID: tracing.TraceID{1}, SpanID: tracing.SpanID{1}, Service: "already there"}, lim)
	before := fast
	before.Summaries = append([]tracing.SpanSummary(nil), fast.Summaries...)
	ferr := DecodeSummaries(data, &fast)

	var spans tracing.Batch
	perr := DecodeProto(data, &spans)
	if (ferr == nil) != (perr == nil) {
		t.Fatalf("DecodeSummaries: %v, DecodeProto: %v", ferr, perr)
	}
	if ferr != nil {
		if !slices.Equal(fast.Summaries, before.Summaries) || len(fast.Flags) != len(before.Flags) ||
			len(fast.Metrics) != len(before.Metrics) || fast.Trimmed != before.Trimmed ||
			fast.Malformed != before.Malformed || fast.Detail != before.Detail {
			t.Fatalf("failed decode changed the batch:\n%+v\n%+v", fast, before)
		}
		return
	}
	slow := tracing.Batch{Limits: lim}
	slow.Reject(tracing.ReasonMalformed, "before")
	slow.Summarize(&tracing.Span{TraceID: tracing.TraceID{1}, SpanID: tracing.SpanID{1}, Service: "already there"}, lim)
	for i := range spans.Spans {
		slow.Summarize(&spans.Spans[i], lim)
	}
	if !reflect.DeepEqual(fast.Summaries, slow.Summaries) || !reflect.DeepEqual(fast.Flags, slow.Flags) ||
		!reflect.DeepEqual(fast.Metrics, slow.Metrics) || fast.Trimmed != slow.Trimmed {
		t.Fatalf("DecodeSummaries differs from DecodeProto+Summarize:\nfast %+v\n     %+v\n     %+v %+v\nslow %+v\n     %+v\n     %+v %+v",
			fast.Summaries, fast.Flags, fast.Metrics, fast.Trimmed, slow.Summaries, slow.Flags, slow.Metrics, slow.Trimmed)
	}
	var want tracing.RejectCounts
	want[tracing.ReasonMalformed] = 1
	for r, n := range spans.Malformed {
		want[r] += n
	}
	if fast.Malformed != want || (spans.Detail != "" && fast.Detail != "before") {
		t.Fatalf("rejections %v %q, want %v", fast.Malformed, fast.Detail, want)
	}
}

// limitRequest exercises the limits: long values, many attributes and
// events, upper-case reasons, the baggage unit, a bad parent id.
func limitRequest() []byte {
	long := strings.Repeat("é", 200)
	s := pbSpan(4, 1, 0)
	s.Name = long
	s.Attributes = append(s.Attributes, str(tracing.BaggageUnitAttribute, "bag-unit"), str("abmesh.note", long))
	s.Events = append(s.Events, &tracepb.Span_Event{Name: tracing.EventFlagLegacy, Attributes: []*commonpb.KeyValue{
		str(tracing.AttrFlagKey, "t2"), str(tracing.AttrFlagVariantOld, long), str(tracing.AttrFlagContextID, "ctx-unit"),
		str(tracing.AttrFlagResultReason, "TARGETING_MATCH"), str(tracing.AttrAbmeshReason, "Override"), str(tracing.AttrFlagVersion, " 7 "),
	}}, &tracepb.Span_Event{Name: "feature_flag.other", Attributes: []*commonpb.KeyValue{str(tracing.AttrFlagKey, "x")}})
	baggage := pbSpan(4, 2, 1)
	baggage.Attributes = []*commonpb.KeyValue{num(tracing.UnitAttribute, 3), str(tracing.BaggageUnitAttribute, "b2")}
	badParent := pbSpan(4, 3, 1)
	badParent.ParentSpanId = []byte{1}
	req := sampleRequest()
	req.ResourceSpans = append(req.ResourceSpans, resourceSpans(strings.Repeat("service", 50), s, baggage, badParent))
	data, err := proto.Marshal(req)
	if err != nil {
		panic(err)
	}
	return data
}

func TestDecodeSummariesMatchesDecodeProto(t *testing.T) {
	data, err := proto.Marshal(sampleRequest())
	if err != nil {
		t.Fatal(err)
	}
	tight := tracing.SpanLimits{MaxValueLen: 5, MaxAttrs: 2, MaxEvents: 1}
	for _, lim := range []tracing.SpanLimits{{}, tight, {MaxAttrs: 3}} {
		checkSummaries(t, data, lim)
		checkSummaries(t, limitRequest(), lim)
	}
	var b tracing.Batch
	if err := DecodeSummaries(limitRequest(), &b); err != nil {
		t.Fatal(err)
	}
	if n := len(b.Summaries); n != 6 || b.Malformed.Total() != 2 {
		t.Fatalf("%d summaries, rejected %v", n, b.Malformed)
	}
	s := b.Summaries[4]
	if s.Unit != "user-1" || b.Summaries[5].Unit != "b2" || s.Service != strings.Repeat("service", 50)[:256] {
		t.Errorf("units %q %q, service %q", s.Unit, b.Summaries[5].Unit, s.Service)
	}
	f := b.Flags[s.FlagHi-1]
	if f.Key != "t2" || f.Reason != "override" || f.Phase != 7 || f.Unit != "ctx-unit" || len(f.Variant) != 256 {
		t.Errorf("flag %+v", f)
	}
	// Truncated input fails.
	if err := DecodeSummaries(data[:len(data)-3], &b); err == nil {
		t.Error("truncated input decoded")
	}
}

func TestDecodeSummariesAllocations(t *testing.T) {
	data, err := proto.Marshal(sampleRequest())
	if err != nil {
		t.Fatal(err)
	}
	var b tracing.Batch
	DecodeSummaries(data, &b)
	allocs := testing.AllocsPerRun(100, func() {
		b.Reset()
		if err := DecodeSummaries(data, &b); err != nil {
			t.Fatal(err)
		}
	})
	// One unit id string per request; the rejected span's detail.
	if allocs > 4 {
		t.Errorf("%v allocations per request of %d spans", allocs, len(b.Summaries))
	}
}

func BenchmarkDecodeSummaries(b *testing.B) {
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
		if err := DecodeSummaries(data, &batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/span")
}

// FuzzDecodeSummaries checks DecodeSummaries against DecodeProto followed
// by Batch.Summarize on arbitrary bytes, with tight limits.
func FuzzDecodeSummaries(f *testing.F) {
	data, err := proto.Marshal(sampleRequest())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(limitRequest())
	f.Add(data[:len(data)/2])
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSummaries(t, data, tracing.SpanLimits{MaxValueLen: 5, MaxAttrs: 2, MaxEvents: 1})
	})
}
