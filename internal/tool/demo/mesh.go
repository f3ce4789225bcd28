package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	of "github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
	"github.com/abmesh/abmesh/internal/otlproute"
	"github.com/abmesh/abmesh/internal/tool/shop"
	"github.com/abmesh/abmesh/internal/tool/truth"
	demov1 "github.com/abmesh/abmesh/proto/abmesh/demo/v1"
)

// Topology is the shop's call graph (shop.Calls): each service and the
// services it calls. frontend calls checkout only for requests whose
// action is "checkout".
var Topology = shop.Calls()

// entryService is the service the users' requests enter the mesh by.
const entryService = "frontend"

// checkWays checks cfg.Ways: services of Topology, known ways, and the
// edge only at the entry service, with an endpoint to call.
func checkWays(cfg MeshConfig) error {
	for svc, w := range cfg.Ways {
		_, known := Topology[svc]
		switch {
		case !known:
			return fmt.Errorf("ways: no service %s in the mesh", svc)
		case w < 0 || w >= numWays:
			return fmt.Errorf("ways: %s: unknown way %d", svc, int(w))
		case w == WayEdge && (svc != entryService || cfg.Edge == ""):
			return fmt.Errorf("ways: %s: the edge serves only %s, and needs the forward-auth endpoint", svc, entryService)
		}
	}
	return nil
}

// gradeKey is the baggage member carrying the user's grade, which
// targeting rules read.
const gradeKey = "shop.grade"

// unitAttributes returns the attributes of the user of ctx that
// targeting reads: its grade, from baggage.
func unitAttributes(ctx context.Context) map[string]string {
	if g := baggage.FromContext(ctx).Member(gradeKey).Value(); g != "" {
		return map[string]string{"grade": g}
	}
	return nil
}

// countingExporter counts the spans its exporter acknowledged, and the
// feature-flag evaluation events on them by test.
type countingExporter struct {
	sdktrace.SpanExporter
	acked, failed *atomic.Int64
	events        *flagEvents
}

// ExportSpans exports and counts the outcome.
func (e countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		e.failed.Add(int64(len(spans)))
		return err
	}
	e.acked.Add(int64(len(spans)))
	e.events.count(spans)
	return nil
}

// flagEvents counts the client.EventName events of exported spans by
// their feature_flag.key: what the trace consumer received, whichever way
// the variant was served.
type flagEvents struct {
	mu     sync.Mutex
	byTest map[string]int64
}

func (f *flagEvents) count(spans []sdktrace.ReadOnlySpan) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, sp := range spans {
		for _, ev := range sp.Events() {
			if ev.Name != client.EventName {
				continue
			}
			for _, kv := range ev.Attributes {
				if kv.Key == semconv.FeatureFlagKeyKey {
					f.byTest[kv.Value.AsString()]++
				}
			}
		}
	}
}

// node is one service of the mesh: a real gRPC server on loopback,
// instrumented with otelgrpc and the abmesh SDK, exporting its spans over
// OTLP.
type node struct {
	name     string
	calls    []string
	outcomes []outcome // the metrics measured on this service
	needs    []string  // the tests their terms name
	sdk      *client.Client
	tp       *sdktrace.TracerProvider
	srv      *grpc.Server
	lis      net.Listener
	conns    map[string]demov1.ShopServiceClient
	closers  []func() error
	seed     uint64
	icc      float64 // within-unit correlation of the outcomes
	useSDK   bool
	way      Way
	flags    *of.Client             // the OpenFeature client (WayOpenFeature)
	evals    *[numWays]atomic.Int64 // the mesh's evaluation counters
}

// Mesh is the running shop.
type Mesh struct {
	nodes     map[string]*node
	entry     demov1.ShopServiceClient
	entryConn *grpc.ClientConn
	edge      *edgeCaller // nil without MeshConfig.Edge
	// Evaluations counts the evaluations of the services' tests by the
	// way they were served (indexed by Way).
	Evaluations [numWays]atomic.Int64
	// SpansAcked counts spans the services' exporters got acknowledged by
	// the receiver; SpansFailed those they gave up on.
	SpansAcked, SpansFailed atomic.Int64
	events                  flagEvents
}

