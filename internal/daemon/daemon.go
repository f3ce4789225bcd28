// Package daemon wires abmeshd together: the embedded store, the
// experiment registry, the gRPC API (assignment, experiments, reports, and
// OpenFeature's flagd evaluation API),
// the OTLP trace receiver, the optional Jaeger reader, the trace assembler,
// the service graph, the subsetter with its cells, and the report web
// pages. cmd/abmeshd and the demo both start it.
//
// Data flow:
//
//	OTLP Export / Jaeger FindTraces → tracing.Assembler → Observation
//	  → tracing.Graph (caller → callee counts)
//	  → subset.CellCounter (each viewpoint's factorial cell, in subset.Windows)
//	registry changes → subset.Subsetter.SetTests; every GraphRefresh the
//	  graph's edges → Subsetter.ObserveEdges; the Subsetter's views → Windows
//	  (with PostgreSQL: on the leader only, from every replica's graph; the
//	  other replicas adopt the leader's window plan, plan.go)
//	reports: report.Reader (Windows + registry) → gRPC (server) and pages (web)
//	every FlushInterval: windows and graph → bolt store
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/adapter/postgres"
	"github.com/abmesh/abmesh/internal/auth"
	"github.com/abmesh/abmesh/internal/edge/flagd"
	"github.com/abmesh/abmesh/internal/edge/forwardauth"
	"github.com/abmesh/abmesh/internal/edge/grpcapi"
	"github.com/abmesh/abmesh/internal/edge/portshare"
	"github.com/abmesh/abmesh/internal/edge/web"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/internal/wal"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
	evalv2 "github.com/abmesh/abmesh/proto/flagd/evaluation/v2"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/jaeger"
	"github.com/abmesh/abmesh/tracing/otlpreceiver"
)

