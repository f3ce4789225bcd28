package otlpreceiver

import (
	"context"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abmesh/abmesh/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type collector struct {
	mu  sync.Mutex
	obs []*tracing.Observation
}

func (c *collector) ConsumeObservation(o *tracing.Observation) {
	c.mu.Lock()
	c.obs = append(c.obs, o)
	c.mu.Unlock()
}

// serve starts a receiver for asm on a loopback listener.
func serve(t *testing.T, asm Sink, opts ...Option) string {
	return serveWith(t, Register, asm, opts...)
}

func serveWith(t *testing.T, register func(*grpc.Server, Sink, ...Option) *Receiver, asm Sink, opts ...Option) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(Limits{}.ServerOptions()...)
	register(s, asm, opts...)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// provider is one instrumented service exporting with the real SDK.
func provider(t *testing.T, addr, service string, retry otlptracegrpc.RetryConfig) *sdktrace.TracerProvider {
	t.Helper()
	exp, err := otlptracegrpc.New(context.Background(),
		otlptracegrpc.WithInsecure(), otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithRetry(retry))
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", service))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

func flagEvent(test, variant, unit string) trace.EventOption {
	return trace.WithAttributes(
		attribute.String(tracing.AttrFlagKey, test),
		attribute.String(tracing.AttrFlagVariant, variant),
		attribute.String(tracing.AttrFlagContextID, unit),
		attribute.String(tracing.AttrFlagProvider, "abmesh"),
		attribute.Int(tracing.AttrFlagVersion, 4),
		attribute.String(tracing.AttrFlagResultReason, "SPLIT"),
	)
}

// request makes one request through frontend → checkout → payment with the
// SDK, recording flag evaluations as the abmesh SDK does.
func request(frontend, checkout, payment trace.Tracer, unit string) {
	ctx, root := frontend.Start(context.Background(), "GET /buy", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String(tracing.UnitAttribute, unit), attribute.Int("http.status_code", 200)))
	root.AddEvent(tracing.EventFlagEvaluation, flagEvent("new-home", "treatment", unit))
	cctx, call := frontend.Start(ctx, "checkout.Buy", trace.WithSpanKind(trace.SpanKindClient))
	sctx, srv := checkout.Start(cctx, "Buy", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.Float64("shop.order.value", 99.5)))
	srv.AddEvent(tracing.EventFlagEvaluation, flagEvent("fast-checkout", "control", unit))
	pctx, pcall := checkout.Start(sctx, "payment.Charge", trace.WithSpanKind(trace.SpanKindClient))
	_, psrv := payment.Start(pctx, "Charge", trace.WithSpanKind(trace.SpanKindServer))
	psrv.AddEvent(tracing.EventFlagLegacy, trace.WithAttributes(
		attribute.String(tracing.AttrFlagKey, "retry-policy"), attribute.String(tracing.AttrFlagVariantOld, "aggressive")))
	psrv.SetStatus(codes.Error, "card declined")
	time.Sleep(time.Millisecond)
	psrv.End()
	pcall.End()
	srv.End()
	call.End()
	root.End()
}