// MeshConfig says where the mesh's services find abmeshd.
type MeshConfig struct {
	// Abmeshd is abmeshd's gRPC address (the SDK's Watch).
	Abmeshd string
	// OTLP is where the services export spans (abmeshd's receiver, or a
	// Jaeger collector's OTLP port).
	OTLP string
	// OTLPReplicas, when set, replaces OTLP: abmeshd replicas' receivers,
	// among which each trace's spans go to the one otlproute.Pick chooses
	// by its trace id, counted in Routes (which may be nil).
	OTLPReplicas []string
	Routes       *otlproute.Tally
	// Mirror, when set, is an OTLP receiver that gets every span as well
	// (not counted in SpansAcked): a reference abmeshd in tests.
	Mirror string
	// Truth is the outcome model: every metric of a service of Topology,
	// latency_ms (slept) or an attribute (set on the service's span).
	Truth []truth.Model
	// Seed seeds the outcome noise.
	Seed uint64
	// WithinUnitCorr is ρ in [0, 1): a unit's requests share a draw of
	// the unit, so their outcomes correlate (truth.Repeat's model).
	WithinUnitCorr float64
	// Logger receives the SDKs' logs.
	Logger *slog.Logger
	// NoSDK leaves the abmesh SDK out (tracing stays on): for measuring
	// the SDK's share of a request's latency. Ways is then ignored.
	NoSDK bool
	// Ways says how each service gets its tests' variants (Way); a service
	// not named uses the SDK. A WayEdge service must be the frontend (the
	// service Request calls) and needs Edge.
	Ways map[string]Way
	// Edge is abmeshd's forward-auth endpoint (--edge-listen), which
	// Request calls before each request as a proxy in front of the
	// frontend would, passing the headers it answers on; it must read the
	// unit from the trusted header edgeUnitHeader (--edge-unit-header).
	// Empty: no edge.
	Edge string
	// Conns is the connections kept open to Edge (default 32).
	Conns int
	// ClientToken, when set, is the bearer token of abmeshd's client role:
	// the SDKs send it with Watch and the edge caller to forward-auth.
	ClientToken string
	// IngestToken, when set, is the bearer token of abmeshd's ingest role,
	// which the services' OTLP exporters send.
	IngestToken string
}

// StartMesh starts every service of Topology on loopback and waits until
// each one's SDK has its first configuration snapshot.
func StartMesh(ctx context.Context, cfg MeshConfig) (*Mesh, error) {
	outcomes, err := outcomesByService(cfg.Truth)
	if err != nil {
		return nil, err
	}
	if err := checkWays(cfg); err != nil {
		return nil, err
	}
	m := &Mesh{nodes: map[string]*node{}, events: flagEvents{byTest: map[string]int64{}}}
	ok := false
	defer func() {
		if !ok {
			m.Stop(context.Background())
		}
	}()
	// Listeners first, so every service knows its callees' addresses.
	for name, calls := range Topology {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		m.nodes[name] = &node{name: name, calls: calls, lis: lis, outcomes: outcomes[name], needs: termTests(outcomes[name]),
			conns: map[string]demov1.ShopServiceClient{}, icc: cfg.WithinUnitCorr, way: cfg.Ways[name], evals: &m.Evaluations}
		if cfg.NoSDK {
			m.nodes[name].way = WaySDK
		}
	}
	for _, n := range m.nodes {
		if err := m.startNode(ctx, n, cfg, cfg.Seed); err != nil {
			return nil, fmt.Errorf("start %s: %w", n.name, err)
		}
	}
	for _, n := range m.nodes {
		if cfg.NoSDK {
			break
		}
		if err := n.sdk.WaitReady(ctx); err != nil {
			return nil, fmt.Errorf("%s: no configuration from abmeshd at %s: %w", n.name, cfg.Abmeshd, err)
		}
	}
	// The traffic driver calls the frontend like a browser would: no
	// spans of its own, but baggage (unit, grade) injected.
	conn, err := grpc.NewClient(m.nodes[entryService].lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(noop.NewTracerProvider()),
			otelgrpc.WithPropagators(client.Propagator()))))
	if err != nil {
		return nil, err
	}
	m.entryConn, m.entry = conn, demov1.NewShopServiceClient(conn)
	if cfg.Edge != "" {
		m.edge = newEdgeCaller(cfg.Edge, entryService, cmp.Or(cfg.Conns, 32), cfg.ClientToken)
	}
	ok = true
	return m, nil
}