// Config is abmeshd's configuration. The zero value of each field means
// its default: the field's value in DefaultConfig.
type Config struct {
	// Listen is the gRPC API address (port 0 picks a free port).
	Listen string
	// OTLPListen is the OTLP/gRPC trace receiver's address; "off" disables
	// it.
	OTLPListen string
	// MemoryLimit is the memory abmeshd's trace consumer is sized for, in
	// bytes: the OTLP requests in flight, the traces in flight and the
	// completed trace ids remembered are bounded from it (BudgetFor), and
	// cmd/abmeshd makes it the Go runtime's soft memory limit. Bounds set
	// in OTLP and Assembly override their share.
	MemoryLimit int64
	// OTLP bounds the receiver's requests in flight (their bytes, their
	// size, the streams of a connection); zero fields take
	// otlpreceiver.DefaultLimits, MaxInflightBytes MemoryLimit's budget.
	OTLP otlpreceiver.Limits
	// HTTPListen is the report web pages' address; "off" disables them.
	HTTPListen string
	// EdgeListen is the forward-auth HTTP endpoint's address, for proxies
	// (nginx auth_request, Traefik ForwardAuth, Envoy/Istio HTTP
	// ext_authz); "off" disables it. Envoy's gRPC ext_authz is served on
	// Listen either way.
	EdgeListen string
	// Edge says where forward-auth reads a request's unit and service.
	Edge forwardauth.Config
	// DataDir holds the store file; empty means a fresh temporary
	// directory removed on Stop.
	DataDir string
	// Store, when a postgres:// URL, is a PostgreSQL database to keep the
	// state in instead of DataDir's bbolt file; replicas with the same
	// Store share experiments, layers, overrides, sticky assignments and
	// the audit log, and each sees the others' changes (docs/scaling.md).
	// Empty means bbolt.
	Store string
	// JaegerQuery, when set, is a Jaeger query service (HOST:PORT of its
	// gRPC API, usually port 16685) to read traces and dependencies from.
	JaegerQuery string
	// JaegerPoll is the Jaeger reader's poll interval.
	JaegerPoll time.Duration
	// Assembly sets the trace assembler's timeouts and memory bounds;
	// MaxBytes, MaxSpans, MaxTraces and RecentTraces default to
	// MemoryLimit's budget, the other zero fields to
	// tracing.DefaultConfig's.
	Assembly tracing.Config
	// GraphWindow is the service graph's sliding window.
	GraphWindow time.Duration
	// GraphRefresh is how often the subsetter takes a new service graph.
	GraphRefresh time.Duration
	// FlushInterval is how often cells and the graph are written to the
	// store. With the write-ahead log on, a crash loses nothing
	// acknowledged (the log is replayed on start); without it, a crash
	// loses the spans in flight and what was counted since the last flush.
	FlushInterval time.Duration
	// WAL configures the write-ahead log of accepted OTLP requests.
	WAL WALConfig
	// SubsetCap is the largest subset, viewpoint included.
	SubsetCap int
	// MinEdgeCalls is how many calls a caller → callee edge must carry in
	// the graph window before subsets use it; once in, it stays until it
	// leaves the window. Rare call paths then cannot keep reopening
	// analysis windows.
	MinEdgeCalls int
	// Security turns on authentication and TLS; without them only loopback
	// addresses are served unless Security.Insecure.
	Security SecurityConfig
	// Logger receives the daemon's logs.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration the zero Config stands for. It
// is the one place abmeshd's defaults are written: Start fills a Config's
// zero fields from it, and cmd/abmeshd's flags show it as their defaults.
func DefaultConfig() Config {
	c := Config{
		Listen:        "127.0.0.1:7070",
		OTLPListen:    "127.0.0.1:4317",
		OTLP:          otlpreceiver.DefaultLimits(),
		HTTPListen:    "127.0.0.1:7080",
		EdgeListen:    "off",
		Edge:          forwardauth.DefaultConfig(),
		JaegerPoll:    30 * time.Second,
		GraphWindow:   time.Hour,
		GraphRefresh:  10 * time.Second,
		FlushInterval: 5 * time.Second,
		WAL:           WALConfig{MaxBytes: DefaultWALMaxBytes},
		SubsetCap:     subset.DefaultCap,
		MinEdgeCalls:  subset.DefaultMinEdgeCalls,
		Logger:        slog.Default(),
	}
	c.OTLP.MaxInflightBytes = 0 // from the memory limit
	c.applyMemoryLimit()
	return c
}

func checkAddr(flag, addr string) error {
	if addr == "" || addr == "off" {
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s %q: want HOST:PORT: %w", flag, addr, err)
	}
	return nil
}

// Validate checks the configuration; errors name the flag.
func (c *Config) Validate() error {
	var errs []error
	listens := [][2]string{{"--listen", c.Listen}, {"--otlp-listen", c.OTLPListen}, {"--http-listen", c.HTTPListen}, {"--edge-listen", c.EdgeListen}}
	for _, a := range append(listens, [2]string{"--jaeger-query", c.JaegerQuery}) {
		errs = append(errs, checkAddr(a[0], a[1]))
	}
	errs = append(errs, c.Security.validate(listens))
	if c.Listen == "off" {
		errs = append(errs, errors.New("--listen cannot be off"))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--graph-window", c.GraphWindow}, {"--graph-refresh", c.GraphRefresh}, {"--flush-interval", c.FlushInterval}, {"--jaeger-poll", c.JaegerPoll}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %v is negative", d.flag, d.v))
		}
	}
	if c.Store != "" && !isPostgres(c.Store) {
		errs = append(errs, fmt.Errorf("--store %q: want a postgres:// URL (or nothing for the bbolt file in --data-dir)", c.Store))
	}
	if c.MinEdgeCalls < 0 {
		errs = append(errs, fmt.Errorf("--min-edge-calls %d is negative", c.MinEdgeCalls))
	}
	if c.SubsetCap < 0 {
		errs = append(errs, fmt.Errorf("--subset-cap %d is negative", c.SubsetCap))
	}
	if c.MemoryLimit > 0 && c.MemoryLimit < MinMemoryLimit {
		errs = append(errs, fmt.Errorf("--memory-limit %d is below %d (64 MiB)", c.MemoryLimit, MinMemoryLimit))
	}
	errs = append(errs, c.WAL.validate(c.OTLP.MaxMessageBytes))
	errs = append(errs, c.Edge.Validate())
	budgeted := *c
	if c.MemoryLimit < 0 {
		errs = append(errs, fmt.Errorf("--memory-limit %d is negative", c.MemoryLimit))
	} else {
		budgeted.applyMemoryLimit()
	}
	if err := budgeted.OTLP.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--otlp-max-message-bytes, --otlp-max-inflight-bytes: %w", err))
	}
	if err := budgeted.Assembly.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("trace assembly: %w", err))
	}
	return errors.Join(errs...)
}

