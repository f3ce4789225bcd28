package otlpload

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Limits that keep a load run bounded whatever the configuration says.
const (
	MaxDuration = 10 * time.Minute
	MaxRate     = 10_000_000
)

// callTimeout bounds one Export call.
const callTimeout = 10 * time.Second

// maxWorkers bounds Config.Concurrency: worker numbers fit the low 20
// bits of a trace id's high half (see Run).
const maxWorkers = 1<<20 - 2

// Config describes a load run. Endpoint and Duration are required; the
// zero value of every other field means its default.
type Config struct {
	// Endpoint is the OTLP/gRPC receiver's host:port (plaintext).
	Endpoint string
	// Endpoints, instead of Endpoint, are several receivers (replicas);
	// Route then picks the one each request goes to.
	Endpoints []string
	// Route returns the index in Endpoints of the receiver for a request
	// whose first trace id is id. It is called for every attempt, so a
	// router that learns that a receiver is down sends the retries of its
	// requests to another (as the OpenTelemetry Collector's load-balancing
	// exporter does once its resolver drops a backend). Every trace of a
	// request goes where the request goes: requests carry whole traces.
	// Required with Endpoints; it must be safe for concurrent use.
	Route func(id [16]byte) int
	// Duration bounds the run; at most MaxDuration.
	Duration time.Duration
	// Rate is the target in spans per second; 0 sends as fast as the
	// receiver takes them. At most MaxRate.
	Rate int
	// MaxSpans stops the run after this many spans were sent (0: no limit
	// but Duration).
	MaxSpans int64
	// TraceSize is the spans per trace, at least 2. Default 10.
	TraceSize int
	// RequestSpans is the spans per Export request, rounded down to whole
	// traces. Default 500 (the OpenTelemetry SDK's batch size is 512).
	RequestSpans int
	// Concurrency is the number of concurrent exporters. Default 4.
	Concurrency int
	// Connections is the number of gRPC connections the exporters share.
	// Default 2.
	Connections int
	// Units is the number of distinct unit ids. Default 10,000.
	Units int
	// Retry, when positive, makes the run behave as an OpenTelemetry
	// exporter with retries: a request that fails is sent again, the same
	// bytes (the same trace and span ids), after the receiver's RetryInfo
	// delay (at most 100ms) or 50ms, until it is acknowledged or Retry has
	// passed since its first attempt. A request being retried when the run
	// ends is still retried; one given up after an error that may have
	// reached the receiver is counted in Result.InDoubt. 0: a failed
	// request is counted and not sent again. At most MaxDuration.
	Retry time.Duration
	// DialOptions replace the default (plaintext) dial options.
	DialOptions []grpc.DialOption
}

