package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/otlproute"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// MaxReplicas is the most abmeshd replicas the demo runs (Config.Replicas):
// they share one machine with the mesh.
const MaxReplicas = 16

// cluster is the demo's abmeshd: one, or Config.Replicas replicas sharing
// a PostgreSQL store. The first serves the SDKs, the edge and the reports
// (merged from every replica with a shared store).
type cluster struct {
	reps []*daemon.Daemon
	// ref, in tests only (Config.reference), is one more abmeshd with its
	// own store that gets every span and admin change: the single node the
	// replicas' merged reports must equal.
	ref *daemon.Daemon
	// tally counts the traces and spans routed to each replica; nil with
	// one abmeshd.
	tally *otlproute.Tally
}

// startCluster starts cfg.Replicas replicas of dcfg on cfg.Store (one
// abmeshd of dcfg without replicas): the first on dcfg's addresses, the
// others on free loopback ports, without the edge, each with its own data
// directory (DataDir/replica-N, or a temporary one). The shared database
// must hold no configuration yet: the analysis state of an earlier run
// would merge into this one's windows.
func startCluster(ctx context.Context, cfg Config, dcfg daemon.Config) (*cluster, error) {
	c := &cluster{}
	ok := false
	defer func() {
		if !ok {
			c.stop()
		}
	}()
	n := max(cfg.Replicas, 1)
	for i := range n {
		rc := dcfg
		if cfg.Replicas > 0 {
			rc.Store = cfg.Store
			if cfg.DataDir != "" {
				rc.DataDir = filepath.Join(cfg.DataDir, fmt.Sprintf("replica-%d", i+1))
			}
		}
		if i > 0 {
			rc.Listen, rc.HTTPListen, rc.EdgeListen = "127.0.0.1:0", "127.0.0.1:0", "off"
			if rc.OTLPListen != "off" {
				rc.OTLPListen = "127.0.0.1:0"
			}
		}
		d, err := daemon.Start(ctx, rc)
		if err != nil {
			if cfg.Replicas > 0 {
				return nil, fmt.Errorf("replica %d: %w", i+1, err)
			}
			return nil, err
		}
		c.reps = append(c.reps, d)
	}
	if v := c.reps[0].Registry().Version(); cfg.Replicas > 0 && v != 0 {
		return nil, fmt.Errorf("demo: the database %s already holds a configuration (version %d), and the state of an earlier run would be merged into this one's: give the demo an empty database", redact(cfg.Store), v)
	}
	if cfg.Replicas > 0 {
		c.tally = otlproute.NewTally(n, cfg.Routes)
	}
	if cfg.reference {
		rc := dcfg
		rc.Store, rc.DataDir = "", ""
		rc.Listen, rc.OTLPListen, rc.HTTPListen, rc.EdgeListen = "127.0.0.1:0", "127.0.0.1:0", "off", "off"
		ref, err := daemon.Start(ctx, rc)
		if err != nil {
			return nil, fmt.Errorf("reference abmeshd: %w", err)
		}
		c.ref = ref
	}
	ok = true
	return c, nil
}

// announce says, with replicas, where the other replicas listen and
// which database they share (res.Store, without its password).
func (c *cluster) announce(say func(format string, args ...any), cfg Config, res *Result) {
	if cfg.Replicas == 0 {
		return
	}
	res.Store = redact(cfg.Store)
	for i, r := range c.reps[1:] {
		say("replica %d: gRPC %s, OTLP %s, reports http://%s/", i+2, r.Addr(), r.OTLPAddr(), r.HTTPAddr())
	}
	say("%d replicas share %s; each trace's spans go to one replica, picked by FNV-1a of its trace id", cfg.Replicas, res.Store)
}