// defaults fills c's zero fields from DefaultConfig.
func (c *Config) defaults() {
	d := DefaultConfig()
	orDefault(&c.Listen, d.Listen)
	orDefault(&c.OTLPListen, d.OTLPListen)
	orDefault(&c.OTLP.MaxMessageBytes, d.OTLP.MaxMessageBytes)
	c.applyMemoryLimit() // OTLP.MaxInflightBytes and Assembly's bounds
	orDefault(&c.OTLP.MaxStreams, d.OTLP.MaxStreams)
	orDefault(&c.HTTPListen, d.HTTPListen)
	orDefault(&c.EdgeListen, d.EdgeListen)
	orDefault(&c.Edge.UnitCookie, d.Edge.UnitCookie)
	orDefault(&c.Edge.ServiceHeader, d.Edge.ServiceHeader)
	orDefault(&c.JaegerPoll, d.JaegerPoll)
	orDefault(&c.GraphWindow, d.GraphWindow)
	orDefault(&c.GraphRefresh, d.GraphRefresh)
	orDefault(&c.FlushInterval, d.FlushInterval)
	orDefault(&c.WAL.MaxBytes, d.WAL.MaxBytes)
	orDefault(&c.SubsetCap, d.SubsetCap)
	orDefault(&c.MinEdgeCalls, d.MinEdgeCalls)
	orDefault(&c.Logger, d.Logger)
}

// orDefault sets *v to def when *v is its type's zero value.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Daemon is a running abmeshd.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	db      store
	win     windowStore
	pg      *postgres.DB // the store when it is PostgreSQL, else nil
	replica string       // this replica's id in a PostgreSQL store
	leader  atomic.Bool  // holds the leader lock (always, with bbolt)
	// With a PostgreSQL store (plan.go): planMu serializes adopting a plan
	// and taking over or giving up the windows; opens is set while this
	// replica's Subsetter opens the windows (it leads); planGen is the
	// generation of the last plan adopted or published (written under
	// planMu or by the leader).
	planMu    sync.Mutex
	opens     atomic.Bool
	planGen   atomic.Int64
	tmpDir    string
	registry  *assign.Registry
	graph     *tracing.Graph
	subsetter *subset.Subsetter
	windows   *subset.Windows
	reports   *report.Reader
	assembler *tracing.Assembler
	receiver  *otlpreceiver.Receiver
	wal       *wal.Log // nil when off
	// claimed and heldElsewhere are the traces of the log's tail this
	// replica claimed on start and those other replicas held;
	// claimsAnswered the other replicas' claims it answered.
	claimed, heldElsewhere, claimsAnswered atomic.Int64
	jaeger                                 *jaeger.Reader
	jaegerCC                               *grpc.ClientConn
	// jaegerCancel ends the Jaeger reader; jaegerStop is closed once it
	// has returned.
	jaegerCancel context.CancelFunc
	jaegerStop   chan struct{}
	metrics      *metrics // served at /metrics on the HTTP listener
	sec          security

	grpc     *grpc.Server
	otlp     *grpc.Server
	http     *http.Server
	connect  *http.Server // the flagd API's Connect protocol, on the gRPC port
	health   *health.Server
	lis      net.Listener
	otlpLis  net.Listener
	httpLis  net.Listener
	edge     *http.Server // forward-auth endpoint, nil when off
	edgeLis  net.Listener
	cancel   context.CancelFunc
	life     context.Context
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// Start opens the store, loads the registry and cells and starts serving.
// It returns once every listener is bound; Stop ends it.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	d := &Daemon{cfg: cfg, log: cfg.Logger}
	d.life, d.cancel = context.WithCancel(context.Background())
	d.metrics = newMetrics(d)
	ok := false
	defer func() {
		if !ok {
			d.Stop()
		}
	}()

	dir := cfg.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "abmeshd-")
		if err != nil {
			return nil, err
		}
		d.tmpDir, dir = tmp, tmp
	}
	if err := d.openStore(ctx, dir); err != nil {
		return nil, err
	}
	if err := d.startSecurity(); err != nil {
		return nil, err
	}
	var err error
	if d.registry, err = assign.NewRegistry(ctx, d.db, assign.WithSticky(d.db)); err != nil {
		return nil, err
	}
	d.watchStore()
	if err := d.startConsumer(ctx); err != nil {
		return nil, err
	}
	d.followLeader()
	d.lead()
	if cfg.DataDir != "" && !cfg.WAL.Off && cfg.OTLPListen != "off" {
		if err := d.openWAL(dir); err != nil {
			return nil, err
		}
	}
	// Flushes start once the log is replayed: flush reads d.wal, and a
	// flush during the replay would save counts without the checkpoint
	// that says so, so that a crash then would replay them again.
	d.every(d.cfg.FlushInterval, d.flush)
	d.answerClaims()

	assignment, err := d.startAPI()
	if err != nil {
		return nil, err
	}
	if err := d.startOTLP(); err != nil {
		return nil, err
	}
	if err := d.startPages(); err != nil {
		return nil, err
	}
	if err := d.startEdge(assignment); err != nil {
		return nil, err
	}

	if cfg.JaegerQuery != "" {
		if err := d.startJaeger(); err != nil {
			return nil, err
		}
	}
	// The API serves last: its handlers (GetStatus) read fields set above.
	grpcLis, connectLis := portshare.Split(d.lis)
	d.serve("connect", func() error { return d.connect.Serve(connectLis) })
	d.serve("grpc", func() error { return d.grpc.Serve(grpcLis) })
	d.log.Info("abmeshd started", "grpc", d.Addr(), "otlp", d.OTLPAddr(), "http", d.HTTPAddr(), "edge", d.EdgeAddr(),
		"store", d.db.Path(), "config_version", d.registry.Version(), "auth", d.AuthOn(), "tls", d.sec.tls != nil)
	ok = true
	return d, nil
}