func (c *Config) setDefaults() {
	if c.TraceSize == 0 {
		c.TraceSize = 10
	}
	if c.RequestSpans == 0 {
		c.RequestSpans = 500
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.Connections == 0 {
		c.Connections = 2
	}
	if c.Units == 0 {
		c.Units = 10_000
	}
}

// perRequest is the spans of one request: RequestSpans rounded down to
// whole traces.
func (c Config) perRequest() int { return c.RequestSpans / c.TraceSize * c.TraceSize }

// Validate reports the first problems with c, after defaults.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	switch {
	case c.Endpoint == "" && len(c.Endpoints) == 0:
		errs = append(errs, errors.New("Endpoint or Endpoints is required"))
	case c.Endpoint != "" && len(c.Endpoints) > 0:
		errs = append(errs, errors.New("Endpoint and Endpoints are exclusive"))
	case len(c.Endpoints) > 0 && c.Route == nil:
		errs = append(errs, errors.New("Endpoints need a Route"))
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("Duration %v: want > 0 and ≤ %v", c.Duration, MaxDuration))
	}
	if c.Retry < 0 || c.Retry > MaxDuration {
		errs = append(errs, fmt.Errorf("Retry %v: want 0 (no retries) to %v", c.Retry, MaxDuration))
	}
	if c.Rate < 0 || c.Rate > MaxRate {
		errs = append(errs, fmt.Errorf("Rate %d: want 0 (unlimited) to %d spans/s", c.Rate, MaxRate))
	}
	if c.MaxSpans < 0 {
		errs = append(errs, fmt.Errorf("MaxSpans %d: want ≥ 0", c.MaxSpans))
	}
	if c.TraceSize < 2 || c.TraceSize > 1000 {
		errs = append(errs, fmt.Errorf("TraceSize %d: want 2 to 1000", c.TraceSize))
	}
	if c.RequestSpans < c.TraceSize {
		errs = append(errs, fmt.Errorf("RequestSpans %d is below TraceSize %d", c.RequestSpans, c.TraceSize))
	}
	if c.Concurrency < 1 || c.Concurrency > maxWorkers || c.Connections < 1 || c.Units < 1 || c.Units > 1e9 {
		errs = append(errs, fmt.Errorf("Concurrency, Connections and Units must be positive (Concurrency at most %d, Units at most 1e9)", maxWorkers))
	}
	if len(errs) > 0 {
		return fmt.Errorf("otlp load config: %w", errors.Join(errs...))
	}
	return nil
}

// Result is what a load run measured.
type Result struct {
	Requests int64 `json:"requests"`           // Export calls made (retries included)
	Sent     int64 `json:"sent"`               // spans in requests the receiver answered OK
	Traces   int64 `json:"traces"`             // traces in requests the receiver answered OK (each request carries whole traces)
	Rejected int64 `json:"rejected"`           // of those spans, those reported in partial_success
	Refused  int64 `json:"refused"`            // spans in calls refused (RESOURCE_EXHAUSTED, UNAVAILABLE)
	Failed   int64 `json:"failed"`             // Export calls that failed otherwise
	Retries  int64 `json:"retries,omitempty"`  // calls that resent a failed request (Config.Retry)
	InDoubt  int64 `json:"in_doubt,omitempty"` // traces in requests given up after an error other than RESOURCE_EXHAUSTED or INVALID_ARGUMENT: the receiver may have taken them
	// Moved counts, with Endpoints, the traces of requests acknowledged by
	// another receiver than one an earlier attempt failed at in a way that
	// may have reached it: the traces that two receivers may both hold.
	Moved int64 `json:"moved,omitempty"`
	// PerEndpoint is, with Endpoints, the traces each one acknowledged.
	PerEndpoint    []int64       `json:"per_endpoint,omitempty"`
	Elapsed        time.Duration `json:"elapsed"`          // wall time of the run
	SpansPerSecond float64       `json:"spans_per_second"` // (Sent - Rejected) / Elapsed
	FirstError     string        `json:"first_error,omitempty"`
}

// Run sends realistic traces — TraceSize spans over five services
// (frontend → checkout → cart, payment → fraud) with server and client
// spans, feature-flag evaluation events, unit attributes and the usual
// HTTP/RPC attributes — to an OTLP/gRPC receiver at Rate spans per second
// until Duration, MaxSpans or ctx ends, and reports what it measured.
// Every trace has a fresh trace id, unique to the run (its high 64 bits
// are drawn at random for each run and worker). Refused requests are
// counted and, unless Config.Retry says otherwise, not retried; the
// exporter waits for the receiver's RetryInfo delay (at most 100ms)
// before sending again.
//
// The error is non-nil for an invalid Config, or when no request at all
// succeeded (the Result is still filled).
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg.setDefaults()
	conns, err := dial(cfg)
	if err != nil {
		return Result{}, err
	}
	defer closeAll(conns)

	// The workers' requests are built before the clock starts: large ones
	// take seconds.
	gens := make([]*generator, cfg.Concurrency)
	var wg sync.WaitGroup
	runID := rand.Uint64() >> 20 << 20 // the low bits number the workers
	for w := range gens {
		wg.Go(func() { gens[w] = newGenerator(cfg, cfg.perRequest(), runID|uint64(w)) })
	}
	wg.Wait()
	// runCtx ends the run; calls in flight then finish under ctx (bounded
	// by callTimeout) so that what the receiver took is counted.
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	r := newLoadRun(ctx, runCtx, cfg, conns)
	for w, g := range gens {
		wg.Go(func() { r.work(g, w) })
	}
	wg.Wait()
	return r.result()
}