// redact is a store URL without its password.
func redact(store string) string {
	u, err := url.Parse(store)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func (c *cluster) stop() {
	for _, d := range append(c.reps, c.ref) {
		if d != nil {
			d.Stop()
		}
	}
}

// first is the abmeshd the SDKs, the edge and the reports use.
func (c *cluster) first() *daemon.Daemon { return c.reps[0] }

// all is every abmeshd that counts spans: the replicas and the reference.
func (c *cluster) all() []*daemon.Daemon {
	if c.ref == nil {
		return c.reps
	}
	return append(c.reps[:len(c.reps):len(c.reps)], c.ref)
}

// otlp returns the replicas' OTLP receivers, for routing; nil with one
// abmeshd.
func (c *cluster) otlp() []string {
	if c.tally == nil {
		return nil
	}
	var out []string
	for _, d := range c.reps {
		out = append(out, d.OTLPAddr())
	}
	return out
}

// mirror is the reference's OTLP receiver, "" without one.
func (c *cluster) mirror() string {
	if c.ref == nil {
		return ""
	}
	return c.ref.OTLPAddr()
}

// adminWait bounds how long an admin change may take to reach every
// replica (LISTEN/NOTIFY, well under a second).
const adminWait = 10 * time.Second

// admin makes the change f on the first abmeshd (and the reference) and
// waits until every replica has its configuration version, so that all
// open the same windows: a replica that took two quick changes in one
// reload could open one window fewer.
func (c *cluster) admin(ctx context.Context, f func(*assign.Registry) error) error {
	for _, d := range []*daemon.Daemon{c.first(), c.ref} {
		if d != nil {
			if err := f(d.Registry()); err != nil {
				return err
			}
		}
	}
	want := c.first().Registry().Version()
	for deadline := time.Now().Add(adminWait); ; {
		behind := -1
		for i, d := range c.reps {
			if d.Registry().Version() < want {
				behind = i
				break
			}
		}
		if behind < 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica %d did not get configuration version %d within %s", behind+1, want, adminWait)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// awaitWindows waits, with replicas, until every replica's current window
// of each test in exps is the first replica's (same seq and members: the
// leader opens windows and the others adopt them), so that users' traffic
// is counted in the same windows everywhere. It gives up after adminWait.
func (c *cluster) awaitWindows(ctx context.Context, exps []string) error {
	if len(c.reps) < 2 {
		return nil
	}
	same := func(a, b subset.WindowCells) bool {
		return a.Seq == b.Seq && slices.EqualFunc(a.Members, b.Members, func(x, y subset.WindowMember) bool { return x.Test == y.Test })
	}
	for deadline := time.Now().Add(adminWait); ; {
		differ := ""
	check:
		for _, id := range exps {
			w, _ := c.first().Windows().Current(id)
			for i, d := range c.reps[1:] {
				if o, _ := d.Windows().Current(id); !same(w, o) {
					differ = fmt.Sprintf("%s: replica %d has window %d, replica 1 window %d", id, i+2, o.Seq, w.Seq)
					break check
				}
			}
		}
		if differ == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the replicas' windows differ after %s (%s)", adminWait, differ)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// refreshGraph hands every abmeshd's subsetter its service graph.
func (c *cluster) refreshGraph() {
	for _, d := range c.all() {
		d.RefreshGraph()
	}
}

// stats is the replicas' assembler counters summed.
func (c *cluster) stats() tracing.AssemblyStats {
	var s tracing.AssemblyStats
	for _, d := range c.reps {
		s.Add(d.Assembler().Stats())
	}
	return s
}

// awaitMerged waits, with replicas, until the merged report of each test
// in exps counts what the replicas counted themselves: every replica has
// flushed its last counts. It gives up after wait, when the replicas
// disagree on a window (the report then shows the first replica's own
// counts).
func (c *cluster) awaitMerged(ctx context.Context, exps []string, wait time.Duration) error {
	if c.tally == nil {
		return nil
	}
	for deadline := time.Now().Add(wait); ; {
		lagging := ""
		for _, id := range exps {
			var own int64
			for _, d := range c.reps {
				w, _ := d.Windows().Current(id)
				own += w.Quality.Counted
			}
			r, err := c.first().Reports().Report(ctx, id, 0, report.Options{})
			if err != nil || r.Window.Quality.Counted != own {
				lagging = id
				break
			}
		}
		if lagging == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the merged report of %s does not count what the replicas counted after %s: they disagree on its window, or a flush is late", lagging, wait)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return errors.Join(err, fmt.Errorf("waiting for the merged report of %s", lagging))
		}
	}
}

// Replica is one abmeshd replica of a run with Config.Replicas.
type Replica struct {
	Addr, OTLPAddr, HTTPAddr string
	// Routed is what the services' exporters sent it: spans, and traces
	// (their root spans).
	Routed otlproute.Count
	// Counters are its own assembler's.
	Counters tracing.AssemblyStats
}

// replicas describes each replica; nil with one abmeshd.
func (c *cluster) replicas() []Replica {
	if c.tally == nil {
		return nil
	}
	routed := c.tally.Counts()
	var out []Replica
	for i, d := range c.reps {
		out = append(out, Replica{Addr: d.Addr(), OTLPAddr: d.OTLPAddr(), HTTPAddr: d.HTTPAddr(), Routed: routed[i], Counters: d.Assembler().Stats()})
	}
	return out
}

// writeReplicas prints, with replicas, where the traces went: per replica
// the traces and spans routed to it (and its share of the traces), and
// what it received and counted itself.
func writeReplicas(w io.Writer, res *Result) {
	if len(res.Replicas) == 0 {
		return
	}
	var traces int64
	for _, r := range res.Replicas {
		traces += r.Routed.Traces
	}
	fmt.Fprintf(w, "\n%d replicas share %s. Each trace (warm-up included) went to one, picked by FNV-1a of its trace id, as a Collector's load-balancing exporter (routing_key traceID) routes; the reports below are read on replica 1, merged from all:\n",
		len(res.Replicas), res.Store)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "replica\tgRPC\tOTLP\ttraces routed\tshare\tspans routed\tspans received\ttraces counted\t")
	for i, r := range res.Replicas {
		share := 0.0
		if traces > 0 {
			share = 100 * float64(r.Routed.Traces) / float64(traces)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%.1f%%\t%d\t%d\t%d\t\n", i+1, r.Addr, r.OTLPAddr, r.Routed.Traces, share, r.Routed.Spans,
			r.Counters.SpansReceived, r.Counters.TracesCompleted)
	}
	tw.Flush()
}
