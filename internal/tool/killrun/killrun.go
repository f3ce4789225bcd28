// Package killrun checks abmeshd's durability promise from the outside:
// no trace acknowledged to an OTLP exporter is lost when abmeshd is killed
// with SIGKILL, and none is counted twice after the restart.
//
// Run starts a real abmeshd process with a data directory, creates and
// starts one experiment whose flag every generated trace carries (so that
// each completed trace is counted once in the experiment window's "seen"),
// and then, Kills times: loads it from this process with otlpload (an
// exporter that retries a failed request, the same bytes, until it is
// acknowledged, as OpenTelemetry's exporters do), kills it with SIGKILL at
// a random moment, restarts it on the same data directory while the load
// goes on, lets the load end and every trace complete, and compares the
// traces counted (the daemon's cells.seen, which GetStatus reports) with
// the traces acknowledged to the client. A last kill without load checks
// that what was counted survives as it is.
//
// With Config.Replicas ≥ 2 it runs that many abmeshd replicas on one
// PostgreSQL (Config.Store) instead. The exporter then routes each request
// by the FNV-1a hash of its first trace id over the replicas that are up,
// as the OpenTelemetry Collector's load-balancing exporter routes traces
// (requests carry whole traces, so every trace reaches one replica). Each
// kill takes one replica down for Config.Outage: the exporter re-sends
// the requests that failed there to the survivors (the ring without it),
// the survivors must answer Assign and carry a config change made on one
// of them to a Watch stream on another, and then the replica restarts on
// its data directory and replays its write-ahead log. The traces counted
// are the sum of every replica's count. A request the killed replica
// logged but did not acknowledge, and that the exporter re-sent to a
// survivor, is the hazard: unless the replicas agree on who counts it, it
// is counted by both (Trial.Moved says how many traces were re-sent so).
//
// "abmesh bench crash" runs it against a built abmeshd; cmd/abmeshd's
// TestKill9LosesNoAcknowledgedTrace and TestKill9OfReplicaCountsOnce run
// it at small scale.
package killrun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/abmesh/abmesh/internal/otlproute"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/tracing/otlpload"
)

// Experiment is the id of the experiment Run creates: the flag key that
// otlpload puts on every trace's root span.
const Experiment = "new-home"

// MaxKills bounds Config.Kills.
const MaxKills = 100

// MaxReplicas bounds Config.Replicas.
const MaxReplicas = 16

// readyTimeout bounds a (re)start: exec until both ports answer.
const readyTimeout = 60 * time.Second

// Config describes a run. Binary and Kills are required.
type Config struct {
	// Binary is the abmeshd executable.
	Binary string
	// Env is added to the process's environment for abmeshd (a test
	// running itself as abmeshd sets its marker here).
	Env []string
	// Args are more abmeshd flags (after the ones Run sets: --data-dir,
	// --listen, --otlp-listen, --http-listen off, --trace-idle-timeout,
	// --flush-interval, --log-level info).
	Args []string
	// Dir holds the data directory (Dir/data) and abmeshd's logs
	// (Dir/abmeshd-N.log), or with Replicas each replica's in
	// Dir/replica-I; it must be empty or absent.
	Dir string
	// Replicas, when 2 or more, is the number of abmeshd replicas sharing
	// Store (see the package doc); the kills take them down in turn.
	Replicas int
	// Store is every replica's --store, a postgres:// URL; required with
	// Replicas.
	Store string
	// Outage is how long a killed replica stays down before its restart,
	// with Replicas (default 1s; without replicas the restart is at once).
	Outage time.Duration
	// AnswerDelay, when positive, puts a proxy between the exporter and
	// each abmeshd that holds abmeshd's answers for that long and drops
	// those it holds when abmeshd dies, as a network does when a node
	// dies: it widens the window in which a request is in abmeshd's log
	// but not yet acknowledged (at most 1s).
	AnswerDelay time.Duration
	// Kills is the number of kills under load, 1 to MaxKills.
	Kills int
	// Load is the exporter's load (Rate, Concurrency, RequestSpans, …);
	// Run sets Endpoint and Duration, and Retry and DialOptions unless
	// set (a minute of retries; plaintext, reconnecting within 250ms).
	Load otlpload.Config
	// MinUp and MaxUp bound the load time before each kill, drawn
	// uniformly (defaults 2s and 8s).
	MinUp, MaxUp time.Duration
	// After is how long the load goes on after the kill, across the
	// restart (default 2s).
	After time.Duration
	// IdleTimeout and FlushInterval are abmeshd's --trace-idle-timeout
	// and --flush-interval (defaults 1s and 1s).
	IdleTimeout, FlushInterval time.Duration
	// Seed draws the kill moments (0: from the clock).
	Seed uint64
	// Log, when set, receives a line per trial.
	Log io.Writer
}

