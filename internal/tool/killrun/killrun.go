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
// "abmesh bench crash" runs it against a built abmeshd; cmd/abmeshd's
// TestKill9LosesNoAcknowledgedTrace runs it at small scale.
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
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/tracing/otlpload"
)

// Experiment is the id of the experiment Run creates: the flag key that
// otlpload puts on every trace's root span.
const Experiment = "new-home"

// MaxKills bounds Config.Kills.
const MaxKills = 100

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
	// (Dir/abmeshd-N.log); it must be empty or absent.
	Dir string
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
	Kill     int           `json:"kill"`       // 1 to Kills; Kills+1 is the last kill, without load
	Up       time.Duration `json:"up"`         // load time before the kill
	WALKill  int64         `json:"wal_kill"`   // bytes in DATA/wal when killed
	WALMax   int64         `json:"wal_max"`    // most bytes in DATA/wal seen during the trial (sampled every 20ms)
	Restart  time.Duration `json:"restart"`    // from exec to both ports answering (replay included)
	Replayed int64         `json:"replayed"`   // write-ahead log records replayed on the restart
	Sent     int64         `json:"sent_spans"` // spans acknowledged in the trial
	Retries  int64         `json:"retries"`    // requests the exporter sent again in the trial
	Acked    int64         `json:"acked"`      // traces acknowledged to the exporter
	InDoubt  int64         `json:"in_doubt"`   // traces the exporter gave up on after an error that may have reached abmeshd
	Counted  int64         `json:"counted"`    // traces counted: the window's seen, once every trace completed
}

// OK reports whether every acknowledged trace was counted exactly once.
func (t Trial) OK() bool { return t.InDoubt == 0 && t.Counted == t.Acked }

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
	d, err := newDaemon(cfg)
	if err != nil {
		return rep, err
	}
	defer d.stop()
	if _, err := d.start(ctx); err != nil {
		return rep, err
	}
	if err := d.createExperiment(ctx); err != nil {
		return rep, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b696c6c))
	var total Trial
	for k := 1; k <= cfg.Kills+1; k++ {
		up := time.Duration(0)
		if k <= cfg.Kills {
			up = cfg.MinUp + time.Duration(rng.Int64N(int64(cfg.MaxUp-cfg.MinUp)+1))
		}
		tr, err := d.trial(ctx, up)
		if err != nil {
			return rep, fmt.Errorf("kill %d: %w", k, err)
		}
		total.Acked += tr.Acked
		total.InDoubt += tr.InDoubt
		tr.Kill, tr.Acked, tr.InDoubt = k, total.Acked, total.InDoubt
		rep.Trials = append(rep.Trials, tr)
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "kill %d after %v: acked %d, in doubt %d, counted %d; WAL %d B at the kill, max %d B; restart %v, %d records replayed\n",
				k, tr.Up.Round(time.Millisecond), tr.Acked, tr.InDoubt, tr.Counted, tr.WALKill, tr.WALMax, tr.Restart.Round(time.Millisecond), tr.Replayed)
		}
	}
	return rep, nil
}

// daemon is the abmeshd process of a run.
type daemon struct {
	cfg       Config
	data      string
	api, otlp string
	starts    int
	cmd       *exec.Cmd
	exited    chan struct{}
	conn      *grpc.ClientConn
	walMax    atomic.Int64
	sampling  sync.WaitGroup
	stopWatch chan struct{}
}

// newDaemon prepares cfg.Dir and picks two free loopback ports.
func newDaemon(cfg Config) (*daemon, error) {
	d := &daemon{cfg: cfg, data: filepath.Join(cfg.Dir, "data"), stopWatch: make(chan struct{})}
	if entries, err := os.ReadDir(cfg.Dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty", cfg.Dir)
	}
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
	d.sampling.Go(d.sampleWAL)
	return d, nil
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
	logf, err := os.Create(filepath.Join(d.cfg.Dir, fmt.Sprintf("abmeshd-%d.log", d.starts)))
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	args := append([]string{"--data-dir", d.data, "--listen", d.api, "--otlp-listen", d.otlp, "--http-listen", "off",
		"--trace-idle-timeout", d.cfg.IdleTimeout.String(), "--flush-interval", d.cfg.FlushInterval.String(), "--log-level", "info"},
		d.cfg.Args...)
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

// trial loads abmeshd for up (none when up is 0), kills it, restarts it
// while the load goes on for cfg.After, waits for the load to end and
// every trace to be counted, and returns what it saw (Acked and InDoubt
// of this trial only).
func (d *daemon) trial(ctx context.Context, up time.Duration) (Trial, error) {
	tr := Trial{Up: up}
	d.walMax.Store(walBytes(d.data))
	type loadDone struct {
		res otlpload.Result
		err error
	}
	done := make(chan loadDone, 1)
	if up > 0 {
		load := d.cfg.Load
		load.Endpoint, load.Duration = d.otlp, up+d.cfg.After
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
	tr.WALKill = walBytes(d.data)
	if err := d.kill(); err != nil {
		return tr, err
	}
	var err error
	if tr.Restart, err = d.start(ctx); err != nil {
		return tr, err
	}
	tr.Replayed = d.replayed()
	ld := <-done
	if ld.err != nil {
		return tr, ld.err
	}
	tr.Sent, tr.Retries, tr.Acked, tr.InDoubt = ld.res.Sent, ld.res.Retries, ld.res.Traces, ld.res.InDoubt
	if tr.Counted, err = d.drain(ctx); err != nil {
		return tr, err
	}
	tr.WALMax = d.walMax.Load()
	return tr, nil
}

// drain waits until abmeshd holds no trace in flight and its count of
// seen traces stayed the same for two idle timeouts, and returns it.
func (d *daemon) drain(ctx context.Context) (int64, error) {
	deadline := time.Now().Add(d.cfg.IdleTimeout*10 + 30*time.Second)
	last, since := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		m, err := d.counts(ctx)
		if err != nil {
			return 0, err
		}
		seen := m["cells.seen"]
		if seen != last || m["traces.in_flight"] != 0 {
			last, since = seen, time.Now()
		} else if time.Since(since) >= 2*d.cfg.IdleTimeout {
			return seen, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("traces still in flight or being counted after %v", time.Since(deadline.Add(-d.cfg.IdleTimeout*10-30*time.Second)).Round(time.Second))
}

// replayedRE finds the record count of abmeshd's "write-ahead log
// replayed" log line.
var replayedRE = regexp.MustCompile(`write-ahead log replayed.* records=(\d+)`)

// replayed returns the records the last start replayed, from its log (-1
// when the line is missing).
func (d *daemon) replayed() int64 {
	f, err := os.Open(filepath.Join(d.cfg.Dir, fmt.Sprintf("abmeshd-%d.log", d.starts)))
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
