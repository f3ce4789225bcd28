package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// ErrNoService is returned by New when WithService is missing.
var ErrNoService = errors.New("client: WithService is required")

// Client evaluates a service's A/B tests locally from the assignment
// configuration it receives from abmeshd's Watch stream, and records what
// it serves on the request's span. It is safe for concurrent use.
//
// Evaluation never makes an RPC and never fails: every configuration
// received is compiled once into an assign.Engine and swapped in
// atomically; while abmeshd is unreachable the Client keeps the last one.
// Before the first snapshot it knows no test, and answers with the
// fallback (see Variant).
type Client struct {
	cfg  config
	view atomic.Pointer[view]

	// Watch loop; nil for NewStatic.
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan struct{}

	ready     chan struct{}
	readyOnce sync.Once
	closeOnce sync.Once
	closeErr  error

	snapshots    atomic.Uint64
	rejected     atomic.Uint64
	reconnects   atomic.Uint64
	connected    atomic.Bool
	lastSnapshot atomic.Int64 // unix nanoseconds
}

// view is one compiled configuration with what the Client precomputes
// for its service.
type view struct {
	eng    *assign.Engine
	filter assign.Filter
	// unitless is what a request without a valid unit is served in the
	// service's non-draft tests: the winner of a concluded test
	// (ReasonWinner), else the control (ReasonPaused when paused,
	// ReasonFallback when running).
	unitless []assign.Assignment
}

func newView(eng *assign.Engine, service string) *view {
	v := &view{eng: eng, filter: assign.Filter{Service: service}}
	cfg := eng.Config()
	for i := range cfg.Experiments {
		x := &cfg.Experiments[i]
		if (service != "" && x.ChangeService != service) || x.Status == assign.StatusDraft {
			continue
		}
		v.unitless = append(v.unitless, unitless(x))
	}
	return v
}

// unitless is x's assignment for a request without a valid unit.
func unitless(x *assign.Experiment) assign.Assignment {
	a := assign.Assignment{Test: x.ID, Variant: x.Variants[0].Name, Reason: assign.ReasonFallback, Phase: x.Phase}
	switch x.Status {
	case assign.StatusConcluded:
		a.Variant, a.Reason = x.Winner, assign.ReasonWinner
	case assign.StatusPaused, assign.StatusDraft:
		a.Reason = assign.ReasonPaused
	}
	return a
}

// New returns a Client that watches the assignment configuration of
// abmeshd at target (a gRPC target such as "127.0.0.1:7070" or
// "dns:///abmeshd:7070"). It does not wait for the connection: the Watch
// stream runs in the background, reconnecting with Backoff whenever it
// breaks, and Ready is closed when the first snapshot is in. Options:
// WithService (required), WithBaggageKey, WithDialOptions, WithToken,
// WithTLS, WithBackoff, WithLogger, WithAttributes, WithRoutingHeaders,
// WithWatchHook.
//
// Errors: ErrNoService; an invalid baggage key or Backoff
// (ErrInvalidBackoff); a target or dial options grpc.NewClient rejects.
// Close releases the Client.
func New(target string, opts ...Option) (*Client, error) {
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.service == "" {
		return nil, ErrNoService
	}
	b := cfg.backoff
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// The limit abmeshd sends Watch snapshots with; every configuration
		// it accepts (assign.MaxConfigBytes) fits.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(assign.ConfigMessageLimit)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: b.Initial, Multiplier: b.Multiplier, Jitter: b.Jitter, MaxDelay: b.Max},
			MinConnectTimeout: 5 * time.Second,
		}),
	}, cfg.dial...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("client: abmeshd %q: %w", target, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{cfg: cfg, conn: conn, cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
	go c.watch(ctx, pb.NewAssignmentServiceClient(conn))
	return c, nil
}

// NewStatic returns a Client that serves cfg forever and never connects:
// for tests, offline tools and services that load their configuration
// from a file. It is ready at once; Close is a no-op. It accepts the same
// options as New (the connection options are ignored); without
// WithService it evaluates every test of cfg. The error, if any, is
// assign.Compile's.
func NewStatic(cfg assign.Config, opts ...Option) (*Client, error) {
	conf, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	eng, err := assign.Compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{cfg: conf, ready: make(chan struct{})}
	c.install(eng)
	return c, nil
}

// install swaps in a compiled configuration.
func (c *Client) install(eng *assign.Engine) {
	c.view.Store(newView(eng, c.cfg.service))
	c.lastSnapshot.Store(time.Now().UnixNano())
	c.readyOnce.Do(func() { close(c.ready) })
}

// Close stops the Watch stream, waits for its goroutine and closes the
// connection to abmeshd. The Client keeps evaluating from its last
// snapshot after Close. Close is idempotent; it returns the connection's
// close error, if any.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		if c.conn == nil {
			return
		}
		c.cancel()
		<-c.done
		c.closeErr = c.conn.Close()
	})
	return c.closeErr
}