func (c *Config) setDefaults() {
	if c.MinUp == 0 {
		c.MinUp = 2 * time.Second
	}
	if c.MaxUp == 0 {
		c.MaxUp = 8 * time.Second
	}
	if c.After == 0 {
		c.After = 2 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = time.Second
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	if c.Replicas > 1 && c.Outage == 0 {
		c.Outage = time.Second
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Load.Retry == 0 {
		c.Load.Retry = time.Minute
	}
	if len(c.Load.DialOptions) == 0 {
		c.Load.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()), quickReconnect}
	}
}

// quickReconnect makes a client reconnect within 250ms of abmeshd's
// restart (gRPC's default backoff grows to minutes).
var quickReconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 250 * time.Millisecond},
	MinConnectTimeout: time.Second,
})

// Validate reports the first problems with c, after defaults.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Binary == "" {
		errs = append(errs, errors.New("Binary is required"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("Dir is required"))
	}
	if c.Kills < 1 || c.Kills > MaxKills {
		errs = append(errs, fmt.Errorf("Kills %d: want 1 to %d", c.Kills, MaxKills))
	}
	if c.MinUp <= 0 || c.MaxUp < c.MinUp || c.MaxUp > otlpload.MaxDuration/2 || c.After <= 0 || c.After > time.Minute {
		errs = append(errs, fmt.Errorf("MinUp %v, MaxUp %v, After %v: want 0 < MinUp ≤ MaxUp ≤ %v, 0 < After ≤ 1m", c.MinUp, c.MaxUp, c.After, otlpload.MaxDuration/2))
	}
	if c.Replicas < 0 || c.Replicas > MaxReplicas || c.Replicas > 1 && c.Store == "" {
		errs = append(errs, fmt.Errorf("Replicas %d: want 0 or 1 (one abmeshd), or 2 to %d with a Store", c.Replicas, MaxReplicas))
	}
	if c.Outage < 0 || c.Outage > time.Minute || c.AnswerDelay < 0 || c.AnswerDelay > time.Second {
		errs = append(errs, fmt.Errorf("Outage %v, AnswerDelay %v: want 0 to 1m, 0 to 1s", c.Outage, c.AnswerDelay))
	}
	if c.IdleTimeout <= 0 || c.FlushInterval <= 0 {
		errs = append(errs, errors.New("IdleTimeout and FlushInterval must be positive"))
	}
	load := c.Load
	load.Endpoint, load.Duration = "x:1", c.MaxUp+c.After
	if err := load.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("kill run config: %w", errors.Join(errs...))
	}
	return nil
}

