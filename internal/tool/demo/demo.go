// Package demo runs abmesh end to end on one machine: abmeshd, a real gRPC
// mesh of about ten services shaped like an online shop (each instrumented
// with otelgrpc and the abmesh SDK, exporting spans over OTLP), the shop's
// experiments, and simulated users whose outcomes follow a configured
// ground truth, all from internal/tool/shop. The users' requests pass
// abmeshd's forward-auth endpoint, as behind a proxy, and the services get
// their variants in the three ways abmesh offers (Way, DefaultWays): the
// frontend from the edge's headers, the ad service through OpenFeature,
// the others through the SDK. It shows progress per subset, stops when every
// report is COMPLETE or the time budget runs out, and compares each
// report's estimates with the truth.
package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/auth"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/edge/forwardauth"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/internal/tool/shop"
	"github.com/abmesh/abmesh/internal/tool/truth"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// Config configures a demo run. The zero value of each field means its
// default.
type Config struct {
	// Duration is the time budget of the traffic phase (default 3m).
	Duration time.Duration
	// Rate is the users per second who start a session (default 50).
	Rate float64
	// RequestsPerUser is the mean number of requests of a user's session:
	// each user makes a geometric number of requests, one after the other
	// (default 4; 1 is one request per user).
	RequestsPerUser float64
	// WithinUserCorr is the correlation ρ of one user's outcomes, in
	// [0, 1): a user's requests share a user-level draw (default 0.3;
	// negative means 0).
	WithinUserCorr float64
	// Workers is the number of concurrent users (default 32).
	Workers int
	// Warmup is how long traffic flows before the experiments start, so
	// the service graph is known (default 3s).
	Warmup time.Duration
	// DataDir keeps abmeshd's store (with Replicas, each replica's data
	// directory is DataDir/replica-N); empty means a temporary directory.
	DataDir string
	// Replicas, when positive, runs that many abmeshd replicas sharing
	// Store, which must then be a postgres:// URL of a database holding no
	// configuration yet (at most MaxReplicas). Each trace's spans go to one
	// replica, chosen by otlproute.Pick of the trace id (the rule of an
	// OpenTelemetry Collector's load-balancing exporter with routing_key
	// traceID); the first replica listens on the addresses below and
	// serves the SDKs, the edge and the reports, merged from every
	// replica; the others listen on free loopback ports. Zero: one abmeshd
	// with its bbolt store, Store empty.
	Replicas int
	Store    string
	// Routes, with Replicas, receives a line "TRACE_ID REPLICA" (numbered
	// from 1) per trace whose root span was exported.
	Routes io.Writer
	// Listen, OTLPListen, HTTPListen and EdgeListen (the forward-auth
	// endpoint the users' requests pass through) are abmeshd's addresses
	// (default 127.0.0.1 with a free port each).
	Listen, OTLPListen, HTTPListen, EdgeListen string
	// JaegerOTLP, when set, is where the services export their spans
	// instead of abmeshd (a Jaeger collector's OTLP gRPC port), and
	// JaegerQuery is the Jaeger query gRPC address abmeshd reads them
	// back from. Both or neither.
	JaegerOTLP, JaegerQuery string
	// Seed makes the users and outcomes reproducible (default 1).
	Seed uint64
	// CheckoutShare is the share of requests that check out (default 0.6).
	CheckoutShare float64
	// Truth is the outcome model (default shop.Truths()).
	Truth []truth.Model
	// Progress receives a progress line every ProgressEvery (default
	// io.Discard, every 2s).
	Progress      io.Writer
	ProgressEvery time.Duration
	// Logger receives abmeshd's logs (default: warnings to Progress).
	Logger *slog.Logger

	// reference (tests) also runs one abmeshd with its own store that gets
	// every span and admin change; inspect, when set, sees the cluster
	// before it stops; traceIdle is the assembler's idle timeout (default
	// 1s), after which a trace is complete and its later spans are late.
	reference bool
	inspect   func(*cluster)
	traceIdle time.Duration
}