// Ready returns a channel closed once the first configuration snapshot
// has been installed. It is never closed if none ever arrives.
func (c *Client) Ready() <-chan struct{} { return c.ready }

// WaitReady blocks until the first snapshot has been installed (nil) or
// ctx is done (ctx's error). A service may call it at start with a short
// timeout; it need not, since until then it serves the fallback.
func (c *Client) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Engine returns the compiled configuration the Client currently
// evaluates, or nil before the first snapshot (a nil *assign.Engine is an
// empty configuration). It must not be modified.
func (c *Client) Engine() *assign.Engine {
	if v := c.view.Load(); v != nil {
		return v.eng
	}
	return nil
}

// Stats is a point-in-time view of a Client's counters.
type Stats struct {
	// ConfigVersion is the version of the configuration in use; 0 before
	// the first snapshot.
	ConfigVersion uint64
	// Ready reports whether a snapshot has ever been installed.
	Ready bool
	// Connected reports whether a Watch stream is open and has delivered
	// its first snapshot. Always false for NewStatic.
	Connected bool
	// SnapshotsReceived counts snapshots received from Watch, installed
	// or not.
	SnapshotsReceived uint64
	// SnapshotsRejected counts snapshots that did not convert or compile;
	// the Client kept its previous configuration.
	SnapshotsRejected uint64
	// Reconnects counts Watch attempts after the first one: each broken
	// stream or failed attempt adds one.
	Reconnects uint64
	// LastSnapshot is when the configuration in use was installed; zero
	// before the first.
	LastSnapshot time.Time
}

// Stats returns the Client's counters.
func (c *Client) Stats() Stats {
	s := Stats{
		ConfigVersion:     c.Engine().Version(),
		Connected:         c.connected.Load(),
		SnapshotsReceived: c.snapshots.Load(),
		SnapshotsRejected: c.rejected.Load(),
		Reconnects:        c.reconnects.Load(),
	}
	select {
	case <-c.ready:
		s.Ready = true
		s.LastSnapshot = time.Unix(0, c.lastSnapshot.Load())
	default:
	}
	return s
}

// watch runs Watch streams until ctx is done, backing off between
// attempts.
func (c *Client) watch(ctx context.Context, api pb.AssignmentServiceClient) {
	defer close(c.done)
	log := c.cfg.logger
	attempt := 0
	for {
		got, err := c.stream(ctx, api)
		c.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		if got > 0 {
			attempt = 0
			c.notify(WatchDisconnected, err)
			log.Warn("abmesh: config stream broke; serving the last snapshot", "service", c.cfg.service, "config_version", c.Engine().Version(), "err", err)
		} else if attempt == 0 {
			log.Warn("abmesh: cannot watch config; retrying", "service", c.cfg.service, "ready", c.Stats().Ready, "err", err)
		} else {
			log.Debug("abmesh: watch attempt failed", "attempt", attempt, "err", err)
		}
		t := time.NewTimer(c.cfg.backoff.Delay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		attempt++
		c.reconnects.Add(1)
	}
}

// stream runs one Watch stream until it breaks; it returns the number of
// snapshots it delivered and the error that ended it.
func (c *Client) stream(ctx context.Context, api pb.AssignmentServiceClient) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := api.Watch(ctx, &pb.WatchRequest{Service: c.cfg.service})
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		snap, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("abmeshd ended the stream")
			}
			return n, err
		}
		n++
		c.snapshots.Add(1)
		if n == 1 {
			c.connected.Store(true)
			c.cfg.logger.Info("abmesh: watching config", "service", c.cfg.service, "config_version", snap.GetVersion())
			c.notify(WatchConnected, nil)
		}
		c.apply(snap)
	}
}

// apply compiles and installs a snapshot. (A stream never repeats a
// version; a new stream's first snapshot is compiled even when its version
// is the one in use, since a restarted abmeshd may reuse versions.)
func (c *Client) apply(snap *pb.ConfigSnapshot) {
	cfg, err := protoconv.SnapshotFromProto(snap)
	var eng *assign.Engine
	if err == nil {
		eng, err = assign.Compile(cfg)
	}
	if err != nil {
		c.rejected.Add(1)
		c.cfg.logger.Error("abmesh: rejected config snapshot; keeping the previous one",
			"service", c.cfg.service, "config_version", snap.GetVersion(), "err", err)
		return
	}
	c.install(eng)
	c.cfg.logger.Debug("abmesh: config installed", "config_version", eng.Version())
	c.notify(WatchInstalled, nil)
}