// Trial is what one kill did. Acked, InDoubt and Counted are totals since
// the start of the run, after the trial.
type Trial struct {
	Kill     int           `json:"kill"`              // 1 to Kills; Kills+1 is the last kill, without load
	Replica  int           `json:"replica,omitempty"` // the replica killed, 1 to Replicas (0 without replicas)
	Up       time.Duration `json:"up"`                // load time before the kill
	WALKill  int64         `json:"wal_kill"`          // bytes in DATA/wal when killed
	WALMax   int64         `json:"wal_max"`           // most bytes in DATA/wal seen during the trial (sampled every 20ms)
	Restart  time.Duration `json:"restart"`           // from exec to both ports answering (replay included)
	Replayed int64         `json:"replayed"`          // write-ahead log records replayed on the restart
	Sent     int64         `json:"sent_spans"`        // spans acknowledged in the trial
	Retries  int64         `json:"retries"`           // requests the exporter sent again in the trial
	Acked    int64         `json:"acked"`             // traces acknowledged to the exporter
	InDoubt  int64         `json:"in_doubt"`          // traces the exporter gave up on after an error that may have reached abmeshd
	Counted  int64         `json:"counted"`           // traces counted: the window's seen (summed over replicas), once every trace completed
	// Moved is, with replicas, the traces of this trial's requests that
	// an attempt at the killed replica may have reached and a survivor
	// acknowledged: each may be held by both.
	Moved int64 `json:"moved,omitempty"`
	// HeldElsewhere is, with replicas, the traces of its log the restarted
	// replica left to the survivors because they held them (its
	// claims.traces_held_elsewhere); SpansClaimed the spans the survivors
	// dropped in the trial because the restarted replica claimed their
	// traces (their spans.claimed).
	HeldElsewhere int64 `json:"held_elsewhere,omitempty"`
	SpansClaimed  int64 `json:"spans_claimed,omitempty"`
	// WatchLag is, with replicas, the time from a config change on one
	// survivor, during the outage, to a Watch stream on another seeing it.
	WatchLag time.Duration `json:"watch_lag,omitempty"`
	// Unserved, with replicas, says what the survivors failed to serve
	// during the outage (Assign, or the Watch change within 5 s); empty
	// when they served.
	Unserved string `json:"unserved,omitempty"`
}

// OK reports whether every acknowledged trace was counted exactly once
// and, with replicas, the survivors served during the outage.
func (t Trial) OK() bool { return t.InDoubt == 0 && t.Counted == t.Acked && t.Unserved == "" }

// Report is what a run measured.
type Report struct {
	Trials []Trial `json:"trials"`
	Seed   uint64  `json:"seed"`
}

// OK reports whether every trial is OK.
func (r Report) OK() bool {
	for _, t := range r.Trials {
		if !t.OK() {
			return false
		}
	}
	return len(r.Trials) > 0
}

// Run does the run cfg describes and returns its report; the error is
// about the run itself (abmeshd would not start, an RPC failed), not the
// comparison, which Report.OK gives. abmeshd is killed when Run returns.
func Run(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	cfg.setDefaults()
	rep := Report{Seed: cfg.Seed}
	if entries, err := os.ReadDir(cfg.Dir); err == nil && len(entries) > 0 {
		return rep, fmt.Errorf("%s is not empty", cfg.Dir)
	}
	c, err := newCluster(cfg)
	if err != nil {
		return rep, err
	}
	defer c.stop()
	if err := c.start(ctx); err != nil {
		return rep, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b696c6c))
	var total Trial
	for k := 1; k <= cfg.Kills+1; k++ {
		up := time.Duration(0)
		if k <= cfg.Kills {
			up = cfg.MinUp + time.Duration(rng.Int64N(int64(cfg.MaxUp-cfg.MinUp)+1))
		}
		tr, err := c.trial(ctx, k, up)
		if err != nil {
			return rep, fmt.Errorf("kill %d: %w", k, err)
		}
		total.Acked += tr.Acked
		total.InDoubt += tr.InDoubt
		tr.Kill, tr.Acked, tr.InDoubt = k, total.Acked, total.InDoubt
		rep.Trials = append(rep.Trials, tr)
		if cfg.Log != nil {
			who := ""
			if tr.Replica > 0 {
				who = fmt.Sprintf(" of replica %d (down %v; %d traces moved to survivors, %d of its log's left to them, %d of their spans dropped as claimed; Watch lag %v%s)",
					tr.Replica, cfg.Outage, tr.Moved, tr.HeldElsewhere, tr.SpansClaimed,
					tr.WatchLag.Round(time.Millisecond), map[bool]string{true: "", false: "; unserved: " + tr.Unserved}[tr.Unserved == ""])
			}
			fmt.Fprintf(cfg.Log, "kill %d%s after %v: acked %d, in doubt %d, counted %d; WAL %d B at the kill, max %d B; restart %v, %d records replayed\n",
				k, who, tr.Up.Round(time.Millisecond), tr.Acked, tr.InDoubt, tr.Counted, tr.WALKill, tr.WALMax, tr.Restart.Round(time.Millisecond), tr.Replayed)
		}
	}
	return rep, nil
}