// startAPI builds the gRPC API server on --listen: assignment,
// experiments, reports, flagd's evaluation API (gRPC, and Connect on the
// same port), health and reflection. It does not serve yet (Start serves
// it last).
func (d *Daemon) startAPI() (*grpcapi.Assignment, error) {
	var err error
	if d.lis, err = d.listen("--listen", d.cfg.Listen); err != nil {
		return nil, err
	}
	// Stream workers reuse goroutines (and their grown stacks) across RPCs
	// instead of starting one per call; 16 per core so that calls from
	// many concurrent callers rarely overflow them (an overflowing call
	// gets a fresh goroutine, whose stack then grows). The codec sends
	// Assign's responses in the wire form grpcapi builds them in.
	// MaxSendMsgSize: the limit SDKs receive Watch snapshots with.
	d.grpc = grpc.NewServer(append(append(d.metrics.serverOptions(), d.grpcOptions()...), grpc.NumStreamWorkers(uint32(16*runtime.GOMAXPROCS(0))), grpc.SharedWriteBuffer(true),
		grpc.ForceServerCodecV2(grpcapi.Codec()), grpc.MaxSendMsgSize(assign.ConfigMessageLimit))...)
	assignment := grpcapi.NewAssignment(d.life, d.registry)
	grpcapi.RegisterAssignment(d.grpc, assignment)
	pb.RegisterExperimentServiceServer(d.grpc, grpcapi.NewExperiments(d.registry))
	pb.RegisterReportServiceServer(d.grpc, grpcapi.NewReports(d.registry, d.reports, d.subsetter, d.windows, d.graph.Snapshot, d.Counts))
	// OpenFeature's flagd evaluation API (versions 1 and 2), for flagd
	// providers in RPC mode: gRPC, and Connect over HTTP/1.1 on the same
	// port (OpenFeature's Go flagd provider speaks Connect).
	flagdSvc := flagd.New(d.life, d.registry)
	evalpb.RegisterServiceServer(d.grpc, flagdSvc)
	evalv2.RegisterServiceServer(d.grpc, flagd.NewV2(flagdSvc))
	connectHandler := flagd.ConnectHandler(flagdSvc)
	if d.sec.guard != nil {
		connectHandler = d.sec.guard.HTTPByPath(connectHandler)
	}
	d.connect = &http.Server{Handler: connectHandler, ReadHeaderTimeout: 5 * time.Second, ConnContext: auth.ConnContext}
	d.health = health.NewServer()
	healthpb.RegisterHealthServer(d.grpc, d.health)
	reflection.Register(d.grpc)
	return assignment, nil
}