// endpoints returns the receivers: Endpoints, or Endpoint alone.
func (c Config) endpoints() []string {
	if len(c.Endpoints) > 0 {
		return c.Endpoints
	}
	return []string{c.Endpoint}
}

// dial opens cfg.Connections clients to each endpoint with
// cfg.DialOptions (plaintext when there are none). On error the clients
// already opened are closed.
func dial(cfg Config) ([][]*grpc.ClientConn, error) {
	opts := cfg.DialOptions
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	var conns [][]*grpc.ClientConn
	for _, ep := range cfg.endpoints() {
		conns = append(conns, make([]*grpc.ClientConn, 0, cfg.Connections))
		for range cfg.Connections {
			conn, err := grpc.NewClient(ep, opts...)
			if err != nil {
				closeAll(conns)
				return nil, fmt.Errorf("otlp load: connect to %s: %w", ep, err)
			}
			conns[len(conns)-1] = append(conns[len(conns)-1], conn)
		}
	}
	return conns, nil
}

// closeAll closes conns, last opened first.
func closeAll(conns [][]*grpc.ClientConn) {
	for i := len(conns) - 1; i >= 0; i-- {
		for j := len(conns[i]) - 1; j >= 0; j-- {
			conns[i][j].Close()
		}
	}
}

// loadRun is the state the workers of one Run share.
type loadRun struct {
	ctx      context.Context      // the caller's; bounds calls in flight
	runCtx   context.Context      // ends the run
	cfg      Config               // with defaults
	conns    [][]*grpc.ClientConn // per endpoint
	perReq   int                  // spans per request, whole traces
	interval time.Duration        // between request slots; 0 for no pacing
	start    time.Time

	reserved atomic.Int64 // spans handed to workers
	slot     atomic.Int64 // request number, for pacing
	traceSeq atomic.Uint64
	errOnce  sync.Once

	mu  sync.Mutex
	res Result // totals, under mu
}

// newLoadRun returns the shared state of a run of cfg (with defaults) that
// starts now: requests carry whole traces, paced to cfg.Rate when set.
func newLoadRun(ctx, runCtx context.Context, cfg Config, conns [][]*grpc.ClientConn) *loadRun {
	r := &loadRun{ctx: ctx, runCtx: runCtx, cfg: cfg, conns: conns}
	r.perReq = cfg.perRequest()
	r.start = time.Now()
	if cfg.Rate > 0 {
		r.interval = time.Duration(float64(r.perReq) / float64(cfg.Rate) * float64(time.Second))
	}
	return r
}

// work sends worker w's requests, made by g, until the run ends, the
// span budget is spent or the caller gives up, then adds its counts to
// the run's totals.
func (r *loadRun) work(g *generator, w int) {
	local := Result{PerEndpoint: make([]int64, len(r.conns))}
	defer r.add(&local)
	for r.runCtx.Err() == nil {
		if !r.claim() {
			return
		}
		req := rawRequest(g.next(&r.traceSeq))
		if !r.send(req, g.firstTraceID(), w, &local) {
			return
		}
	}
}

// route returns the endpoint of an attempt to send the request whose
// first trace id is id (cfg.Route; 0 without one or out of range).
func (r *loadRun) route(id [16]byte) int {
	if r.cfg.Route == nil {
		return 0
	}
	if e := r.cfg.Route(id); e >= 0 && e < len(r.conns) {
		return e
	}
	return 0
}

