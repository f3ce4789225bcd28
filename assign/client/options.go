package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"google.golang.org/grpc"
)

// Option configures New and NewStatic.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	service    string
	baggageKey string
	dial       []grpc.DialOption
	backoff    Backoff
	logger     *slog.Logger
	attrs      func(context.Context) map[string]string
	routing    bool
	hooks      []func(WatchEvent)
}

// WithService names the service the Client works for: the change service
// (assign.Experiment.ChangeService) whose tests the server interceptors and
// Evaluate evaluate and record on every request. New requires it. For
// NewStatic an empty name means every test of the configuration.
func WithService(name string) Option {
	return optionFunc(func(c *config) { c.service = name })
}

// WithBaggageKey sets the W3C baggage member key that carries the unit id
// (DefaultBaggageKey by default). It must be a valid baggage key (an
// RFC 7230 token). The package-level WithUnit and UnitFromContext always
// use DefaultBaggageKey; the Client's methods of the same names use this
// key.
func WithBaggageKey(key string) Option {
	return optionFunc(func(c *config) { c.baggageKey = key })
}

// WithDialOptions adds gRPC dial options for the connection to abmeshd.
// They are applied after the Client's defaults (insecure transport
// credentials, connect backoff from WithBackoff), so they override them,
// e.g. grpc.WithTransportCredentials for TLS. Do not add otelgrpc here:
// the Watch stream is long-lived and would be one endless span.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return optionFunc(func(c *config) { c.dial = append(c.dial, opts...) })
}

// WithBackoff sets the reconnection backoff of the Watch stream
// (DefaultBackoff by default). It is also the gRPC connection's connect
// backoff, so that the channel retries as often as the stream does.
func WithBackoff(b Backoff) Option {
	return optionFunc(func(c *config) { c.backoff = b })
}

// WithLogger sets the logger for connection and configuration events
// (slog.Default() by default). The Client never logs per request.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// WithAttributes sets the function that gives the unit attributes used for
// targeting rules (e.g. "grade" → "vip") in the server interceptors and in
// Variant when ctx has no evaluated request. It is called once per request
// with the request's context (after otelgrpc, so baggage is available) and
// may return nil. The map is only read. Without it, units have no
// attributes, so tests with targeting rules give them the control
// (assign.ReasonNotTargeted).
func WithAttributes(f func(ctx context.Context) map[string]string) Option {
	return optionFunc(func(c *config) { c.attrs = f })
}

// WithRoutingHeaders makes the client interceptors add, besides
// x-abmesh-unit, the mesh routing header "x-abmesh-<test>: <variant>"
// (assign.HeaderName) for each assignment already evaluated in the
// outgoing call's request, so that a service mesh can route on them. Off
// by default.
func WithRoutingHeaders(on bool) Option {
	return optionFunc(func(c *config) { c.routing = on })
}

// WithWatchHook adds a function called on every WatchEvent of a Client
// made by New: each stream's first snapshot (WatchConnected), each
// snapshot installed (WatchInstalled), each stream that breaks after
// delivering snapshots (WatchDisconnected). Hooks given in several options
// are all called, in order. They run on the Client's watch goroutine, one
// event at a time and in order, so they see every transition; they must
// return quickly (a slow hook delays the next snapshot) and must not call
// Close. NewStatic never calls them: its Client is ready when NewStatic
// returns. The OpenFeature provider (assign/openfeature) turns these
// events into provider events.
func WithWatchHook(f func(WatchEvent)) Option {
	return optionFunc(func(c *config) {
		if f != nil {
			c.hooks = append(c.hooks, f)
		}
	})
}

func buildConfig(opts []Option) (config, error) {
	c := config{baggageKey: DefaultBaggageKey, backoff: DefaultBackoff}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if _, err := baggage.NewMember(c.baggageKey, "x"); err != nil { // NewMember checks the W3C key syntax
		return c, fmt.Errorf("client: baggage key %q: %w", c.baggageKey, err)
	}
	if err := c.backoff.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// Backoff is the exponential backoff with jitter between reconnection
// attempts of the Watch stream. The n-th consecutive failed attempt
// (n = 0, 1, …) waits
//
//	d = min(Initial · Multiplierⁿ, Max) · (1 + Jitter · u),  u uniform in [-1, 1)
//
// A stream that delivered at least one snapshot before it broke resets n
// to 0.
type Backoff struct {
	Initial    time.Duration // first delay; > 0
	Max        time.Duration // cap before jitter; ≥ Initial
	Multiplier float64       // growth per attempt; ≥ 1
	Jitter     float64       // relative spread in [0, 1]
}

// DefaultBackoff is the Backoff used when WithBackoff is not given.
var DefaultBackoff = Backoff{Initial: 250 * time.Millisecond, Max: 30 * time.Second, Multiplier: 1.6, Jitter: 0.2}

// ErrInvalidBackoff reports a Backoff that Validate rejects.
var ErrInvalidBackoff = errors.New("client: invalid backoff")

// Validate checks the bounds documented on Backoff; the error wraps
// ErrInvalidBackoff.
func (b Backoff) Validate() error {
	switch {
	case b.Initial <= 0:
		return fmt.Errorf("%w: initial %v must be positive", ErrInvalidBackoff, b.Initial)
	case b.Max < b.Initial:
		return fmt.Errorf("%w: max %v is below initial %v", ErrInvalidBackoff, b.Max, b.Initial)
	case !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0):
		return fmt.Errorf("%w: multiplier %v must be at least 1", ErrInvalidBackoff, b.Multiplier)
	case !(b.Jitter >= 0 && b.Jitter <= 1):
		return fmt.Errorf("%w: jitter %v must be in [0, 1]", ErrInvalidBackoff, b.Jitter)
	}
	return nil
}

// Delay returns the wait before attempt n (0-based), with u in [-1, 1)
// drawn at random. It never returns a negative duration.
func (b Backoff) Delay(n int) time.Duration {
	return b.delay(n, 2*rand.Float64()-1)
}

func (b Backoff) delay(n int, u float64) time.Duration {
	d := float64(b.Initial) * math.Pow(b.Multiplier, float64(n))
	if d > float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(b.Max)
	}
	d *= 1 + b.Jitter*u
	if d < 0 {
		return 0
	}
	return time.Duration(d)
}