func (c *Config) defaults() error {
	if c.Duration == 0 {
		c.Duration = 3 * time.Minute
	}
	if c.Rate == 0 {
		c.Rate = 50
	}
	if c.RequestsPerUser == 0 {
		c.RequestsPerUser = 4
	}
	switch {
	case c.WithinUserCorr == 0:
		c.WithinUserCorr = 0.3
	case c.WithinUserCorr < 0:
		c.WithinUserCorr = 0
	}
	if c.Workers == 0 {
		c.Workers = 32
	}
	if c.Warmup == 0 {
		c.Warmup = 3 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.CheckoutShare == 0 {
		c.CheckoutShare = 0.6
	}
	if c.Truth == nil {
		c.Truth = shop.Truths()
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(c.Progress, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	for _, a := range []*string{&c.Listen, &c.OTLPListen, &c.HTTPListen, &c.EdgeListen} {
		if *a == "" {
			*a = "127.0.0.1:0"
		}
	}
	switch {
	case c.Duration < 0 || c.Rate < 0 || c.Workers < 0 || c.Warmup < 0:
		return errors.New("demo: duration, rate, workers and warmup must be positive")
	case (c.JaegerOTLP == "") != (c.JaegerQuery == ""):
		return errors.New("demo: --jaeger-otlp and --jaeger-query go together")
	case c.CheckoutShare < 0 || c.CheckoutShare > 1:
		return errors.New("demo: checkout share must be in [0, 1]")
	case !(c.RequestsPerUser >= 1):
		return fmt.Errorf("demo: requests per user %v: want at least 1", c.RequestsPerUser)
	case c.WithinUserCorr >= 1:
		return fmt.Errorf("demo: within-user correlation %v: want a number in [0, 1)", c.WithinUserCorr)
	}
	return c.checkReplicas()
}

// Validate checks c as Run does, without starting anything.
func (c Config) Validate() error { return c.defaults() }

// checkReplicas checks Replicas, Store and Routes, and what cannot go with
// them.
func (c *Config) checkReplicas() error {
	isPG := strings.HasPrefix(c.Store, "postgres://") || strings.HasPrefix(c.Store, "postgresql://")
	switch {
	case c.Replicas < 0 || c.Replicas > MaxReplicas:
		return fmt.Errorf("demo: --replicas %d: want 1 to %d", c.Replicas, MaxReplicas)
	case c.Replicas == 0 && c.Store != "":
		return errors.New("demo: --store needs --replicas N (--replicas 1 for one abmeshd on PostgreSQL)")
	case c.Replicas == 0 && c.Routes != nil:
		return errors.New("demo: --routes needs --replicas N")
	case c.Replicas > 0 && !isPG:
		return fmt.Errorf("demo: --replicas %d needs --store postgres://USER@HOST:PORT/DATABASE, the database the replicas share", c.Replicas)
	case c.Replicas > 0 && c.JaegerOTLP != "":
		return errors.New("demo: --replicas cannot go with --jaeger-otlp/--jaeger-query: the replicas receive the spans over OTLP themselves")
	}
	return nil
}

// Row is one estimate of a report beside its ground truth.
type Row struct {
	Report   string // the viewpoint
	Term     string // test id, or "a:b" for an interaction
	Variant  string // "" for an interaction
	Truth    float64
	Estimate float64
	Lo, Hi   float64
	P        float64
	Covered  bool
	// Significant is P < 0.05.
	Significant bool
}

// Result is what a demo run produced.
type Result struct {
	Reports  map[string]*report.Report
	Complete bool // every report COMPLETE
	Elapsed  time.Duration
	// Users are the users whose sessions ran; Requests the requests they
	// sent, and Errors those that failed.
	Users    int64
	Requests int64
	Errors   int64
	// SpansAcked are the spans the services' exporters got acknowledged
	// (OTLP mode); SpansFailed the ones they gave up on.
	SpansAcked, SpansFailed int64
	// Ways is how each test was served: its change service's way
	// (DefaultWays). Evaluations counts the evaluations each way served
	// (indexed by Way).
	Ways        map[string]Way
	Evaluations [numWays]int64
	// FlagEvents counts the feature-flag evaluation events on the spans
	// abmeshd acknowledged, by test.
	FlagEvents map[string]int64
	Counters   tracing.AssemblyStats
	Rows       []Row
	// Daemon addresses while it ran (the first replica's with Replicas).
	Addr, HTTPAddr, EdgeAddr string
	// Replicas are, with Config.Replicas, the replicas (in order) with
	// what was routed to each; Store is their database, without password.
	Replicas []Replica
	Store    string
	// Authenticated says abmeshd ran with authentication on (the demo's own
	// tokens, see demoAuth).
	Authenticated bool
}

// Run runs the demo. With serve, it leaves abmeshd (and its pages) up
// after the run until ctx is done.
func Run(ctx context.Context, cfg Config, serve bool) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, format+"\n", args...) }

	authDir := cfg.DataDir
	if authDir == "" {
		tmp, err := os.MkdirTemp("", "abmesh-demo-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		authDir = tmp
	}
	authFile, tokens, err := demoAuth(authDir)
	if err != nil {
		return nil, err
	}
	dcfg := daemonConfig(cfg, authFile)
	otlp := cfg.JaegerOTLP
	c, err := startCluster(ctx, cfg, dcfg)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	d := c.first()
	if otlp == "" {
		otlp = d.OTLPAddr()
	}
	res := &Result{Addr: d.Addr(), HTTPAddr: d.HTTPAddr(), EdgeAddr: d.EdgeAddr(), Reports: map[string]*report.Report{}, Authenticated: d.AuthOn()}
	say("abmeshd: gRPC %s, OTLP %s, reports http://%s/, forward-auth http://%s/; authentication on (%s: the services hold the client and ingest tokens)",
		d.Addr(), otlp, d.HTTPAddr(), d.EdgeAddr(), authFile)
	c.announce(say, cfg, res)

	var exps []string
	err = c.admin(ctx, func(reg *assign.Registry) (err error) {
		exps, err = applyShop(ctx, reg)
		return err
	})
	if err != nil {
		return nil, err
	}
	say("applied %s: %d experiments (%s)", shop.Dir, len(exps), strings.Join(exps, ", "))

	ways := DefaultWays()
	mcfg := MeshConfig{Abmeshd: d.Addr(), OTLP: otlp, OTLPReplicas: c.otlp(), Routes: c.tally, Mirror: c.mirror(), Truth: cfg.Truth, Seed: cfg.Seed,
		WithinUnitCorr: cfg.WithinUserCorr, Logger: cfg.Logger, Ways: ways, Edge: d.EdgeAddr(), Conns: cfg.Workers,
		ClientToken: tokens[auth.Client]}
	if cfg.JaegerOTLP == "" {
		mcfg.IngestToken = tokens[auth.Ingest]
	}
	mesh, err := StartMesh(ctx, mcfg)
	if err != nil {
		return nil, err
	}
	defer mesh.Stop(context.Background())
	res.Ways = testWays(d.Registry().Snapshot(), ways)
	say("mesh: %d services on loopback, each with otelgrpc and the abmesh SDK; the users' requests pass forward-auth (as behind nginx auth_request) to the frontend, which serves its tests from the edge's headers; the ad service evaluates through OpenFeature",
		len(Topology))

	drv := &driver{mesh: mesh, cfg: &cfg, attrs: shop.Attributes()}
	say("warm-up: %s of traffic to learn the service graph", cfg.Warmup)
	if err := warmUpAndStart(ctx, c, mesh, drv, exps, cfg); err != nil {
		return nil, err
	}
	say("started %d experiments; %.0f users/s, each a session of %.1f requests on average (within-user correlation %.2f), for at most %s",
		len(exps), cfg.Rate, cfg.RequestsPerUser, cfg.WithinUserCorr, cfg.Duration)

	start := time.Now()
	drv.run(ctx, cfg.Duration, func(elapsed time.Duration) bool {
		return progress(cfg.Progress, c, exps, drv, elapsed)
	})
	res.Elapsed = time.Since(start)
	if err := settle(ctx, c, mesh, cfg); err != nil {
		return nil, err
	}
	if err := c.awaitMerged(ctx, exps, 3*dcfg.FlushInterval+5*time.Second); err != nil {
		say("warning: %v", err)
	}
	if err := collect(res, c, mesh, drv, exps, cfg); err != nil {
		return nil, err
	}
	if cfg.inspect != nil {
		cfg.inspect(c)
	}
	if serve {
		say("serving the reports at http://%s/ until interrupted; they ask for a password: the reader token %s (any user name)", d.HTTPAddr(), tokens[auth.Reader])
		say("the CLI: ABMESH_TOKEN=%s abmesh --server %s get experiments (admin token; all tokens in %s)", tokens[auth.Admin], d.Addr(), filepath.Join(authDir, "tokens"))
		<-ctx.Done()
	}
	return res, nil
}

// daemonConfig is the demo's abmeshd configuration: cfg's addresses,
// quick graph refreshes and flushes, authentication from authFile, and
// with cfg.JaegerQuery the traces read from Jaeger instead of OTLP.
func daemonConfig(cfg Config, authFile string) daemon.Config {
	dcfg := daemon.Config{
		Listen: cfg.Listen, OTLPListen: cfg.OTLPListen, HTTPListen: cfg.HTTPListen, DataDir: cfg.DataDir,
		EdgeListen: cfg.EdgeListen, Edge: forwardauth.Config{UnitHeader: edgeUnitHeader},
		Assembly:     tracing.Config{IdleTimeout: cmp.Or(cfg.traceIdle, time.Second)},
		GraphRefresh: time.Second, FlushInterval: 2 * time.Second, Logger: cfg.Logger,
		Security: daemon.SecurityConfig{AuthFile: authFile},
	}
	if cfg.JaegerQuery != "" {
		dcfg.OTLPListen, dcfg.JaegerQuery, dcfg.JaegerPoll = "off", cfg.JaegerQuery, 2*time.Second
	}
	return dcfg
}

// warmUpAndStart sends cfg.Warmup of traffic so that the service graph is
// known before the subsets are, waits for it to be counted, and starts the
// experiments exps; with replicas, each start reaches every replica before
// the next, and the replicas' windows agree before users arrive.
func warmUpAndStart(ctx context.Context, c *cluster, mesh *Mesh, drv *driver, exps []string, cfg Config) error {
	drv.run(ctx, cfg.Warmup, nil)
	if err := settle(ctx, c, mesh, cfg); err != nil {
		return err
	}
	c.refreshGraph()
	for _, id := range exps {
		err := c.admin(ctx, func(reg *assign.Registry) error {
			_, err := reg.Start(ctx, id)
			return err
		})
		if err != nil {
			return fmt.Errorf("start %s: %w", id, err)
		}
	}
	if err := c.awaitWindows(ctx, exps); err != nil {
		fmt.Fprintf(cfg.Progress, "warning: %v\n", err)
	}
	// Let the SDKs see the started tests before users arrive.
	time.Sleep(300 * time.Millisecond)
	return nil
}

// collect fills res with what the run sent, acknowledged and evaluated,
// the assembler's counters, and each experiment's report with its rows
// against the truth.
func collect(res *Result, c *cluster, mesh *Mesh, drv *driver, exps []string, cfg Config) error {
	d := c.first()
	res.Users, res.Requests, res.Errors = drv.users.Load(), drv.sent.Load(), drv.failed.Load()
	res.SpansAcked, res.SpansFailed = mesh.SpansAcked.Load(), mesh.SpansFailed.Load()
	for w := range res.Evaluations {
		res.Evaluations[w] = mesh.Evaluations[w].Load()
	}
	res.FlagEvents = mesh.FlagEvents()
	res.Counters = c.stats()
	res.Replicas = c.replicas()
	res.Complete = true
	for _, id := range exps {
		r, err := d.Reports().Report(context.Background(), id, 0, report.Options{})
		if err != nil {
			return err
		}
		res.Reports[id] = r
		if r.Status != report.Complete {
			res.Complete = false
		}
		res.Rows = append(res.Rows, truthRows(r, d.Registry().Snapshot(), cfg.Truth)...)
	}
	return nil
}

// demoAuth writes dir/auth, abmeshd's auth file, with a fresh token for
// each role (named after it), and dir/tokens with the tokens themselves
// ("ROLE TOKEN" lines, for the CLI and the pages in --serve mode); both
// readable by the user alone. It returns the auth file and the tokens.
func demoAuth(dir string) (string, map[auth.Role]string, error) {
	tokens := map[auth.Role]string{}
	var file, plain strings.Builder
	for _, r := range []auth.Role{auth.Admin, auth.Reader, auth.Client, auth.Ingest} {
		tokens[r] = auth.NewToken()
		file.WriteString(auth.TokenLine("demo-"+r.String(), auth.RolesOf(r), tokens[r]))
		fmt.Fprintf(&plain, "%s %s\n", r, tokens[r])
	}
	path := filepath.Join(dir, "auth")
	if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens"), []byte(plain.String()), 0o600); err != nil {
		return "", nil, err
	}
	return path, tokens, nil
}