// startOTLP serves the OTLP receiver on its own port (--otlp-listen), as
// collectors do.
func (d *Daemon) startOTLP() error {
	if d.cfg.OTLPListen == "off" {
		return nil
	}
	var err error
	if d.otlpLis, err = d.listen("--otlp-listen", d.cfg.OTLPListen); err != nil {
		return err
	}
	otlpOpts := slices.Concat(d.metrics.serverOptions(), d.grpcOptions(), d.cfg.OTLP.ServerOptions())
	if d.sec.guard != nil {
		// Refuse callers without ingest before reading their requests.
		otlpOpts = append(otlpOpts, grpc.InTapHandle(d.sec.guard.TapHandle))
	}
	d.otlp = grpc.NewServer(otlpOpts...)
	opts := []otlpreceiver.Option{otlpreceiver.WithLimits(d.cfg.OTLP)}
	if d.wal != nil {
		opts = append(opts, otlpreceiver.WithJournal(d.wal, func(err error) bool { return errors.Is(err, wal.ErrFull) }))
	}
	d.receiver = otlpreceiver.Register(d.otlp, d.assembler, opts...)
	d.serve("otlp", func() error { return d.otlp.Serve(d.otlpLis) })
	return nil
}

// startPages serves the report pages and /metrics on --http-listen.
func (d *Daemon) startPages() error {
	if d.cfg.HTTPListen == "off" {
		return nil
	}
	var err error
	if d.httpLis, err = d.listen("--http-listen", d.cfg.HTTPListen); err != nil {
		return err
	}
	pages := d.guardHTTP(auth.Reader, "", d.metrics.handler(web.New(d.reports, d.subsetter)))
	d.http = &http.Server{Handler: pages, ReadHeaderTimeout: 5 * time.Second}
	d.serve("http", func() error { return d.http.Serve(d.httpLis) })
	return nil
}

// startConsumer builds the trace consumer: graph, subsetter, windows,
// cell counter and assembler, restores the graph and the cells from the
// store, and starts the loops that keep them current (Start starts the
// flushes once the write-ahead log is replayed).
func (d *Daemon) startConsumer(ctx context.Context) error {
	var err error
	if d.graph, err = tracing.NewGraph(tracing.GraphConfig{Window: d.cfg.GraphWindow}); err != nil {
		return err
	}
	if b, err := d.db.GetBlob(d.blobName(graphBlob)); err == nil {
		if err := d.graph.UnmarshalJSON(b); err != nil {
			d.log.Warn("stored service graph unreadable; starting empty", "err", err)
		}
	}
	d.windows = subset.NewWindows()
	if d.pg != nil {
		d.reports = report.NewReader(d.registry, mergedWindows{d.windows, d.win.(postgres.Windows), d.log})
	} else {
		d.reports = report.NewReader(d.registry, report.Local(d.windows))
	}
	// A replica of a PostgreSQL store opens no windows until it leads: it
	// adopts the leader's (plan.go), the stored plan before Restore.
	var sink subset.ViewSink = d.windows
	if d.pg != nil {
		sink = nil
	}
	d.subsetter = subset.NewSubsetter(sink, subset.WithCap(d.cfg.SubsetCap), subset.WithMinEdgeCalls(d.cfg.MinEdgeCalls))
	if err := d.subsetter.SetTests(testsOf(d.registry.Snapshot())); err != nil {
		return fmt.Errorf("load tests into the subsetter: %w", err)
	}
	d.refreshGraph()
	if d.pg != nil {
		if err := d.followPlan(ctx); err != nil {
			return err
		}
	}
	if err := d.windows.Restore(ctx, d.win); err != nil {
		return err
	}
	counter := subset.NewCellCounter(d.windows, liveEngine{d.registry})
	var keys metricKeys
	keys.update(d.registry.Snapshot())
	asm := d.cfg.Assembly
	if asm.KeepMetric == nil {
		asm.KeepMetric = keys.keep
	}
	if d.assembler, err = tracing.NewAssembler(asm, tracing.Tee(d.graph, counter)); err != nil {
		return err
	}
	d.loop(func() {
		for eng := range d.registry.Subscribe(d.life) {
			keys.update(eng)
			if err := d.subsetter.SetTests(testsOf(eng)); err != nil {
				d.log.Error("subsetter rejected the tests", "config_version", eng.Version(), "err", err)
			}
		}
	})
	d.every(d.cfg.GraphRefresh, d.refreshGraph)
	// One look per flush interval at every running test's confidence
	// sequences, for the report pages' plots (report.History).
	d.every(d.cfg.FlushInterval, func() { d.reports.LookAll(d.life, time.Now()) })
	mem := newMemoryReturner()
	d.every(memoryCheck, func() { mem.check() })
	return nil
}