// send exports req, whose first trace id is id, on one of worker w's
// connections to the endpoint route picks and, with cfg.Retry, sends it
// again (routed again) after each failure until it is acknowledged or
// cfg.Retry has passed since the first attempt (retries go on after the
// run's end, under the caller's context). It counts what happened in
// local and reports false when the caller gave up.
func (r *loadRun) send(req rawRequest, id [16]byte, w int, local *Result) bool {
	first := time.Now()
	doubt := false    // an attempt failed in a way that may have reached the receiver
	var landed uint64 // endpoints (bits, the first 64) such an attempt was sent to
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			local.Retries++
		}
		e := r.route(id)
		conns := r.conns[e]
		err := r.export(conns[w%len(conns)], req, local)
		if err == nil {
			local.PerEndpoint[e] += r.tracesPerReq()
			if landed&^(1<<(e%64)) != 0 {
				local.Moved += r.tracesPerReq()
			}
			return true
		}
		if r.ctx.Err() != nil { // the caller gave up
			if attempt == 0 {
				local.Requests--
			}
			local.InDoubt += r.tracesPerReq() // the cancelled call may have landed
			return false
		}
		if mayHaveLanded(err) {
			doubt = true
			landed |= 1 << (e % 64)
		}
		wait := r.failed(err, local)
		if r.cfg.Retry <= 0 || time.Since(first)+wait > r.cfg.Retry {
			if doubt {
				local.InDoubt += r.tracesPerReq()
			}
			pause(r.runCtx, wait)
			return true
		}
		if !pause(r.ctx, wait) {
			local.InDoubt += r.tracesPerReq()
			return false
		}
	}
}

// mayHaveLanded reports whether a failed Export may still have been
// taken by the receiver: every error but a refusal (RESOURCE_EXHAUSTED)
// or a rejection (INVALID_ARGUMENT), which the receiver answers without
// keeping the request.
func mayHaveLanded(err error) bool {
	switch status.Code(err) {
	case codes.ResourceExhausted, codes.InvalidArgument:
		return false
	}
	return true
}

// tracesPerReq is the number of traces a request carries.
func (r *loadRun) tracesPerReq() int64 { return int64(r.perReq / r.cfg.TraceSize) }

// pause waits d or until ctx ends, and reports whether ctx is still live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// add adds a worker's counts to the run's totals.
func (r *loadRun) add(local *Result) {
	r.mu.Lock()
	r.res.Requests += local.Requests
	r.res.Sent += local.Sent
	r.res.Traces += local.Traces
	r.res.Retries += local.Retries
	r.res.InDoubt += local.InDoubt
	r.res.Rejected += local.Rejected
	r.res.Refused += local.Refused
	r.res.Failed += local.Failed
	r.res.Moved += local.Moved
	if r.res.PerEndpoint == nil && len(r.cfg.Endpoints) > 0 {
		r.res.PerEndpoint = make([]int64, len(local.PerEndpoint))
	}
	for i, n := range r.res.PerEndpoint {
		r.res.PerEndpoint[i] = n + local.PerEndpoint[i]
	}
	r.mu.Unlock()
}

// claim reserves the spans of one request against cfg.MaxSpans and, when
// the run is paced, waits for the request's slot. It reports false when
// the budget is spent or the run ended while waiting.
func (r *loadRun) claim() bool {
	if r.cfg.MaxSpans > 0 && r.reserved.Add(int64(r.perReq)) > r.cfg.MaxSpans {
		return false
	}
	if r.interval > 0 {
		at := r.start.Add(time.Duration(r.slot.Add(1)-1) * r.interval)
		if d := time.Until(at); d > 0 {
			select {
			case <-r.runCtx.Done():
				return false
			case <-time.After(d):
			}
		}
	}
	return true
}