func (m *Mesh) startNode(ctx context.Context, n *node, cfg MeshConfig, seed uint64) error {
	newExp := func(addr string) (sdktrace.SpanExporter, error) {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure()}
		if cfg.IngestToken != "" {
			// As any OTLP exporter sends a token: an authorization header.
			opts = append(opts, otlptracegrpc.WithHeaders(map[string]string{"authorization": "Bearer " + cfg.IngestToken}))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	counted := func(addr string) (sdktrace.SpanExporter, error) {
		exp, err := newExp(addr)
		return countingExporter{exp, &m.SpansAcked, &m.SpansFailed, &m.events}, err
	}
	var exp sdktrace.SpanExporter
	var err error
	if len(cfg.OTLPReplicas) == 0 {
		if exp, err = counted(cfg.OTLP); err != nil {
			return err
		}
	} else {
		exps := make([]sdktrace.SpanExporter, len(cfg.OTLPReplicas))
		for i, addr := range cfg.OTLPReplicas {
			if exps[i], err = counted(addr); err != nil {
				return err
			}
		}
		exp = otlproute.NewRouter(cfg.Routes, exps...)
	}
	batch := []sdktrace.BatchSpanProcessorOption{sdktrace.WithBatchTimeout(200 * time.Millisecond),
		sdktrace.WithMaxQueueSize(65536), sdktrace.WithMaxExportBatchSize(2048)}
	tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp, batch...),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(n.name)))}
	if cfg.Mirror != "" {
		mirror, err := newExp(cfg.Mirror)
		if err != nil {
			return err
		}
		tpOpts = append(tpOpts, sdktrace.WithBatcher(mirror, batch...))
	}
	n.tp = sdktrace.NewTracerProvider(tpOpts...)
	opts := []client.Option{client.WithLogger(cfg.Logger), client.WithAttributes(unitAttributes)}
	if cfg.ClientToken != "" {
		opts = append(opts, client.WithToken(cfg.ClientToken))
	}
	if n.way == WayOpenFeature {
		err = n.startOpenFeature(ctx, cfg.Abmeshd, opts...)
	} else {
		n.sdk, err = client.New(cfg.Abmeshd, append(opts, client.WithService(n.name))...)
		if err == nil {
			n.closers = append(n.closers, n.sdk.Close)
		}
	}
	if err != nil {
		return err
	}
	var clientIcs []grpc.UnaryClientInterceptor
	var serverIcs []grpc.UnaryServerInterceptor
	if !cfg.NoSDK {
		clientIcs = append(clientIcs, n.sdk.UnaryClientInterceptor())
	}
	if !cfg.NoSDK && n.way == WaySDK { // the other ways serve the service's tests themselves
		serverIcs = append(serverIcs, n.sdk.UnaryServerInterceptor())
	}
	n.useSDK = !cfg.NoSDK
	n.seed = seed ^ xxhash.Sum64String(n.name)
	for _, callee := range n.calls {
		conn, err := grpc.NewClient(m.nodes[callee].lis.Addr().String(),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(n.tp), otelgrpc.WithPropagators(client.Propagator()))),
			grpc.WithChainUnaryInterceptor(clientIcs...))
		if err != nil {
			return err
		}
		n.closers = append(n.closers, conn.Close)
		n.conns[callee] = demov1.NewShopServiceClient(conn)
	}
	n.srv = grpc.NewServer(
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(n.tp), otelgrpc.WithPropagators(client.Propagator()))),
		grpc.ChainUnaryInterceptor(serverIcs...))
	demov1.RegisterShopServiceServer(n.srv, &handler{n: n})
	go n.srv.Serve(n.lis)
	return nil
}