const graphBlob = "graph"

// testsOf returns every experiment of eng as subsetter tests.
func testsOf(eng *assign.Engine) []subset.Test {
	cfg := eng.Config()
	out := make([]subset.Test, 0, len(cfg.Experiments))
	for _, e := range cfg.Experiments {
		out = append(out, subset.FromExperiment(e))
	}
	return out
}

// refreshGraph hands the subsetter the service graph's current edges (it
// admits them with hysteresis and recomputes only when the admitted set
// changed). With a PostgreSQL store only the leader does, with the edges
// of every replica's graph (mergedEdges); followers take the edges the
// leader admitted from its plan.
func (d *Daemon) refreshGraph() {
	edges := d.graph.Snapshot().Edges
	if d.pg != nil {
		if !d.opensWindows() {
			return
		}
		ctx, cancel := context.WithTimeout(d.life, 10*time.Second)
		defer cancel()
		var err error
		if edges, err = d.mergedEdges(ctx); err != nil {
			d.log.Error("merge the replicas' service graphs", "err", err)
			return
		}
	}
	if err := d.subsetter.ObserveEdges(edges); err != nil {
		d.log.Error("service graph rejected", "err", err)
	}
}

// flush writes changed windows and the graph to the store, and counts it
// in the metrics. With the write-ahead log on, it writes them with the
// log's checkpoint in one transaction (flushCheckpoint). A failed flush
// leaves everything pending for the next one (every --flush-interval):
// with a PostgreSQL store that is the retry while the server is away.
func (d *Daemon) flush() {
	start := time.Now()
	var (
		rows int
		err  error
	)
	if d.wal != nil {
		rows, err = d.flushCheckpoint()
	} else {
		err = d.windows.Flush(context.Background(), countingStore{d.win, d.metrics, &rows})
		if err != nil {
			d.log.Error("flush cells", "err", err)
		}
		if b, gerr := d.graph.MarshalJSON(); gerr == nil {
			if gerr = d.db.PutBlob(d.blobName(graphBlob), b); gerr != nil {
				d.log.Error("flush service graph", "err", gerr)
				err = errors.Join(err, gerr)
			}
		}
	}
	took := time.Since(start)
	if failed := d.metrics.flushed(err, took); failed > 0 {
		d.log.Info("flushed again after failures", "store", d.db.Path(), "failed_flushes", failed, "rows", rows, "took", took.Round(time.Millisecond))
	}
	if err == nil {
		d.log.Debug("flushed", "rows", rows, "seconds", took.Seconds())
	}
}

// saveTimeout bounds a save of rows rows to the store: 30 s plus 100 µs a
// row (a store writing under 10,000 rows/s is taken as stuck), so that a
// large save — the first flush after a store outage carries every unit
// counted meanwhile — can complete instead of timing out at every retry.
func saveTimeout(rows int) time.Duration {
	return 30*time.Second + time.Duration(rows)*100*time.Microsecond
}

func (d *Daemon) startJaeger() error {
	cc, err := grpc.NewClient(d.cfg.JaegerQuery, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("--jaeger-query %s: %w", d.cfg.JaegerQuery, err)
	}
	d.jaegerCC = cc
	d.jaeger, err = jaeger.NewReader(api.NewQueryServiceClient(cc), d.assembler, d.graph,
		jaeger.ReaderConfig{PollInterval: d.cfg.JaegerPoll, Logger: d.log})
	if err != nil {
		return err
	}
	// The reader has its own lifetime: Stop ends it before the assembler
	// closes, so the traces of a poll in progress are still counted.
	ctx, cancel := context.WithCancel(d.life)
	d.jaegerStop = make(chan struct{})
	stopped := d.jaegerStop
	d.jaegerCancel = cancel
	go func() {
		defer close(stopped)
		if err := d.jaeger.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("jaeger reader stopped", "err", err)
		}
	}()
	return nil
}

// liveEngine answers hash assignments from the registry's current config.
type liveEngine struct{ reg *assign.Registry }

// HashVariant answers from the current config.
func (l liveEngine) HashVariant(test, unit string) (string, bool) {
	return l.reg.Snapshot().HashVariant(test, unit)
}