// export sends req on conn, within callTimeout under the caller's
// context, and counts it in local: the request always, and when it
// succeeded its spans as sent, its traces, and the receiver's partial
// success as rejected. It returns the call's error.
func (r *loadRun) export(conn *grpc.ClientConn, req rawRequest, local *Result) error {
	local.Requests++
	resp := new(collectortrace.ExportTraceServiceResponse)
	callCtx, callCancel := context.WithTimeout(r.ctx, callTimeout)
	err := conn.Invoke(callCtx, collectortrace.TraceService_Export_FullMethodName, req, resp, grpc.ForceCodec(rawCodec{}))
	callCancel()
	if err == nil {
		local.Sent += int64(r.perReq)
		local.Traces += r.tracesPerReq()
		local.Rejected += resp.GetPartialSuccess().GetRejectedSpans()
	}
	return err
}

// failed counts a failed call in local — the request's spans as refused
// (RESOURCE_EXHAUSTED, UNAVAILABLE) or the call as failed (otherwise) —
// keeps the run's first error, and returns how long to wait before the
// next call: the RetryInfo delay of a refusal (at most 100ms), else 10ms,
// or 50ms when the request is to be retried.
func (r *loadRun) failed(err error, local *Result) time.Duration {
	r.errOnce.Do(func() { r.mu.Lock(); r.res.FirstError = err.Error(); r.mu.Unlock() })
	st := status.Convert(err)
	wait := 10 * time.Millisecond
	if r.cfg.Retry > 0 {
		wait = 50 * time.Millisecond
	}
	switch st.Code() {
	case codes.ResourceExhausted, codes.Unavailable:
		local.Refused += int64(r.perReq)
		wait = retryDelay(st, wait)
	default:
		local.Failed++
	}
	return wait
}

// retryDelay is the delay of the last RetryInfo in st's details, at most
// 100ms; dflt when there is none.
func retryDelay(st *status.Status, dflt time.Duration) time.Duration {
	wait := dflt
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			wait = min(ri.GetRetryDelay().AsDuration(), 100*time.Millisecond)
		}
	}
	return wait
}

// result returns the run's totals once every worker is done, with the
// elapsed time since the start and the throughput of accepted spans. The
// error is non-nil when no request succeeded and one failed.
func (r *loadRun) result() (Result, error) {
	res := r.res
	res.Elapsed = time.Since(r.start)
	if res.Elapsed > 0 {
		res.SpansPerSecond = float64(res.Sent-res.Rejected) / res.Elapsed.Seconds()
	}
	if res.Sent == 0 && res.FirstError != "" {
		return res, fmt.Errorf("otlp load: no request succeeded: %s", res.FirstError)
	}
	return res, nil
}

// generator encodes a template request once and, for each request,
// patches fresh trace ids, unit ids and timestamps into a copy of the
// bytes, so that the client spends almost nothing per span and the run
// measures the receiver.
type generator struct {
	cfg      Config
	template []byte
	buf      []byte
	traces   []tracePatch
	worker   uint64
}

// tracePatch holds the byte offsets of one trace's variable fields.
type tracePatch struct {
	ids   []int // trace_id payloads (16 bytes)
	units []int // unit id payloads (unitWidth bytes)
	spans []spanPatch
}

type spanPatch struct {
	start, end int // fixed64 payloads
	offset     time.Duration
	dur        time.Duration
}

// unitWidth is the length of generated unit ids: "user-" and 10 digits.
const unitWidth = 15

var services = [5]string{"frontend", "checkout", "cart", "payment", "fraud"}

func kvStr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func kvInt(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

func kvFloat(k string, v float64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: v}}}
}

// newGenerator returns worker's generator of requests of perReq spans,
// rounded down to whole traces of cfg.TraceSize spans: it builds the
// template request with placeholders, encodes it once and records where
// each placeholder landed.
func newGenerator(cfg Config, perReq int, worker uint64) *generator {
	tb := newTemplate(cfg.TraceSize, worker)
	shapes := traceShapes(cfg.TraceSize)
	for range perReq / cfg.TraceSize {
		tb.addTrace(shapes)
	}
	tpl := tb.encode()
	return &generator{cfg: cfg, worker: worker, template: tpl, buf: make([]byte, len(tpl)), traces: tb.patches(tpl)}
}

