package client_test

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
	demov1 "github.com/abmesh/abmesh/proto/abmesh/demo/v1"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// telemetry is one in-memory span exporter shared by a tracer provider
// per service (each with its service.name), as a collector would see them.
type telemetry struct {
	exp *tracetest.InMemoryExporter
	tps []*sdktrace.TracerProvider
}

func newTelemetry(t *testing.T) *telemetry {
	tel := &telemetry{exp: tracetest.NewInMemoryExporter()}
	t.Cleanup(func() {
		for _, tp := range tel.tps {
			tp.Shutdown(context.Background())
		}
	})
	return tel
}

func (tel *telemetry) provider(service string) *sdktrace.TracerProvider {
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSyncer(tel.exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	tel.tps = append(tel.tps, tp)
	return tp
}

// serverSpan waits for the server span of service and returns it.
func (tel *telemetry) serverSpan(t *testing.T, service string) tracetest.SpanStub {
	t.Helper()
	var found tracetest.SpanStub
	eventually(t, "server span of "+service, func() bool {
		for _, s := range tel.exp.GetSpans() {
			if s.SpanKind == trace.SpanKindServer && serviceOf(s) == service {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

func serviceOf(s tracetest.SpanStub) string {
	v, _ := s.Resource.Set().Value(semconv.ServiceNameKey)
	return v.AsString()
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// flagEvents returns the feature_flag.evaluation events of s by
// feature_flag.key.
func flagEvents(t *testing.T, events []sdktrace.Event) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, e := range events {
		if e.Name != client.EventName {
			continue
		}
		m := attrMap(e.Attributes)
		key := m["feature_flag.key"]
		if _, dup := out[key]; dup {
			t.Errorf("test %q recorded twice", key)
		}
		out[key] = m
	}
	return out
}

// shopServer is a ShopService that records what its handler saw.
type shopServer struct {
	demov1.UnimplementedShopServiceServer
	name string
	c    *client.Client
	next demov1.ShopServiceClient // nil for a leaf

	mu       sync.Mutex
	baggage  string      // unit from baggage
	metadata metadata.MD // incoming metadata
	variant  string      // Variant of the service's main test
}

func (s *shopServer) Handle(ctx context.Context, req *demov1.HandleRequest) (*demov1.HandleResponse, error) {
	u, _ := client.UnitFromContext(ctx)
	md, _ := metadata.FromIncomingContext(ctx)
	main := map[string]string{"frontend": "hero-banner", "recommendation": "rec-model"}[s.name]
	v := s.c.Variant(ctx, main)
	s.mu.Lock()
	s.baggage, s.metadata, s.variant = u, md, v
	s.mu.Unlock()
	resp := &demov1.HandleResponse{Service: s.name, Variants: map[string]string{}}
	if s.next != nil {
		down, err := s.next.Handle(ctx, req)
		if err != nil {
			return nil, err
		}
		resp.Variants = down.Variants
	}
	for _, a := range s.c.Assignments(ctx) {
		resp.Variants[a.Test] = a.Variant
	}
	return resp, nil
}

// serve starts a gRPC server on loopback with otelgrpc's stats handler
// and c's interceptors, and returns its address.
func serve(t *testing.T, tp trace.TracerProvider, c *client.Client, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(client.Propagator()))),
		grpc.ChainUnaryInterceptor(c.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(c.StreamServerInterceptor()),
	)
	register(srv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// dial connects to addr, with otelgrpc when tp is not nil and with c's
// client interceptors when c is not nil.
func dial(t *testing.T, addr string, tp trace.TracerProvider, c *client.Client) *grpc.ClientConn {
	t.Helper()
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if tp != nil {
		opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(client.Propagator()))))
	}
	if c != nil {
		opts = append(opts, grpc.WithChainUnaryInterceptor(c.UnaryClientInterceptor()), grpc.WithChainStreamInterceptor(c.StreamClientInterceptor()))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func static(t *testing.T, cfg assign.Config, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.NewStatic(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTwoServices: a caller sets the unit with WithUnit and calls the
// frontend, which calls recommendation; both record their tests on their
// server spans, and the unit reaches recommendation through baggage.
func TestTwoServices(t *testing.T) {
	cfg := shopConfig(t)
	eng, err := assign.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, unit := range []string{"user-42", "user 42/é,;=%"} {
		t.Run(unit, func(t *testing.T) {
			tel := newTelemetry(t)
			rec := &shopServer{name: "recommendation", c: static(t, cfg, client.WithService("recommendation"))}
			recAddr := serve(t, tel.provider("recommendation"), rec.c, func(s *grpc.Server) { demov1.RegisterShopServiceServer(s, rec) })

			frontTP := tel.provider("frontend")
			front := &shopServer{name: "frontend", c: static(t, cfg, client.WithService("frontend"), client.WithRoutingHeaders(true))}
			front.next = demov1.NewShopServiceClient(dial(t, recAddr, frontTP, front.c))
			frontAddr := serve(t, frontTP, front.c, func(s *grpc.Server) { demov1.RegisterShopServiceServer(s, front) })

			caller := demov1.NewShopServiceClient(dial(t, frontAddr, tel.provider("caller"), nil))
			resp, err := caller.Handle(client.WithUnit(context.Background(), unit), &demov1.HandleRequest{Action: "view"})
			if err != nil {
				t.Fatal(err)
			}

			want := map[string]assign.Assignment{}
			for _, id := range []string{"rec-model", "rec-count", "paused-test", "hero-banner"} {
				a, err := eng.EvaluateTest(id, unit, nil)
				if err != nil {
					t.Fatal(err)
				}
				want[id] = a
				if resp.Variants[id] != a.Variant {
					t.Errorf("response variant of %s = %q, want %q", id, resp.Variants[id], a.Variant)
				}
			}
			if _, ok := resp.Variants["draft-test"]; ok {
				t.Error("a draft was evaluated")
			}

			// The unit reached recommendation through baggage; UnitHeader
			// only when it is printable ASCII; the routing header of the
			// frontend's test went along.
			rec.mu.Lock()
			if rec.baggage != unit {
				t.Errorf("recommendation: unit from baggage = %q, want %q", rec.baggage, unit)
			}
			if rec.variant != want["rec-model"].Variant {
				t.Errorf("recommendation: Variant = %q, want %q", rec.variant, want["rec-model"].Variant)
			}
			hdr := rec.metadata.Get(client.UnitHeader)
			if ascii := !strings.ContainsAny(unit, "é"); ascii && !slices.Equal(hdr, []string{unit}) || !ascii && len(hdr) != 0 {
				t.Errorf("recommendation: %s = %q", client.UnitHeader, hdr)
			}
			if got := rec.metadata.Get(assign.HeaderName("hero-banner")); !slices.Equal(got, []string{want["hero-banner"].Variant}) {
				t.Errorf("routing header = %q, want %q", got, want["hero-banner"].Variant)
			}
			rec.mu.Unlock()

			recSpan := tel.serverSpan(t, "recommendation")
			frontSpan := tel.serverSpan(t, "frontend")
			if recSpan.SpanContext.TraceID() != frontSpan.SpanContext.TraceID() || recSpan.Parent.TraceID() != frontSpan.SpanContext.TraceID() {
				t.Error("recommendation's span is not in the frontend's trace")
			}
			for _, s := range []tracetest.SpanStub{recSpan, frontSpan} {
				if got := attrMap(s.Attributes)["abmesh.unit"]; got != unit {
					t.Errorf("%s span abmesh.unit = %q, want %q", serviceOf(s), got, unit)
				}
			}
			checkEvents(t, flagEvents(t, recSpan.Events), unit, want, "rec-model", "rec-count", "paused-test")
			checkEvents(t, flagEvents(t, frontSpan.Events), unit, want, "hero-banner")
		})
	}
}

func checkEvents(t *testing.T, got map[string]map[string]string, unit string, want map[string]assign.Assignment, tests ...string) {
	t.Helper()
	if len(got) != len(tests) {
		t.Errorf("events for %d tests, want %v", len(got), tests)
	}
	for _, id := range tests {
		a := want[id]
		wantAttrs := map[string]string{
			"feature_flag.key":            id,
			"feature_flag.result.variant": a.Variant,
			"feature_flag.context.id":     unit,
			"feature_flag.provider.name":  "abmesh",
			"feature_flag.version":        "1",
			"feature_flag.result.reason":  client.FeatureFlagReason(a.Reason),
			"abmesh.reason":               a.Reason.String(),
		}
		if !mapsEqual(got[id], wantAttrs) {
			t.Errorf("event of %s:\n got %v\nwant %v", id, got[id], wantAttrs)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestUnitHeaderFallback: a caller without OpenTelemetry sends only the
// x-abmesh-unit header.
func TestUnitHeaderFallback(t *testing.T) {
	cfg := shopConfig(t)
	tel := newTelemetry(t)
	rec := &shopServer{name: "recommendation", c: static(t, cfg, client.WithService("recommendation"))}
	addr := serve(t, tel.provider("recommendation"), rec.c, func(s *grpc.Server) { demov1.RegisterShopServiceServer(s, rec) })
	ctx := metadata.AppendToOutgoingContext(context.Background(), client.UnitHeader, "user-9")
	if _, err := demov1.NewShopServiceClient(dial(t, addr, nil, nil)).Handle(ctx, &demov1.HandleRequest{}); err != nil {
		t.Fatal(err)
	}
	span := tel.serverSpan(t, "recommendation")
	ev := flagEvents(t, span.Events)
	if ev["rec-model"]["feature_flag.context.id"] != "user-9" || attrMap(span.Attributes)["abmesh.unit"] != "user-9" {
		t.Fatalf("unit from header not used: span %v, event %v", attrMap(span.Attributes), ev["rec-model"])
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.baggage != "" {
		t.Fatalf("baggage unit %q without baggage", rec.baggage)
	}
}

// TestNoUnit: a request without a unit gets the controls, recorded as
// fallbacks, and no error.
func TestNoUnit(t *testing.T) {
	cfg := shopConfig(t)
	tel := newTelemetry(t)
	rec := &shopServer{name: "recommendation", c: static(t, cfg, client.WithService("recommendation"))}
	addr := serve(t, tel.provider("recommendation"), rec.c, func(s *grpc.Server) { demov1.RegisterShopServiceServer(s, rec) })
	resp, err := demov1.NewShopServiceClient(dial(t, addr, tel.provider("caller"), nil)).Handle(context.Background(), &demov1.HandleRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Variants["rec-model"] != "v1" || resp.Variants["paused-test"] != "control" {
		t.Fatalf("variants without a unit: %v", resp.Variants)
	}
	span := tel.serverSpan(t, "recommendation")
	if _, ok := attrMap(span.Attributes)["abmesh.unit"]; ok {
		t.Error("abmesh.unit set without a unit")
	}
	ev := flagEvents(t, span.Events)
	want := map[string]string{
		"feature_flag.key": "rec-model", "feature_flag.result.variant": "v1", "feature_flag.provider.name": "abmesh",
		"feature_flag.version": "1", "feature_flag.result.reason": "error", "abmesh.reason": "FALLBACK",
		"error.type": "targeting_key_missing",
	}
	if !mapsEqual(ev["rec-model"], want) {
		t.Errorf("running test without a unit:\n got %v\nwant %v", ev["rec-model"], want)
	}
	if p := ev["paused-test"]; p["feature_flag.result.reason"] != "disabled" || p["abmesh.reason"] != "PAUSED" || p["error.type"] != "" {
		t.Errorf("paused test without a unit: %v", p)
	}

	// A unit over assign.MaxUnitLen is invalid: fallback, invalid_context,
	// and the unit is not copied into the span.
	tel.exp.Reset()
	ctx, span2 := tel.provider("recommendation").Tracer("test").Start(context.Background(), "handle")
	ctx = rec.c.Evaluate(ctx, strings.Repeat("u", assign.MaxUnitLen+1), nil)
	if v := rec.c.Variant(ctx, "rec-model"); v != "v1" {
		t.Errorf("over-long unit: Variant %q, want the control", v)
	}
	span2.End()
	ev = flagEvents(t, tel.exp.GetSpans()[0].Events)
	if e := ev["rec-model"]; e["error.type"] != "invalid_context" || e["abmesh.reason"] != "FALLBACK" || e["feature_flag.context.id"] != "" {
		t.Errorf("over-long unit: %v", e)
	}
}

// watchServer is an AssignmentService whose Watch reports the variant
// its stream's context gets, to exercise the stream interceptors.
type watchServer struct {
	pb.UnimplementedAssignmentServiceServer
	c *client.Client
}

func (w *watchServer) Watch(_ *pb.WatchRequest, st pb.AssignmentService_WatchServer) error {
	v := w.c.Variant(st.Context(), "rec-model")
	return st.Send(&pb.ConfigSnapshot{Experiments: []*pb.Experiment{{Id: v}}})
}

func TestStreamInterceptors(t *testing.T) {
	cfg := shopConfig(t)
	eng, _ := assign.Compile(cfg)
	tel := newTelemetry(t)
	srv := &watchServer{c: static(t, cfg, client.WithService("recommendation"))}
	addr := serve(t, tel.provider("recommendation"), srv.c, func(s *grpc.Server) { pb.RegisterAssignmentServiceServer(s, srv) })

	// The caller evaluated its request with Evaluate (a non-gRPC entry
	// point) and calls without OpenTelemetry: the stream client
	// interceptor sends the unit in UnitHeader.
	front := static(t, cfg, client.WithService("frontend"))
	ctx := front.Evaluate(context.Background(), "user-5", nil)
	st, err := pb.NewAssignmentServiceClient(dial(t, addr, nil, front)).Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := eng.EvaluateTest("rec-model", "user-5", nil)
	if got := snap.GetExperiments()[0].GetId(); got != want.Variant {
		t.Fatalf("stream handler's Variant = %q, want %q", got, want.Variant)
	}
	span := tel.serverSpan(t, "recommendation")
	if ev := flagEvents(t, span.Events); ev["rec-model"]["feature_flag.context.id"] != "user-5" || len(ev) != 3 {
		t.Fatalf("stream span events: %v", ev)
	}
}

// TestVariantLazy: tests outside the service's own are evaluated when
// first asked for, recorded once, and cached in the request.
func TestVariantLazy(t *testing.T) {
	cfg := shopConfig(t)
	tel := newTelemetry(t)
	c := static(t, cfg, client.WithService("recommendation"))
	ctx, span := tel.provider("recommendation").Tracer("test").Start(context.Background(), "handle")
	ctx = c.Evaluate(ctx, "user-1", nil)
	first := c.Variant(ctx, "hero-banner")
	if again := c.Variant(ctx, "hero-banner"); again != first || first == "" {
		t.Fatalf("hero-banner: %q then %q", first, again)
	}
	if v := c.Variant(ctx, "draft-test"); v != "control" {
		t.Fatalf("draft: %q, want control", v)
	}
	if v := c.Variant(ctx, "no-such-test"); v != "" {
		t.Fatalf("unknown test: %q, want \"\"", v)
	}
	span.End()

	as := c.Assignments(ctx)
	ids := make([]string, len(as))
	for i, a := range as {
		ids[i] = a.Test
	}
	if want := []string{"paused-test", "rec-count", "rec-model", "hero-banner", "draft-test", "no-such-test"}; !slices.Equal(ids, want) {
		t.Fatalf("Assignments = %v, want %v", ids, want)
	}
	if u, ok := client.UnitFromContext(ctx); !ok || u != "user-1" {
		t.Fatalf("Evaluate did not put the unit in baggage: %q", u)
	}
	ev := flagEvents(t, tel.exp.GetSpans()[0].Events)
	if len(ev) != 6 {
		t.Fatalf("%d events, want 6: %v", len(ev), ev)
	}
	if d := ev["draft-test"]; d["abmesh.reason"] != "PAUSED" || d["feature_flag.result.reason"] != "disabled" {
		t.Errorf("draft event: %v", d)
	}
	if n := ev["no-such-test"]; n["error.type"] != "flag_not_found" || n["feature_flag.result.variant"] != "" || n["abmesh.reason"] != "FALLBACK" {
		t.Errorf("unknown test event: %v", n)
	}
}

func TestReasonMapping(t *testing.T) {
	cases := []struct {
		reason     assign.Reason
		semconv    string
		randomized bool
	}{
		{assign.ReasonHash, "split", true},
		{assign.ReasonSticky, "cached", true},
		{assign.ReasonOverride, "targeting_match", false},
		{assign.ReasonWinner, "static", false},
		{assign.ReasonPaused, "disabled", false},
		{assign.ReasonNotTargeted, "default", false},
		{assign.ReasonNotInSlice, "default", false},
		{assign.ReasonFallback, "error", false},
		{assign.Reason(99), "unknown", false},
	}
	tel := newTelemetry(t)
	tr := tel.provider("svc").Tracer("test")
	for _, tc := range cases {
		t.Run(tc.reason.String(), func(t *testing.T) {
			tel.exp.Reset()
			if got := client.FeatureFlagReason(tc.reason); got != tc.semconv {
				t.Fatalf("FeatureFlagReason = %q, want %q", got, tc.semconv)
			}
			_, span := tr.Start(context.Background(), "s")
			client.RecordEvaluation(span, "user-1", assign.Assignment{Test: "t", Variant: "v", Reason: tc.reason, Phase: 3})
			span.End()
			ev := flagEvents(t, tel.exp.GetSpans()[0].Events)["t"]
			if ev["feature_flag.result.reason"] != tc.semconv || ev["feature_flag.version"] != "3" {
				t.Fatalf("event %v", ev)
			}
			back, ok := assign.ParseReason(ev["abmesh.reason"])
			if tc.reason <= assign.ReasonFallback && (!ok || back != tc.reason) {
				t.Fatalf("abmesh.reason %q does not give back %v", ev["abmesh.reason"], tc.reason)
			}
			if tc.reason.Randomized() != tc.randomized {
				t.Fatalf("Randomized = %v", tc.reason.Randomized())
			}
			if _, hasErr := ev["error.type"]; hasErr != (tc.reason == assign.ReasonFallback) {
				t.Fatalf("error.type presence: %v", ev)
			}
		})
	}
	// Nil and non-recording spans are ignored.
	client.RecordEvaluation(nil, "u", assign.Assignment{Test: "t"})
	client.RecordEvaluation(trace.SpanFromContext(context.Background()), "u", assign.Assignment{Test: "t"})
}

func TestWithUnitBaggage(t *testing.T) {
	unit := "a b,c;d=é%"
	ctx := client.WithUnit(context.Background(), unit)
	carrier := propagation.MapCarrier{}
	client.Propagator().Inject(ctx, carrier)
	if got, want := carrier.Get("baggage"), "abmesh.unit=a%20b%2Cc%3Bd=%C3%A9%25"; got != want { // W3C baggage-octet allows a raw "="
		t.Fatalf("baggage header %q, want %q", got, want)
	}
	back := client.Propagator().Extract(context.Background(), carrier)
	if got, ok := client.UnitFromContext(back); !ok || got != unit {
		t.Fatalf("extracted unit %q, want %q", got, unit)
	}
	// Replacing, and the no-ops.
	if got, _ := client.UnitFromContext(client.WithUnit(ctx, "other")); got != "other" {
		t.Fatalf("replaced unit = %q", got)
	}
	for _, bad := range []string{"", "\xff"} {
		if got, _ := client.UnitFromContext(client.WithUnit(ctx, bad)); got != unit {
			t.Fatalf("WithUnit(%q) changed the unit to %q", bad, got)
		}
	}
	// A Client with its own baggage key.
	c := static(t, assign.Config{}, client.WithBaggageKey("shop.user"))
	cctx := c.WithUnit(context.Background(), "u-1")
	if _, ok := client.UnitFromContext(cctx); ok {
		t.Fatal("custom key wrote the default key")
	}
	if got, ok := c.UnitFromContext(cctx); !ok || got != "u-1" {
		t.Fatalf("custom key: %q", got)
	}
}

// TestSnapshotEvaluate: Snapshot.Evaluate records the same event as
// Variant for the same unit and test, returns the error.type it recorded,
// and before the first snapshot reports provider_not_ready.
func TestSnapshotEvaluate(t *testing.T) {
	cfg := shopConfig(t)
	tel := newTelemetry(t)
	tr := tel.provider("recommendation").Tracer("test")
	c := static(t, cfg, client.WithService("recommendation"))
	long := strings.Repeat("u", assign.MaxUnitLen+1)
	// events returns the flag events f records on a fresh span.
	events := func(f func(ctx context.Context)) map[string]map[string]string {
		tel.exp.Reset()
		ctx, span := tr.Start(context.Background(), "handle")
		f(ctx)
		span.End()
		return flagEvents(t, tel.exp.GetSpans()[0].Events)
	}
	for _, unit := range []string{"user-1", "user-2", "", long} {
		for _, test := range []string{"rec-model", "hero-banner", "paused-test", "draft-test", "no-such-test"} {
			var a assign.Assignment
			var errType string
			got := events(func(ctx context.Context) { a, errType = c.Snapshot().Evaluate(ctx, test, unit, nil) })
			var v string
			want := events(func(ctx context.Context) { v = c.Variant(client.WithUnit(ctx, unit), test) })
			if !mapsEqual(got[test], want[test]) || len(got) != 1 || a.Variant != v {
				t.Fatalf("unit %.10q test %s: Evaluate %q %v, Variant %q %v", unit, test, a.Variant, got, v, want)
			}
			if errType != got[test]["error.type"] {
				t.Fatalf("unit %.10q test %s: error type %q, recorded %v", unit, test, errType, got[test])
			}
		}
	}
	if _, e := c.Snapshot().Evaluate(context.Background(), "rec-model", "user-1", map[string]string{"": "x"}); e != client.ErrorInvalidContext {
		t.Errorf("invalid attributes: error type %q", e)
	}
	var zero client.Snapshot
	if zero.Engine() != nil || c.Snapshot().Engine() != c.Engine() {
		t.Error("Snapshot.Engine")
	}
	ev := events(func(ctx context.Context) {
		if a, e := zero.Evaluate(ctx, "rec-model", "user-1", nil); e != client.ErrorProviderNotReady || a.Variant != "" || a.Reason != assign.ReasonFallback {
			t.Errorf("zero Snapshot: %+v, %q", a, e)
		}
	})
	if ev["rec-model"]["error.type"] != "provider_not_ready" {
		t.Errorf("zero Snapshot recorded %v", ev)
	}
}