// InSlice answers from the current config.
func (l liveEngine) InSlice(test, unit string) bool { return l.reg.Snapshot().InSlice(test, unit) }

func (d *Daemon) serve(name string, f func() error) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := f(); err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("server stopped", "server", name, "err", err)
		}
	}()
}

// loop runs f until it returns; Stop waits for it.
func (d *Daemon) loop(f func()) {
	d.wg.Add(1)
	go func() { defer d.wg.Done(); f() }()
}

// every runs f every interval until Stop.
func (d *Daemon) every(interval time.Duration, f func()) {
	d.loop(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-d.life.Done():
				return
			case <-t.C:
				f()
			}
		}
	})
}

// Addr is the gRPC API's address.
func (d *Daemon) Addr() string { return d.lis.Addr().String() }

// OTLPAddr is the OTLP receiver's address, "" when off.
func (d *Daemon) OTLPAddr() string {
	if d.otlpLis == nil {
		return ""
	}
	return d.otlpLis.Addr().String()
}

// HTTPAddr is the report pages' address, "" when off.
func (d *Daemon) HTTPAddr() string {
	if d.httpLis == nil {
		return ""
	}
	return d.httpLis.Addr().String()
}

// Registry is the experiment registry.
func (d *Daemon) Registry() *assign.Registry { return d.registry }

// Subsetter is the subsetter: the tests, the graph and the subsets.
func (d *Daemon) Subsetter() *subset.Subsetter { return d.subsetter }

// Leads reports whether this daemon is the leader: with a PostgreSQL
// store, the replica holding the leader lock; with bbolt, always.
func (d *Daemon) Leads() bool { return d.leader.Load() }

// Windows holds every viewpoint's analysis windows and their cells.
func (d *Daemon) Windows() *subset.Windows { return d.windows }

// Assembler is the trace assembler.
func (d *Daemon) Assembler() *tracing.Assembler { return d.assembler }

// Graph is the service dependency graph.
func (d *Daemon) Graph() *tracing.Graph { return d.graph }

// RefreshGraph hands the current service graph to the subsetter now
// (it also happens every GraphRefresh).
func (d *Daemon) RefreshGraph() { d.refreshGraph() }

// Reports builds reports of the live windows.
func (d *Daemon) Reports() *report.Reader { return d.reports }

// grpcGrace is how long Stop waits for in-flight RPCs and streams before
// it closes the remaining connections (a Watch client that stopped
// reading would otherwise hold a graceful stop forever).
var grpcGrace = 10 * time.Second

// gracefulStop stops s gracefully, or forcibly once grace has passed.
func gracefulStop(s *grpc.Server, grace time.Duration) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.Stop()
		<-done
	}
}

// Stop shuts down gracefully: health turns NOT_SERVING, the OTLP receiver
// and the Jaeger reader stop taking spans, traces in flight are completed
// and counted, Watch streams end, in-flight RPCs finish (connections still
// busy after grpcGrace are closed), cells and graph are flushed, and the
// store is closed.
func (d *Daemon) Stop() {
	d.stopOnce.Do(func() {
		if d.health != nil {
			d.health.Shutdown()
		}
		if d.otlp != nil {
			gracefulStop(d.otlp, grpcGrace)
		}
		if d.jaegerCancel != nil {
			d.jaegerCancel()
			<-d.jaegerStop
		}
		if d.assembler != nil {
			d.assembler.Flush()
			if err := d.assembler.Close(); err != nil {
				d.log.Error("close assembler", "err", err)
			}
		}
		d.cancel()
		for _, s := range []*http.Server{d.http, d.edge, d.connect} {
			if s != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = s.Shutdown(ctx)
				cancel()
			}
		}
		if d.grpc != nil {
			gracefulStop(d.grpc, grpcGrace)
		}
		if d.lis != nil {
			d.lis.Close() // not yet served when Start failed
		}
		d.wg.Wait()
		if d.jaegerCC != nil {
			d.jaegerCC.Close()
		}
		if d.windows != nil && d.db != nil {
			d.flush()
		}
		if d.wal != nil {
			if err := d.wal.Close(); err != nil {
				d.log.Error("close write-ahead log", "err", err)
			}
		}
		if d.db != nil {
			if err := d.db.Close(); err != nil {
				d.log.Error("close store", "err", err)
			}
		}
		if d.tmpDir != "" {
			os.RemoveAll(d.tmpDir)
		}
	})
}