// template is a generator's request while it is being built: one
// resource per service, and traces whose variable fields hold random
// placeholder bytes, unique with overwhelming probability, that patches
// finds in the encoded request afterwards.
type template struct {
	size   int // spans per trace
	rng    *rand.Rand
	req    *collectortrace.ExportTraceServiceRequest
	scopes []*tracepb.ScopeSpans // one per service, in services order
	traces []placeholders
	at     map[*tracepb.Span][2]int // span → its trace and its index there
}

// placeholders are one trace's placeholder values.
type placeholders struct {
	id         []byte   // trace id
	unit       string   // unit id, unitWidth bytes
	start, end [][]byte // per span, fixed64 times
}

// newTemplate returns an empty template for traces of size spans, with
// worker's own placeholder stream and a resource, as an instrumented Go
// service reports it, for each of services.
func newTemplate(size int, worker uint64) *template {
	tb := &template{
		size: size, rng: rand.New(rand.NewPCG(worker, 0x5eed)),
		req: &collectortrace.ExportTraceServiceRequest{}, at: map[*tracepb.Span][2]int{},
	}
	for _, s := range services {
		scope := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{
			Name: "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc", Version: "0.72.0"}}
		tb.scopes = append(tb.scopes, scope)
		tb.req.ResourceSpans = append(tb.req.ResourceSpans, &tracepb.ResourceSpans{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
				kvStr("service.name", s), kvStr("service.version", "1.8.3"), kvStr("host.name", s+"-7d9f8c6b5-x2k4q"),
				kvStr("telemetry.sdk.language", "go"), kvStr("telemetry.sdk.name", "opentelemetry"),
			}},
			ScopeSpans: []*tracepb.ScopeSpans{scope},
		})
	}
	return tb
}

// shape is one span's place in a trace.
type shape struct {
	svc    int // index in services
	parent int // index in the trace, -1 for the root
	kind   tracepb.Span_SpanKind
	name   string
}

// traceShapes returns the shape of a trace of size spans: a server span
// per hop with a client span before each downstream call, then internal
// spans, each the child of the one before, to reach size.
func traceShapes(size int) []shape {
	base := []shape{
		{0, -1, tracepb.Span_SPAN_KIND_SERVER, "GET /checkout"},
		{0, 0, tracepb.Span_SPAN_KIND_CLIENT, "abmesh.shop.Checkout/PlaceOrder"},
		{1, 1, tracepb.Span_SPAN_KIND_SERVER, "abmesh.shop.Checkout/PlaceOrder"},
		{1, 2, tracepb.Span_SPAN_KIND_CLIENT, "abmesh.shop.Cart/GetCart"},
		{2, 3, tracepb.Span_SPAN_KIND_SERVER, "abmesh.shop.Cart/GetCart"},
		{1, 2, tracepb.Span_SPAN_KIND_CLIENT, "abmesh.shop.Payment/Charge"},
		{3, 5, tracepb.Span_SPAN_KIND_SERVER, "abmesh.shop.Payment/Charge"},
		{3, 6, tracepb.Span_SPAN_KIND_CLIENT, "abmesh.shop.Fraud/Score"},
		{4, 7, tracepb.Span_SPAN_KIND_SERVER, "abmesh.shop.Fraud/Score"},
		{2, 4, tracepb.Span_SPAN_KIND_INTERNAL, "redis GET"},
	}
	shapes := make([]shape, size)
	for i := range shapes {
		if i < len(base) {
			shapes[i] = base[i]
		} else {
			shapes[i] = shape{i % len(services), i - 1, tracepb.Span_SPAN_KIND_INTERNAL, "work"}
		}
	}
	return shapes
}