// applyShop creates the shop's layers and experiments from its manifests
// (as `abmesh apply -f internal/tool/shop/layers.yaml -f
// internal/tool/shop/experiments.yaml` would) and returns the experiment ids.
func applyShop(ctx context.Context, reg *assign.Registry) ([]string, error) {
	all, err := shop.Manifest()
	if err != nil {
		return nil, err
	}
	for i := range all.Layers {
		if _, err := reg.CreateLayer(ctx, &all.Layers[i]); err != nil && !errors.Is(err, assign.ErrAlreadyExists) {
			return nil, err
		}
	}
	var ids []string
	for i := range all.Experiments {
		if _, err := reg.Create(ctx, &all.Experiments[i]); err != nil && !errors.Is(err, assign.ErrAlreadyExists) {
			return nil, err
		}
		ids = append(ids, all.Experiments[i].ID)
	}
	sort.Strings(ids)
	return ids, nil
}

// settle exports every span and waits until abmeshd has received them
// and completed every trace (the assembler's idle timeout); through Jaeger
// it first waits for the reader's settle delay and a poll. It gives up
// after a bound and lets the counters tell.
func settle(ctx context.Context, c *cluster, mesh *Mesh, cfg Config) error {
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := mesh.Flush(fctx); err != nil {
		return fmt.Errorf("export spans: %w", err)
	}
	if cfg.JaegerQuery != "" {
		if err := sleep(ctx, 15*time.Second); err != nil { // Jaeger reader's Settle (10s) and a poll
			return err
		}
	}
	settled := func(s tracing.AssemblyStats) bool {
		received := cfg.JaegerQuery != "" || int64(s.SpansReceived) >= mesh.SpansAcked.Load()
		return received && s.TracesInFlight == 0
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		if settled(c.stats()) && (c.ref == nil || settled(c.ref.Assembler().Stats())) {
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// progress prints one line: elapsed, requests, spans, and each report's
// fill fraction (smallest cell n / needed per cell). It reports whether
// every report is COMPLETE.
func progress(w io.Writer, cl *cluster, exps []string, drv *driver, elapsed time.Duration) (allComplete bool) {
	d := cl.first()
	c := cl.stats()
	var parts []string
	allComplete = true
	for _, id := range exps {
		r, err := d.Reports().Report(context.Background(), id, 0, report.Options{})
		if err != nil {
			parts = append(parts, id+" -")
			allComplete = false
			continue
		}
		mark := ""
		if r.Status == report.Complete {
			mark = "✓"
		} else {
			allComplete = false
		}
		parts = append(parts, fmt.Sprintf("%s[%d] %3.0f%% %d/%d%s", id, len(r.Window.Members), 100*r.Progress.Fraction,
			r.Progress.MinCellN, r.Progress.NeededPerCell, mark))
	}
	traces := strconv.FormatUint(c.TracesCompleted, 10)
	if len(cl.reps) > 1 {
		var per []string
		for _, r := range cl.reps {
			per = append(per, strconv.FormatUint(r.Assembler().Stats().TracesCompleted, 10))
		}
		traces += " (" + strings.Join(per, "/") + ")"
	}
	fmt.Fprintf(w, "%5.0fs  users %d  requests %d (%d failed)  traces %s  | %s\n", elapsed.Seconds(), drv.users.Load(), drv.sent.Load(), drv.failed.Load(),
		traces, strings.Join(parts, "  "))
	return allComplete
}

// driver sends simulated users' requests at the configured rate.
type driver struct {
	mesh         *Mesh
	cfg          *Config
	attrs        []truth.Attribute // the users' attributes; only grade reaches the mesh
	next         atomic.Int64
	sent, failed atomic.Int64 // requests
	users        atomic.Int64 // sessions run
}

// run sends traffic for dur, calling tick every ProgressEvery; it stops
// early when tick returns true.
func (drv *driver) run(ctx context.Context, dur time.Duration, tick func(time.Duration) bool) {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	tokens := make(chan struct{}, drv.cfg.Workers)
	var wg sync.WaitGroup
	for w := 0; w < drv.cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tokens {
				drv.session(ctx)
			}
		}()
	}
	start := time.Now()
	const step = 10 * time.Millisecond
	t := time.NewTicker(step)
	pt := time.NewTicker(drv.cfg.ProgressEvery)
	defer t.Stop()
	defer pt.Stop()
	credit := 0.0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-pt.C:
			if tick != nil && tick(time.Since(start)) {
				break loop
			}
		case <-t.C:
			credit += drv.cfg.Rate * step.Seconds()
			for ; credit >= 1; credit-- {
				select {
				case tokens <- struct{}{}:
				default: // workers saturated: this user is not sent
				}
			}
		}
	}
	close(tokens)
	wg.Wait()
}