// cluster is the abmeshd processes of a run: one, or cfg.Replicas.
type cluster struct {
	cfg     Config
	daemons []*daemon
	down    []atomic.Bool // per daemon: killed and not yet restarted
}

// newCluster prepares the daemons of cfg (with defaults) in cfg.Dir.
func newCluster(cfg Config) (*cluster, error) {
	c := &cluster{cfg: cfg}
	if cfg.Replicas < 2 {
		d, err := newDaemon(cfg, cfg.Dir, cfg.Args)
		if err != nil {
			return nil, err
		}
		c.daemons = []*daemon{d}
	} else {
		args := append(slices.Clone(cfg.Args), "--store", cfg.Store)
		for i := range cfg.Replicas {
			d, err := newDaemon(cfg, filepath.Join(cfg.Dir, fmt.Sprintf("replica-%d", i+1)), args)
			if err != nil {
				c.stop()
				return nil, err
			}
			c.daemons = append(c.daemons, d)
		}
	}
	c.down = make([]atomic.Bool, len(c.daemons))
	return c, nil
}

// start starts every daemon, creates Experiment on the first and waits
// until every replica has it running.
func (c *cluster) start(ctx context.Context) error {
	for _, d := range c.daemons {
		if _, err := d.start(ctx); err != nil {
			return err
		}
	}
	if err := c.daemons[0].createExperiment(ctx); err != nil {
		return err
	}
	for i, d := range c.daemons[1:] {
		if err := d.awaitExperiment(ctx); err != nil {
			return fmt.Errorf("replica %d: %w", i+2, err)
		}
	}
	return nil
}

// stop kills every daemon.
func (c *cluster) stop() {
	for _, d := range c.daemons {
		d.stop()
	}
}

// route returns the daemon a request whose first trace id is id goes to:
// otlproute.Pick (FNV-1a) of id over the daemons that are up (all, when
// none is).
func (c *cluster) route(id [16]byte) int {
	up := make([]int, 0, len(c.daemons))
	for i := range c.daemons {
		if !c.down[i].Load() {
			up = append(up, i)
		}
	}
	if len(up) == 0 {
		return otlproute.Pick(id[:], len(c.daemons))
	}
	return up[otlproute.Pick(id[:], len(up))]
}

// load returns the exporter's configuration for a trial of duration d.
func (c *cluster) load(d time.Duration) otlpload.Config {
	load := c.cfg.Load
	load.Duration = d
	if len(c.daemons) == 1 {
		load.Endpoint = c.daemons[0].exporterAddr()
		return load
	}
	load.Endpoints = nil
	for _, d := range c.daemons {
		load.Endpoints = append(load.Endpoints, d.exporterAddr())
	}
	load.Route = c.route
	return load
}