// random returns n placeholder bytes.
func (tb *template) random(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(tb.rng.Uint32())
	}
	return b
}

// addTrace draws the next trace's placeholders and adds its spans, one
// per shape, to their services' scopes.
func (tb *template) addTrace(shapes []shape) {
	t := len(tb.traces)
	tb.traces = append(tb.traces, placeholders{id: tb.random(16)})
	h := &tb.traces[t]
	h.unit = fmt.Sprintf("user-%010d", tb.rng.Uint64()%1e10)
	spans := make([]*tracepb.Span, len(shapes))
	for i, sh := range shapes {
		st, en := tb.random(8), tb.random(8)
		h.start, h.end = append(h.start, st), append(h.end, en)
		sp := &tracepb.Span{
			TraceId:           h.id,
			SpanId:            make([]byte, 8),
			Name:              sh.name,
			Kind:              sh.kind,
			StartTimeUnixNano: binary.LittleEndian.Uint64(st),
			EndTimeUnixNano:   binary.LittleEndian.Uint64(en),
			Status:            &tracepb.Status{},
			Attributes: []*commonpb.KeyValue{
				kvStr("rpc.system", "grpc"), kvStr("rpc.service", "abmesh.shop"), kvStr("rpc.method", sh.name),
				kvStr("net.peer.name", services[sh.svc]), kvInt("net.peer.port", 8080), kvInt("rpc.grpc.status_code", 0),
			},
		}
		binary.BigEndian.PutUint64(sp.SpanId, uint64(t*tb.size+i+1))
		if sh.parent >= 0 {
			sp.ParentSpanId = spans[sh.parent].SpanId
		}
		decorate(sp, t, i, h.unit)
		spans[i] = sp
		tb.scopes[sh.svc].Spans = append(tb.scopes[sh.svc].Spans, sp)
		tb.at[sp] = [2]int{t, i}
	}
}

