package otlpreceiver

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abmesh/abmesh/tracing"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// gateSink takes batches into a count, each Add blocking until the gate
// opens, so that admitted requests keep their reservations meanwhile.
type gateSink struct {
	gate    chan struct{}
	waiting atomic.Int64 // Adds blocked at the gate
	spans   atomic.Int64 // spans taken
}

func (g *gateSink) Add(b *tracing.Batch) (tracing.AddResult, error) {
	g.waiting.Add(1)
	<-g.gate
	g.spans.Add(int64(b.Len()))
	return tracing.AddResult{}, nil
}

// serveLimited starts a receiver for sink with limits on a loopback
// listener, the server built as abmeshd builds it, and returns a client.
func serveLimited(t *testing.T, sink Sink, l Limits, opts ...grpc.ServerOption) (*Receiver, collectortrace.TraceServiceClient) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(append(l.ServerOptions(), opts...)...)
	r := Register(s, sink, WithLimits(l), WithRetryDelay(50*time.Millisecond))
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return r, collectortrace.NewTraceServiceClient(conn)
}

// spansRequest returns a request of n valid spans of service svc, each
// with a name of nameLen bytes (to size the request).
func spansRequest(n, nameLen int) *collectortrace.ExportTraceServiceRequest {
	now := uint64(time.Now().UnixNano())
	name := string(make([]byte, nameLen))
	spans := make([]*tracepb.Span, n)
	for i := range spans {
		id := []byte{byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 1, 2, 3, 4}
		spans[i] = &tracepb.Span{TraceId: append(id, id...), SpanId: id, Name: name, StartTimeUnixNano: now, EndTimeUnixNano: now + 1000}
	}
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
		Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "svc"}}}}}
	return &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: res, ScopeSpans: []*tracepb.ScopeSpans{{Spans: spans}}}}}
}

func retryInfo(st *status.Status) (time.Duration, bool) {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// TestAdmissionRefusesConcurrentLargeExports sends concurrent large
// exports over a real listener to a receiver whose budget holds two:
// while the admitted ones are held in the sink, the rest are refused with
// RESOURCE_EXHAUSTED and a RetryInfo, and once the sink lets go, every
// export is either refused or accepted with all its spans: accepted +
// refused = sent, nothing accepted is lost.
func TestAdmissionRefusesConcurrentLargeExports(t *testing.T) {
	const (
		exports = 12
		spans   = 500
	)
	sink := &gateSink{gate: make(chan struct{})}
	l := Limits{MaxMessageBytes: 1 << 20, MaxInflightBytes: 2 << 20}
	r, client := serveLimited(t, sink, l)
	req := spansRequest(spans, 1200) // ~620 kB: charge ~940 kB
	if n := proto.Size(req); n < 600<<10 || int64(n)+spans*DecodedSpanBytes > 1<<20 {
		t.Fatalf("request of %d bytes: want a charge just under 1 MiB", n)
	}

	var wg sync.WaitGroup
	errs := make(chan error, exports)
	for range exports {
		wg.Go(func() {
			_, err := client.Export(context.Background(), req)
			errs <- err
		})
	}
	// Refusals come back at once; the admitted wait at the gate.
	deadline := time.Now().Add(10 * time.Second)
	for int64(len(errs))+sink.waiting.Load() < exports && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	held := sink.waiting.Load()
	close(sink.gate)
	wg.Wait()
	close(errs)

	accepted, refused := 0, 0
	for err := range errs {
		if err == nil {
			accepted++
			continue
		}
		st := status.Convert(err)
		if _, ok := retryInfo(st); st.Code() != grpccodes.ResourceExhausted || !ok {
			t.Fatalf("refusal %v: want RESOURCE_EXHAUSTED with RetryInfo", err)
		}
		refused++
	}
	t.Logf("%d exports of %d bytes: %d accepted (%d held at once), %d refused", exports, proto.Size(req), accepted, held, refused)
	if accepted+refused != exports || refused == 0 || accepted == 0 || held > 2 {
		t.Fatalf("accepted %d + refused %d of %d, %d held at once: want some of each, at most 2 at once", accepted, refused, exports, held)
	}
	if got := sink.spans.Load(); got != int64(accepted*spans) {
		t.Fatalf("sink took %d spans, want %d (accepted × %d)", got, accepted*spans, spans)
	}
	if st := r.Stats(); st.Requests != exports || st.RefusedInflight != uint64(refused) || st.Spans != uint64(accepted*spans) {
		t.Fatalf("stats %+v", st)
	}
	if r.adm.sem.TryAcquire(l.MaxInflightBytes) {
		r.adm.release(l.MaxInflightBytes)
	} else {
		t.Fatal("budget not fully returned after the exports")
	}
}

// TestAdmissionRefusals: garbage and requests whose decoding alone would
// exceed the budget are INVALID_ARGUMENT; an interceptor that refuses a
// call before the handler still returns its reservation.
func TestAdmissionRefusals(t *testing.T) {
	sink := &gateSink{gate: make(chan struct{})}
	close(sink.gate)
	l := Limits{MaxMessageBytes: 1 << 20, MaxInflightBytes: 2 << 20}
	var calls atomic.Int64
	deny := grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if calls.Add(1)%2 == 0 {
			return nil, status.Error(grpccodes.PermissionDenied, "no")
		}
		return h(ctx, req)
	})
	r, client := serveLimited(t, sink, l, deny)
	ctx := context.Background()

	// 10,000 empty spans: 20 kB on the wire, charged 2.6 MB to decode.
	empty := &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{ScopeSpans: []*tracepb.ScopeSpans{{Spans: make([]*tracepb.Span, 10000)}}}}}
	for i := range empty.ResourceSpans[0].ScopeSpans[0].Spans {
		empty.ResourceSpans[0].ScopeSpans[0].Spans[i] = &tracepb.Span{}
	}
	for i := range 10 { // odd calls reach the handler, even ones are denied
		_, err := client.Export(ctx, empty)
		want := grpccodes.InvalidArgument
		if i%2 == 1 {
			want = grpccodes.PermissionDenied
		}
		if status.Code(err) != want {
			t.Fatalf("call %d: %v, want %v", i, err, want)
		}
	}
	if _, err := client.Export(ctx, spansRequest(10, 10)); err != nil {
		t.Fatalf("a small export after the refusals: %v", err)
	}
	if !r.adm.sem.TryAcquire(l.MaxInflightBytes) {
		t.Fatal("budget not fully returned")
	}
}