// session is one simulated user: a fresh unit id, a grade drawn from the
// users' attributes, and a geometric number of requests (mean
// RequestsPerUser), one after the other, each a page view that checks
// out with probability CheckoutShare. A session that has started runs to
// its end.
func (drv *driver) session(ctx context.Context) {
	n := drv.next.Add(1)
	rng := rand.New(rand.NewPCG(drv.cfg.Seed, uint64(n)))
	unit := "user-" + strconv.FormatUint(drv.cfg.Seed, 10) + "-" + strconv.FormatInt(n, 10)
	grade := truth.DrawAttributes(rng, drv.attrs)["grade"]
	visits := truth.Geometric(rng, drv.cfg.RequestsPerUser)
	drv.users.Add(1)
	for visit := range visits {
		action := "view"
		if rng.Float64() < drv.cfg.CheckoutShare {
			action = "checkout"
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := drv.mesh.Request(cctx, unit, grade, action, uint32(visit))
		cancel()
		if err != nil {
			drv.failed.Add(1)
			continue
		}
		drv.sent.Add(1)
	}
}

// windowRequests is the number of requests counted in w's cells.
func windowRequests(w subset.WindowCells) int64 {
	var n int64
	for _, c := range w.Cells {
		n += c.Requests
	}
	return n
}

// WriteSummary prints each report's status, subset and estimates beside
// the ground truth.
func WriteSummary(w io.Writer, res *Result) {
	ids := make([]string, 0, len(res.Reports))
	for id := range res.Reports {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	fmt.Fprintf(w, "\n%d users made %d requests in %s (%d failed); spans acknowledged %d, received by abmeshd %d, accepted %d, late %d, malformed %d\n",
		res.Users, res.Requests, res.Elapsed.Round(time.Second), res.Errors, res.SpansAcked, res.Counters.SpansReceived,
		res.Counters.SpansAccepted, res.Counters.SpansLate, res.Counters.MalformedTotal())
	fmt.Fprintf(w, "evaluations served: sdk %d, openfeature %d, edge %d\n", res.Evaluations[WaySDK], res.Evaluations[WayOpenFeature], res.Evaluations[WayEdge])
	writeReplicas(w, res)
	for _, id := range ids {
		r := res.Reports[id]
		var members []string
		for _, m := range r.Window.Members {
			members = append(members, m.Test)
		}
		fmt.Fprintf(w, "\n%s  [%s]  served by %s  subset {%s}  metric %s (%s per user)  users %d  requests %d  cells %d/%d at ≥%d users\n", id, r.Status,
			res.Ways[id], strings.Join(members, ", "), r.Metric, r.Window.Aggregate, r.Table.N(), windowRequests(r.Window), r.Progress.CellsReady,
			r.Progress.CellsTotal, r.Progress.NeededPerCell)
		fmt.Fprintf(w, "  status: %s\n", r.StatusLine())
		for _, row := range res.Rows {
			if row.Report != id {
				continue
			}
			name := row.Term
			if row.Variant != "" {
				name += "=" + row.Variant
			}
			cov := "covered"
			if !row.Covered {
				cov = "MISSED"
			}
			sig := ""
			if row.Significant {
				sig = " *"
			}
			fmt.Fprintf(w, "  %-36s truth %8.3f   estimate %8.3f   95%% CI [%8.3f, %8.3f]  %s%s\n", name, row.Truth, row.Estimate, row.Lo, row.Hi, cov, sig)
		}
		if r.SRMFlagged {
			fmt.Fprintln(w, "  WARNING: sample ratio mismatch")
		}
	}
	fmt.Fprintln(w, "\n(* p < 0.05; truth of a main effect = its marginal effect averaged over the subset's other tests)")
	for _, r := range res.Reports {
		if m, err := assign.ParseMetric(r.Metric); err == nil && m.Kind == assign.MetricLatencyMS {
			fmt.Fprintln(w, "(latency truth is the configured sleep difference; the measured span adds the machine's scheduling, so expect offsets of about 0.1 ms)")
			break
		}
	}
}