// trial loads the daemons for up (none when up is 0), kills one (in
// turn), with replicas checks the survivors during cfg.Outage, restarts
// it while the load goes on for cfg.After, waits for the load to end and
// every trace to be counted, and returns what it saw (Acked and InDoubt
// of this trial only).
func (c *cluster) trial(ctx context.Context, k int, up time.Duration) (Trial, error) {
	tr := Trial{Up: up}
	vi := (k - 1) % len(c.daemons)
	victim := c.daemons[vi]
	if len(c.daemons) > 1 {
		tr.Replica = vi + 1
	}
	victim.walMax.Store(walBytes(victim.data))
	type loadDone struct {
		res otlpload.Result
		err error
	}
	done := make(chan loadDone, 1)
	if up > 0 {
		load := c.load(up + c.cfg.Outage + c.cfg.After)
		go func() {
			res, err := otlpload.Run(ctx, load)
			done <- loadDone{res, err}
		}()
		select {
		case <-ctx.Done():
			return tr, ctx.Err()
		case <-time.After(up):
		}
	} else {
		done <- loadDone{}
	}
	tr.WALKill = walBytes(victim.data)
	claimedBefore, err := c.sum(ctx, "spans.claimed", vi)
	if err != nil {
		return tr, err
	}
	if err := victim.kill(); err != nil {
		return tr, err
	}
	if len(c.daemons) > 1 {
		c.down[vi].Store(true)
		t0 := time.Now()
		tr.WatchLag, tr.Unserved = c.serveDuring(ctx, vi, k)
		if rest := c.cfg.Outage - time.Since(t0); rest > 0 {
			time.Sleep(rest)
		}
	}
	if tr.Restart, err = victim.start(ctx); err != nil {
		return tr, err
	}
	c.down[vi].Store(false)
	tr.Replayed = victim.replayed()
	if m, err := victim.counts(ctx); err == nil {
		tr.HeldElsewhere = m["claims.traces_held_elsewhere"]
	}
	ld := <-done
	if ld.err != nil {
		return tr, ld.err
	}
	tr.Sent, tr.Retries, tr.Acked, tr.InDoubt, tr.Moved = ld.res.Sent, ld.res.Retries, ld.res.Traces, ld.res.InDoubt, ld.res.Moved
	if tr.Counted, err = c.drain(ctx); err != nil {
		return tr, err
	}
	claimedAfter, err := c.sum(ctx, "spans.claimed", vi)
	if err != nil {
		return tr, err
	}
	tr.SpansClaimed = claimedAfter - claimedBefore
	tr.WALMax = victim.walMax.Load()
	return tr, nil
}