// TestAdmissionResize checks the budget's rules directly: shrinking
// returns bytes, growing takes them when free, one request at a time
// waits for them (others are refused meanwhile), and a charge above the
// budget is too big.
func TestAdmissionResize(t *testing.T) {
	a := newAdmission(Limits{MaxMessageBytes: 100, MaxInflightBytes: 300})
	ctx := context.Background()
	h1, _ := a.reserve(ctx)
	h2, _ := a.reserve(ctx)
	h3, err := a.reserve(ctx)
	if h1+h2+h3 != 300 || err != nil {
		t.Fatalf("three reservations: %d %d %d, %v", h1, h2, h3, err)
	}
	if _, err := a.reserve(ctx); !errors.Is(err, errBusy) {
		t.Fatalf("fourth reservation: %v, want busy", err)
	}
	if h3, err = a.resize(ctx, h3, 40); h3 != 40 || err != nil { // shrink: 60 free
		t.Fatalf("shrink: %d, %v", h3, err)
	}
	if h2, err = a.resize(ctx, h2, 160); h2 != 160 || err != nil { // grow into them
		t.Fatalf("grow: %d, %v", h2, err)
	}
	if _, err := a.resize(ctx, 0, 301); !errors.Is(err, errTooBig) {
		t.Fatalf("charge above the budget: %v", err)
	}
	if h2, err = a.resize(ctx, h2, 50); err != nil { // 110 free
		t.Fatal(err)
	}
	// h1 grows by 150 and waits; meanwhile a reservation (100 of the 110
	// free) and another grower are refused; the other grower's release
	// of its 40 lets h1 through.
	grown := make(chan error, 1)
	go func() {
		var err error
		h1, err = a.resize(ctx, h1, 250)
		grown <- err
	}()
	for a.sem.TryAcquire(1) { // fails once a waiter is queued
		a.release(1)
		time.Sleep(time.Millisecond)
	}
	if _, err := a.reserve(ctx); !errors.Is(err, errBusy) {
		t.Fatalf("reservation while a grower waits: %v, want busy", err)
	}
	if _, err := a.resize(ctx, h3, 200); !errors.Is(err, errBusy) {
		t.Fatalf("second grower: %v, want busy", err)
	}
	if err := <-grown; err != nil || h1 != 250 {
		t.Fatalf("waiting grower: %d, %v", h1, err)
	}
	a.release(h1 + h2)
	if !a.sem.TryAcquire(300) {
		t.Fatal("budget not fully returned")
	}
}