func TestExportWithOpenTelemetrySDK(t *testing.T) {
	col := &collector{}
	asm, err := tracing.NewAssembler(tracing.Config{TickInterval: -1}, col)
	if err != nil {
		t.Fatal(err)
	}
	defer asm.Close()
	addr := serve(t, asm)

	retry := otlptracegrpc.RetryConfig{Enabled: false}
	fe, co, pa := provider(t, addr, "frontend", retry), provider(t, addr, "checkout", retry), provider(t, addr, "payment", retry)
	for _, u := range []string{"user-1", "user-2"} {
		request(fe.Tracer("t"), co.Tracer("t"), pa.Tracer("t"), u)
	}
	for _, tp := range []*sdktrace.TracerProvider{fe, co, pa} {
		if err := tp.ForceFlush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := asm.Flush(); n != 2 {
		t.Fatalf("Flush completed %d traces, want 2", n)
	}
	c := asm.Stats()
	if c.SpansAccepted != 10 || c.MalformedTotal() != 0 || c.ObservationsEmitted != 2 {
		t.Fatalf("counters = %+v", c)
	}

	units := map[string]bool{}
	for _, o := range col.obs {
		units[o.Unit] = true
		if want := []string{"checkout", "frontend", "payment"}; !reflect.DeepEqual(o.Services, want) {
			t.Errorf("Services = %v", o.Services)
		}
		if want := []tracing.Edge{{Caller: "checkout", Callee: "payment", Calls: 1}, {Caller: "frontend", Callee: "checkout", Calls: 1}}; !reflect.DeepEqual(o.Edges, want) {
			t.Errorf("Edges = %v", o.Edges)
		}
		want := []tracing.Exposure{
			{Test: "fast-checkout", Variant: "control", Service: "checkout", Phase: 4, Reason: "split"},
			{Test: "new-home", Variant: "treatment", Service: "frontend", Phase: 4, Reason: "split"},
			{Test: "retry-policy", Variant: "aggressive", Service: "payment"},
		}
		if !reflect.DeepEqual(o.Exposures, want) {
			t.Errorf("Exposures = %+v", o.Exposures)
		}
		if v, ok := o.Metric("payment", "error"); !ok || v != 1 {
			t.Errorf("payment error = %v, %v", v, ok)
		}
		if v, ok := o.Metric("checkout", "attribute:shop.order.value"); !ok || v != 99.5 {
			t.Errorf("order value = %v, %v", v, ok)
		}
		if v, ok := o.Metric("payment", "latency_ms"); !ok || v < 1 || v > 5000 {
			t.Errorf("payment latency = %v, %v", v, ok)
		}
	}
	if !units["user-1"] || !units["user-2"] {
		t.Errorf("units = %v", units)
	}
}

// TestExportFullRetries fills the assembler: the SDK exporter gets
// RESOURCE_EXHAUSTED with a RetryInfo, retries, and succeeds once the
// assembler has room, without duplicating spans.
func TestExportFullRetries(t *testing.T) {
	asm, err := tracing.NewAssembler(tracing.Config{TickInterval: -1, MaxSpans: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer asm.Close()
	addr := serve(t, asm, WithRetryDelay(20*time.Millisecond))
	retry := otlptracegrpc.RetryConfig{Enabled: true, InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond, MaxElapsedTime: 10 * time.Second}
	fe := provider(t, addr, "frontend", retry)
	tr := fe.Tracer("t")
	for i := range 4 {
		_, s := tr.Start(context.Background(), "op")
		s.SetAttributes(attribute.Int("i", i))
		s.End()
	}
	if err := fe.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // 4 + 3 > 5: refused until Flush
		_, s := tr.Start(context.Background(), "op2")
		s.SetAttributes(attribute.Int("i", i))
		s.End()
	}
	done := make(chan error, 1)
	go func() { done <- fe.ForceFlush(context.Background()) }()
	deadline := time.Now().Add(5 * time.Second)
	for asm.Stats().BatchesRejectedFull < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	asm.Flush()
	if err := <-done; err != nil {
		t.Fatalf("ForceFlush after retries: %v", err)
	}
	c := asm.Stats()
	if c.SpansAccepted != 7 || c.SpansReceived != 7 || c.BatchesRejectedFull < 2 || c.SpansRejectedFull%3 != 0 {
		t.Errorf("counters = %+v", c)
	}
}

func TestExportStatusesAndPartialSuccess(t *testing.T) {
	for name, register := range map[string]func(*grpc.Server, Sink, ...Option) *Receiver{
		"Register": Register, "RegisterTyped": RegisterTyped,
	} {
		t.Run(name, func(t *testing.T) { testStatuses(t, register) })
	}
}

func testStatuses(t *testing.T, register func(*grpc.Server, Sink, ...Option) *Receiver) {
	asm, err := tracing.NewAssembler(tracing.Config{TickInterval: -1, MaxTraces: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveWith(t, register, asm, WithRetryDelay(3*time.Second))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := collectortrace.NewTraceServiceClient(conn)
	now := uint64(time.Now().UnixNano())
	sp := func(trace, id byte) *tracepb.Span {
		return &tracepb.Span{TraceId: append(make([]byte, 15), trace), SpanId: append(make([]byte, 7), id),
			StartTimeUnixNano: now, EndTimeUnixNano: now + 1000}
	}
	rs := func(service string, spans ...*tracepb.Span) *tracepb.ResourceSpans {
		r := &tracepb.ResourceSpans{ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}}}
		if service != "" {
			r.Resource = &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
				Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: service}}}}}
		}
		return r
	}
	badID := sp(1, 3)
	badID.SpanId = []byte{1}
	backwards := sp(1, 4)
	backwards.EndTimeUnixNano = now - 1e9
	ctx := context.Background()
	resp, err := client.Export(ctx, &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		rs("web", sp(1, 1), badID, backwards, sp(1, 1)), rs("", sp(1, 2)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.GetPartialSuccess()
	if ps.GetRejectedSpans() != 4 {
		t.Errorf("rejected_spans = %d, want 4 (%s)", ps.GetRejectedSpans(), ps.GetErrorMessage())
	}
	for _, want := range []string{"invalid_span_id=1", "missing_service=1", "end_before_start=1", "duplicate_span_id=1", "span_id has 1 bytes"} {
		if !strings.Contains(ps.GetErrorMessage(), want) {
			t.Errorf("error_message %q lacks %q", ps.GetErrorMessage(), want)
		}
	}

	// A second trace does not fit: RESOURCE_EXHAUSTED with RetryInfo.
	_, err = client.Export(ctx, &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs("web", sp(2, 1))}})
	st := status.Convert(err)
	if st.Code() != grpccodes.ResourceExhausted {
		t.Fatalf("full: %v, want ResourceExhausted", err)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay != 3*time.Second {
		t.Errorf("RetryInfo delay = %v, want 3s", delay)
	}

	// Empty request: fine.
	if resp, err := client.Export(ctx, &collectortrace.ExportTraceServiceRequest{}); err != nil || resp.GetPartialSuccess() != nil {
		t.Errorf("empty request: %v %v", resp, err)
	}

	asm.Close()
	_, err = client.Export(ctx, &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{rs("web", sp(2, 1))}})
	if status.Code(err) != grpccodes.Unavailable {
		t.Errorf("closed: %v, want Unavailable", err)
	}
}