// outcome is one truth model measured on a service, with its metric
// parsed.
type outcome struct {
	*truth.Model
	metric assign.Metric
}

// outcomesByService groups the truth by measure service. Every model must
// be of a service of Topology and of a metric the mesh can produce: a
// service's latency (it sleeps the drawn value, in milliseconds) or a
// numeric attribute on its span.
func outcomesByService(truths []truth.Model) (map[string][]outcome, error) {
	out := map[string][]outcome{}
	for i := range truths {
		m := &truths[i]
		if _, ok := Topology[m.Service]; !ok {
			return nil, fmt.Errorf("truth %s: no service %s in the mesh", m.Key(), m.Service)
		}
		metric, err := assign.ParseMetric(m.Metric)
		if err != nil {
			return nil, fmt.Errorf("truth %s: %w", m.Key(), err)
		}
		if metric.Kind != assign.MetricLatencyMS && metric.Kind != assign.MetricAttribute {
			return nil, fmt.Errorf("truth %s: the mesh produces only latency_ms and attribute:<name> metrics", m.Key())
		}
		out[m.Service] = append(out[m.Service], outcome{Model: m, metric: metric})
	}
	return out, nil
}

// handler serves one service's hop of a request.
type handler struct {
	demov1.UnimplementedShopServiceServer
	n *node
}

// Handle serves the hop: evaluate, simulate work, call the callees,
// record the outcome on the span.
func (h *handler) Handle(ctx context.Context, req *demov1.HandleRequest) (*demov1.HandleResponse, error) {
	n := h.n
	// variants are the ones served on this hop and below it, which the
	// caller learns from the response.
	variants := map[string]string{}
	unit, _ := n.sdk.UnitFromContext(ctx)
	for _, a := range n.evaluate(ctx, unit) {
		variants[a.Test] = a.Variant
	}
	z := n.draws(unit, req.GetVisit())
	for i, o := range n.outcomes {
		if o.metric.Kind == assign.MetricLatencyMS {
			ms := o.Value(o.Mean(n.served(ctx, unit, variants)), z[i])
			time.Sleep(time.Duration(max(ms, 0.1) * float64(time.Millisecond)))
		}
	}
	for _, callee := range n.calls {
		if callee == "checkout" && req.GetAction() != "checkout" {
			continue
		}
		resp, err := n.conns[callee].Handle(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("%s → %s: %w", n.name, callee, err)
		}
		for k, v := range resp.GetVariants() {
			variants[k] = v
		}
	}
	for i, o := range n.outcomes {
		if o.metric.Kind == assign.MetricAttribute {
			v := o.Value(o.Mean(n.served(ctx, unit, variants)), z[i])
			trace.SpanFromContext(ctx).SetAttributes(attribute.Float64(o.metric.Attribute, v))
		}
	}
	return &demov1.HandleResponse{Service: n.name, Variants: variants}, nil
}

// evaluate returns the variants of the service's tests for the request in
// ctx, served by the service's way; each was recorded on ctx's span and
// counted in n.evals.
func (n *node) evaluate(ctx context.Context, unit string) []assign.Assignment {
	switch {
	case !n.useSDK:
		return nil
	case n.way == WayEdge:
		return n.fromEdge(ctx, unit)
	case n.way == WayOpenFeature:
		return n.viaOpenFeature(ctx, unit)
	}
	as := n.sdk.Assignments(ctx) // the server interceptor's
	n.evals[WaySDK].Add(int64(len(as)))
	return as
}