// decorate adds what abmesh reads to span i of trace t, whose unit is
// unit: the unit, an HTTP request and a flag evaluation on the root; an
// order value and a second flag on the checkout server span; a message
// event on the payment server span; an error on every 20th fraud span.
func decorate(sp *tracepb.Span, t, i int, unit string) {
	switch i {
	case 0:
		sp.Attributes = append(sp.Attributes, kvStr("abmesh.unit", unit),
			kvStr("http.method", "GET"), kvStr("http.url", "https://shop.example.com/checkout?cart=8812"),
			kvInt("http.status_code", 200), kvStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"))
		sp.Events = []*tracepb.Span_Event{flagEvent("new-home", []string{"control", "treatment"}[t%2], unit)}
	case 2:
		sp.Attributes = append(sp.Attributes, kvFloat("shop.order.value", 20+float64(t%50)))
		sp.Events = []*tracepb.Span_Event{flagEvent("fast-checkout", []string{"control", "treatment"}[t/2%2], unit)}
	case 6:
		sp.Events = []*tracepb.Span_Event{{Name: "message", Attributes: []*commonpb.KeyValue{
			kvStr("message.type", "SENT"), kvInt("message.id", 1), kvInt("message.uncompressed_size", 312)}}}
	case 8:
		if t%20 == 0 {
			sp.Status.Code = tracepb.Status_STATUS_CODE_ERROR
		}
	}
}

// encode returns the deterministic encoding of the template request.
func (tb *template) encode() []byte {
	tpl, err := proto.MarshalOptions{Deterministic: true}.Marshal(tb.req)
	if err != nil {
		panic(fmt.Sprintf("otlp load: encode template: %v", err)) // cannot happen: plain messages
	}
	return tpl
}

// patches returns, per trace, the offsets in tpl (tb's encoding) of its
// placeholders, with each span's start offset and duration: spans are
// encoded service by service in the order they were added, so each span's
// placeholders are found after the previous span's.
func (tb *template) patches(tpl []byte) []tracePatch {
	out := make([]tracePatch, len(tb.traces))
	for t := range out {
		out[t].spans = make([]spanPatch, tb.size)
	}
	cursor := 0
	find := func(p []byte) int {
		i := bytes.Index(tpl[cursor:], p)
		if i < 0 {
			panic("otlp load: placeholder not found in template")
		}
		cursor += i + len(p)
		return cursor - len(p)
	}
	for _, scope := range tb.scopes {
		for _, sp := range scope.Spans {
			ti := tb.at[sp]
			t, i := ti[0], ti[1]
			h, tp := &tb.traces[t], &out[t]
			tp.ids = append(tp.ids, find(h.id))
			tp.spans[i].start = find(h.start[i])
			tp.spans[i].end = find(h.end[i])
			tp.spans[i].offset = time.Duration(i) * 2 * time.Millisecond
			tp.spans[i].dur = time.Duration(tb.size-i) * 3 * time.Millisecond
		}
	}
	// Units occur in several places of a trace's spans: one pass over the
	// template finds them all (searching the template once per trace is
	// quadratic in the request's size).
	units := make(map[string]int, len(tb.traces))
	for t := range tb.traces {
		units[tb.traces[t].unit] = t
	}
	for i := 0; i+unitWidth <= len(tpl); i++ {
		if t, ok := units[string(tpl[i:i+unitWidth])]; ok {
			out[t].units = append(out[t].units, i)
			i += unitWidth - 1
		}
	}
	return out
}

func flagEvent(test, variant, unit string) *tracepb.Span_Event {
	return &tracepb.Span_Event{Name: "feature_flag.evaluation", Attributes: []*commonpb.KeyValue{
		kvStr("feature_flag.key", test), kvStr("feature_flag.result.variant", variant),
		kvStr("feature_flag.context.id", unit),
		kvStr("feature_flag.provider.name", "abmesh"), kvInt("feature_flag.version", 1), kvStr("feature_flag.result.reason", "SPLIT"),
	}}
}

// next returns the encoded request with fresh trace ids, units and times.
// The bytes are reused: they must not be in use when next is called again.
func (g *generator) next(seq *atomic.Uint64) []byte {
	copy(g.buf, g.template)
	now := time.Now()
	var unit [unitWidth]byte
	for t := range g.traces {
		tp := &g.traces[t]
		id := seq.Add(1)
		for _, off := range tp.ids {
			binary.BigEndian.PutUint64(g.buf[off:], g.worker+1)
			binary.BigEndian.PutUint64(g.buf[off+8:], id)
		}
		copy(unit[:], "user-")
		v := id%uint64(g.cfg.Units) + 1
		for i := unitWidth - 1; i >= 5; i-- {
			unit[i] = '0' + byte(v%10)
			v /= 10
		}
		for _, off := range tp.units {
			copy(g.buf[off:], unit[:])
		}
		for _, sp := range tp.spans {
			st := now.Add(sp.offset)
			binary.LittleEndian.PutUint64(g.buf[sp.start:], uint64(st.UnixNano()))
			binary.LittleEndian.PutUint64(g.buf[sp.end:], uint64(st.Add(sp.dur).UnixNano()))
		}
	}
	return g.buf
}

// firstTraceID returns the trace id of the first trace of the request
// next returned last.
func (g *generator) firstTraceID() [16]byte {
	var id [16]byte
	copy(id[:], g.buf[g.traces[0].ids[0]:])
	return id
}

// rawRequest is an encoded ExportTraceServiceRequest sent as is.
type rawRequest []byte

// rawCodec sends rawRequest bytes unchanged and decodes responses as
// protobuf. It is forced on the load generator's calls only.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if r, ok := v.(rawRequest); ok {
		return r, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("otlp load codec: cannot encode %T", v)
	}
	return proto.Marshal(m)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("otlp load codec: cannot decode into %T", v)
	}
	return proto.Unmarshal(data, m)
}

func (rawCodec) Name() string { return "proto" }