// rawCodec sends []byte requests as they are.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	return proto.Unmarshal(data, v.(proto.Message))
}
func (rawCodec) Name() string { return "proto" }

func TestExportMalformedWire(t *testing.T) {
	asm, err := tracing.NewAssembler(tracing.Config{TickInterval: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer asm.Close()
	addr := serve(t, asm)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Field 1 (resource_spans) claims 100 bytes but 2 follow; then a
	// resource spans whose span has a 3-byte trace id.
	for _, tc := range []struct {
		req  []byte
		code grpccodes.Code
	}{
		{[]byte{0x0a, 100, 1, 2}, grpccodes.InvalidArgument},                    // resource_spans length beyond the request
		{[]byte{0x0a, 0x04, 0x12, 0x02, 0x12, 0x08}, grpccodes.InvalidArgument}, // span length beyond its scope
	} {
		resp := new(collectortrace.ExportTraceServiceResponse)
		err := conn.Invoke(context.Background(), collectortrace.TraceService_Export_FullMethodName, tc.req, resp, grpc.ForceCodec(rawCodec{}))
		if status.Code(err) != tc.code {
			t.Errorf("% x: %v, want %v", tc.req, err, tc.code)
		}
	}
	short := []byte{0x0a, 0x09, 0x12, 0x07, 0x12, 0x05, 0x0a, 0x03, 1, 2, 3}
	resp := new(collectortrace.ExportTraceServiceResponse)
	if err := conn.Invoke(context.Background(), collectortrace.TraceService_Export_FullMethodName, short, resp, grpc.ForceCodec(rawCodec{})); err != nil {
		t.Fatal(err)
	}
	if ps := resp.GetPartialSuccess(); ps.GetRejectedSpans() != 1 || !strings.Contains(ps.GetErrorMessage(), "trace_id has 3 bytes") {
		t.Errorf("partial success = %v", ps)
	}
	if c := asm.Stats(); c.Malformed["invalid_trace_id"] != 1 {
		t.Errorf("counters = %+v", c)
	}
}