// draws returns the standard normal draw behind each of the service's
// outcomes for one request, as truth.Repeat models repeat traffic:
// z = √ρ·z_unit + √(1 − ρ)·z_request. The unit's draws depend only on the
// seed and the unit, the request's on the visit too, so the same seed
// gives the same users the same outcomes however requests interleave.
func (n *node) draws(unit string, visit uint32) []float64 {
	h := xxhash.Sum64String(unit)
	ru := rand.New(rand.NewPCG(n.seed, h))
	rr := rand.New(rand.NewPCG(n.seed+1+uint64(visit), h))
	a, b := math.Sqrt(n.icc), math.Sqrt(1-n.icc)
	z := make([]float64, len(n.outcomes))
	for i := range z {
		z[i] = a*ru.NormFloat64() + b*rr.NormFloat64()
	}
	return z
}

// served returns what the user of ctx is served across the whole shop,
// as far as this service's outcomes depend on it: the variants served on
// this request's path (path), and for every test its outcomes' terms name
// that the path does not show (one of a service this request does not
// reach, or that serves after this one) the variant the SDK's
// configuration assigns the unit. Without the SDK nothing is evaluated
// and path (empty) is returned.
func (n *node) served(ctx context.Context, unit string, path map[string]string) map[string]string {
	if !n.useSDK {
		return path
	}
	var missing []string
	for _, test := range n.needs {
		if _, ok := path[test]; !ok {
			missing = append(missing, test)
		}
	}
	if len(missing) == 0 {
		return path
	}
	as, err := n.sdk.Engine().Evaluate(unit, unitAttributes(ctx), assign.Filter{Tests: missing})
	if err != nil {
		return path
	}
	out := maps.Clone(path)
	for _, a := range as {
		out[a.Test] = a.Variant
	}
	return out
}

// termTests returns the tests the terms of outcomes name, each once.
func termTests(outcomes []outcome) []string {
	var tests []string
	for _, o := range outcomes {
		for _, term := range o.Terms {
			for _, t := range term.Tests {
				if !slices.Contains(tests, t) {
					tests = append(tests, t)
				}
			}
		}
	}
	return tests
}

// Request sends the user's request number visit (from 0) to the frontend,
// through the edge when the mesh has one.
func (m *Mesh) Request(ctx context.Context, unit, grade, action string, visit uint32) error {
	ctx = client.WithUnit(ctx, unit)
	if grade != "" {
		mem, err := baggage.NewMemberRaw(gradeKey, grade)
		if err != nil {
			return err
		}
		b, err := baggage.FromContext(ctx).SetMember(mem)
		if err != nil {
			return err
		}
		ctx = baggage.ContextWithBaggage(ctx, b)
	}
	if m.edge != nil {
		kv, err := m.edge.headers(ctx, unit)
		if err != nil {
			return err
		}
		ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	}
	_, err := m.entry.Handle(ctx, &demov1.HandleRequest{Action: action, Visit: visit})
	return err
}

// FlagEvents returns the feature-flag evaluation events on the spans
// acknowledged so far, by test.
func (m *Mesh) FlagEvents() map[string]int64 {
	m.events.mu.Lock()
	defer m.events.mu.Unlock()
	return maps.Clone(m.events.byTest)
}

// Flush exports every span the services have ended.
func (m *Mesh) Flush(ctx context.Context) error {
	var errs []error
	for _, n := range m.nodes {
		errs = append(errs, n.tp.ForceFlush(ctx))
	}
	return errors.Join(errs...)
}

// Stop stops every service, exporting their last spans.
func (m *Mesh) Stop(ctx context.Context) {
	if m.entryConn != nil {
		m.entryConn.Close()
	}
	if m.edge != nil {
		m.edge.close()
	}
	for _, n := range m.nodes {
		if n.srv != nil {
			n.srv.Stop()
		}
	}
	for _, n := range m.nodes {
		if n.tp != nil {
			_ = n.tp.Shutdown(ctx)
		}
		for _, c := range n.closers {
			_ = c()
		}
		if n.srv == nil && n.lis != nil {
			n.lis.Close()
		}
	}
}