// serveDuring checks, while daemon victim is down, that every survivor
// answers Assign and that an override set on one survivor (trial k's)
// reaches a Watch stream on another (the next) within 5 s. It returns the
// Watch's lag, and what failed ("" when nothing did).
func (c *cluster) serveDuring(ctx context.Context, victim, k int) (time.Duration, string) {
	var survivors []*daemon
	for i, d := range c.daemons {
		if i != victim {
			survivors = append(survivors, d)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, d := range survivors {
		r, err := pb.NewAssignmentServiceClient(d.conn).Assign(ctx, &pb.AssignRequest{UnitId: "user-0000000001"})
		if err != nil || len(r.GetAssignments()) != 1 {
			return 0, fmt.Sprintf("Assign on %s: %v (%d assignments)", d.api, err, len(r.GetAssignments()))
		}
	}
	writer, watcher := survivors[0], survivors[len(survivors)-1]
	stream, err := pb.NewAssignmentServiceClient(watcher.conn).Watch(ctx, &pb.WatchRequest{})
	if err == nil {
		_, err = stream.Recv() // the current config
	}
	if err != nil {
		return 0, fmt.Sprintf("Watch on %s: %v", watcher.api, err)
	}
	unit := fmt.Sprintf("killrun-outage-%d", k)
	t0 := time.Now()
	_, err = pb.NewExperimentServiceClient(writer.conn).SetOverride(ctx, &pb.SetOverrideRequest{Override: &pb.Override{ExperimentId: Experiment, UnitId: unit, Variant: "control"}})
	if err != nil {
		return 0, fmt.Sprintf("SetOverride on %s: %v", writer.api, err)
	}
	for {
		snap, err := stream.Recv()
		if err != nil {
			return 0, fmt.Sprintf("Watch on %s did not see an override set on %s: %v", watcher.api, writer.api, err)
		}
		for _, o := range snap.GetOverrides() {
			if o.GetUnitId() == unit {
				return time.Since(t0), ""
			}
		}
	}
}

// drain waits until no daemon holds a trace in flight and the sum of their
// counts of seen traces stayed the same for two idle timeouts, and
// returns it.
func (c *cluster) drain(ctx context.Context) (int64, error) {
	wait := c.cfg.IdleTimeout*10 + 30*time.Second
	deadline := time.Now().Add(wait)
	last, since := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		var seen, inFlight int64
		for _, d := range c.daemons {
			m, err := d.counts(ctx)
			if err != nil {
				return 0, err
			}
			seen += m["cells.seen"]
			inFlight += m["traces.in_flight"]
		}
		if seen != last || inFlight != 0 {
			last, since = seen, time.Now()
		} else if time.Since(since) >= 2*c.cfg.IdleTimeout {
			return seen, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("traces still in flight or being counted after %v", wait)
}

// sum returns the sum of counter name over the daemons but not.
func (c *cluster) sum(ctx context.Context, name string, not int) (int64, error) {
	var n int64
	for i, d := range c.daemons {
		if i == not {
			continue
		}
		m, err := d.counts(ctx)
		if err != nil {
			return 0, err
		}
		n += m[name]
	}
	return n, nil
}

// daemon is one abmeshd process of a run, restarted on the same
// directory.
type daemon struct {
	cfg       Config
	dir       string // its data directory (dir/data) and logs
	args      []string
	data      string
	api, otlp string
	starts    int
	cmd       *exec.Cmd
	exited    chan struct{}
	conn      *grpc.ClientConn
	proxy     *slowAnswers // nil without Config.AnswerDelay
	walMax    atomic.Int64
	sampling  sync.WaitGroup
	stopWatch chan struct{}
}

// newDaemon prepares dir for a daemon run with more flags args and picks
// two free loopback ports.
func newDaemon(cfg Config, dir string, args []string) (*daemon, error) {
	d := &daemon{cfg: cfg, dir: dir, args: args, data: filepath.Join(dir, "data"), stopWatch: make(chan struct{})}
	if err := os.MkdirAll(d.data, 0o755); err != nil {
		return nil, err
	}
	var err error
	if d.api, err = freePort(); err != nil {
		return nil, err
	}
	if d.otlp, err = freePort(); err != nil {
		return nil, err
	}
	if d.conn, err = grpc.NewClient(d.api, grpc.WithTransportCredentials(insecure.NewCredentials()), quickReconnect); err != nil {
		return nil, err
	}
	if cfg.AnswerDelay > 0 {
		if d.proxy, err = newSlowAnswers(d.otlp, cfg.AnswerDelay); err != nil {
			d.conn.Close()
			return nil, err
		}
	}
	d.sampling.Go(d.sampleWAL)
	return d, nil
}

// exporterAddr is where the exporter sends to: the proxy, if any, else
// the OTLP port.
func (d *daemon) exporterAddr() string {
	if d.proxy != nil {
		return d.proxy.Addr()
	}
	return d.otlp
}

// freePort returns a loopback address nothing listens on now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start starts abmeshd and waits until its API and OTLP ports answer; it
// returns the time that took.
func (d *daemon) start(ctx context.Context) (time.Duration, error) {
	d.starts++
	logf, err := os.Create(filepath.Join(d.dir, fmt.Sprintf("abmeshd-%d.log", d.starts)))
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	args := append([]string{"--data-dir", d.data, "--listen", d.api, "--otlp-listen", d.otlp, "--http-listen", "off",
		"--trace-idle-timeout", d.cfg.IdleTimeout.String(), "--flush-interval", d.cfg.FlushInterval.String(), "--log-level", "info"},
		d.args...)
	cmd := exec.Command(d.cfg.Binary, args...)
	cmd.Env = append(os.Environ(), d.cfg.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	d.cmd, d.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { cmd.Wait(); close(exited) }(d.exited)
	deadline := time.Now().Add(readyTimeout)
	for {
		if err := d.ready(ctx); err == nil {
			return time.Since(t0), nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("abmeshd not ready after %v (log %s): %w", time.Since(t0).Round(time.Millisecond), logf.Name(), err)
		}
		select {
		case <-d.exited:
			return 0, fmt.Errorf("abmeshd exited on start: %v (log %s)", cmd.ProcessState, logf.Name())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ready reports whether the OTLP port accepts connections and GetStatus
// answers.
func (d *daemon) ready(ctx context.Context) error {
	c, err := net.DialTimeout("tcp", d.otlp, 100*time.Millisecond)
	if err != nil {
		return err
	}
	c.Close()
	_, err = d.counts(ctx)
	return err
}

// kill kills abmeshd with SIGKILL and waits for it to be gone.
func (d *daemon) kill() error {
	if d.cmd == nil {
		return nil
	}
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-d.exited
	d.cmd = nil
	return nil
}

// stop kills abmeshd and ends the sampling.
func (d *daemon) stop() {
	d.kill()
	close(d.stopWatch)
	d.sampling.Wait()
	d.conn.Close()
	if d.proxy != nil {
		d.proxy.close()
	}
}

// sampleWAL records the most bytes DATA/wal holds, every 20ms.
func (d *daemon) sampleWAL() {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.stopWatch:
			return
		case <-t.C:
			if n := walBytes(d.data); n > d.walMax.Load() {
				d.walMax.Store(n)
			}
		}
	}
}

// walBytes is the size of the files in dir/wal (files deleted meanwhile
// are skipped).
func walBytes(dir string) int64 {
	entries, _ := os.ReadDir(filepath.Join(dir, "wal"))
	var n int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}

// createExperiment creates and starts Experiment, changed and measured on
// the generator's frontend service.
func (d *daemon) createExperiment(ctx context.Context) error {
	c := pb.NewExperimentServiceClient(d.conn)
	_, err := c.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: &pb.Experiment{
		Id: Experiment, Owner: "killrun", ChangeService: "frontend", MeasureService: "frontend",
		Metric:   &pb.Metric{Name: "latency_ms", Direction: pb.MetricDirection_METRIC_DIRECTION_LOWER_IS_BETTER},
		Variants: []*pb.Variant{{Name: "control", Weight: 1}, {Name: "treatment", Weight: 1}},
		Plan:     &pb.AnalysisPlan{MinimumDetectableEffect: 1, StandardDeviation: 5},
	}})
	if err != nil {
		return fmt.Errorf("create %s: %w", Experiment, err)
	}
	if _, err := c.StartExperiment(ctx, &pb.StartExperimentRequest{Id: Experiment}); err != nil {
		return fmt.Errorf("start %s: %w", Experiment, err)
	}
	return nil
}

// awaitExperiment waits (at most 10 s) until the daemon has Experiment
// running: another replica created it.
func (d *daemon) awaitExperiment(ctx context.Context) error {
	c := pb.NewExperimentServiceClient(d.conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := c.GetExperiment(ctx, &pb.GetExperimentRequest{Id: Experiment})
		if err == nil && r.GetExperiment().GetStatus() == pb.ExperimentStatus_EXPERIMENT_STATUS_RUNNING {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not running after 10 s: %v", Experiment, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// counts returns abmeshd's counters by name (GetStatus).
func (d *daemon) counts(ctx context.Context) (map[string]int64, error) {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := pb.NewReportServiceClient(d.conn).GetStatus(cctx, &pb.GetStatusRequest{})
	if err != nil {
		return nil, err
	}
	m := make(map[string]int64, len(resp.GetCounters()))
	for _, c := range resp.GetCounters() {
		m[c.GetName()] = c.GetValue()
	}
	return m, nil
}

// replayedRE finds the record count of abmeshd's "write-ahead log
// replayed" log line.
var replayedRE = regexp.MustCompile(`write-ahead log replayed.* records=(\d+)`)

// replayed returns the records the last start replayed, from its log (-1
// when the line is missing).
func (d *daemon) replayed() int64 {
	f, err := os.Open(filepath.Join(d.dir, fmt.Sprintf("abmeshd-%d.log", d.starts)))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := replayedRE.FindStringSubmatch(sc.Text()); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			return n
		}
	}
	return -1
}
