package openfeature

import (
	"context"
	"fmt"
	"sync"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
)

// Name is the provider's name in its Metadata and events, the
// feature_flag.provider.name its span events carry.
const Name = client.ProviderName

// DefaultInitTimeout is how long Init waits for the first configuration
// when WithInitTimeout is not given.
const DefaultInitTimeout = 5 * time.Second

// Provider is an OpenFeature provider (of.FeatureProvider with
// of.ContextAwareStateHandler and of.EventHandler) that evaluates abmesh's
// tests with a client.Client. It is safe for concurrent use. See the
// package documentation for flags, reasons and events.
type Provider struct {
	c           *client.Client
	initTimeout time.Duration

	events chan of.Event
	done   chan struct{} // closed by Shutdown
	ready  chan struct{} // closed when the first configuration is in use

	mu sync.Mutex
	st state

	shutdownOnce sync.Once
	shutdownErr  error
}

var (
	_ of.FeatureProvider          = (*Provider)(nil)
	_ of.ContextAwareStateHandler = (*Provider)(nil)
	_ of.EventHandler             = (*Provider)(nil)
)

// Option configures New.
type Option func(*settings)

type settings struct {
	clientOpts  []client.Option
	initTimeout time.Duration
}

// WithClientOptions passes options to the client.Client the provider
// watches abmeshd with (client.New): WithBackoff, WithDialOptions for TLS,
// WithLogger, WithWatchHook… WithService is set from New's service.
func WithClientOptions(opts ...client.Option) Option {
	return func(s *settings) { s.clientOpts = append(s.clientOpts, opts...) }
}

// WithInitTimeout sets how long Init waits for the first configuration
// before it fails with PROVIDER_NOT_READY (DefaultInitTimeout by default).
// Zero or less waits until the context Init is given ends, which for
// of.SetProviderAndWait is never.
func WithInitTimeout(d time.Duration) Option {
	return func(s *settings) { s.initTimeout = d }
}

// New returns a Provider that evaluates the tests of abmeshd at target (a
// gRPC target such as "127.0.0.1:7070") for the named service (the
// client.WithService of the Client it watches with; the provider
// evaluates every test of the configuration whatever its service). It
// starts watching at once and does not wait; Init does. The errors are
// client.New's.
func New(target, service string, opts ...Option) (*Provider, error) {
	s := settings{initTimeout: DefaultInitTimeout}
	for _, o := range opts {
		o(&s)
	}
	p := newProvider(s.initTimeout)
	copts := append([]client.Option{client.WithService(service)}, s.clientOpts...)
	copts = append(copts, client.WithWatchHook(p.onWatch))
	c, err := client.New(target, copts...)
	if err != nil {
		return nil, fmt.Errorf("openfeature: %w", err)
	}
	p.c = c
	return p, nil
}

// NewStatic returns a Provider that serves cfg forever, with no
// connection and no events: for tests, examples and offline tools. The
// error is client.NewStatic's.
func NewStatic(cfg assign.Config) (*Provider, error) {
	c, err := client.NewStatic(cfg)
	if err != nil {
		return nil, fmt.Errorf("openfeature: %w", err)
	}
	p := newProvider(0)
	p.c = c
	p.st.ready = true
	close(p.ready)
	return p, nil
}

func newProvider(initTimeout time.Duration) *Provider {
	return &Provider{
		initTimeout: initTimeout,
		events:      make(chan of.Event, 8),
		done:        make(chan struct{}),
		ready:       make(chan struct{}),
	}
}

// Client returns the client.Client the provider evaluates with, for its
// Stats. It must not be closed; Shutdown does.
func (p *Provider) Client() *client.Client { return p.c }

// Metadata implements of.FeatureProvider: the name is Name.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: Name} }

// Hooks implements of.FeatureProvider: the provider has none.
func (p *Provider) Hooks() []of.Hook { return nil }

// EventChannel implements of.EventHandler: the provider's events (see the
// package documentation). It is closed by Shutdown.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

// Init implements of.StateHandler: InitWithContext with a background
// context.
func (p *Provider) Init(evalCtx of.EvaluationContext) error {
	return p.InitWithContext(context.Background(), evalCtx)
}

// InitWithContext implements of.ContextAwareStateHandler: it waits until
// the first configuration is in use (nil), or the init timeout passes or
// ctx ends (an *of.ProviderInitError with code PROVIDER_NOT_READY; the
// provider then emits PROVIDER_READY when the first configuration
// arrives). It returns nil at once when a configuration is
// already in use.
func (p *Provider) InitWithContext(ctx context.Context, _ of.EvaluationContext) error {
	p.mu.Lock()
	p.st.initCalled = true
	p.mu.Unlock()
	if p.initTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.initTimeout)
		defer cancel()
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.st.ready { // the configuration may have come as the wait ended
		return nil
	}
	p.st.initFailed = true
	return &of.ProviderInitError{ErrorCode: of.ProviderNotReadyCode, Message: "no configuration from abmeshd yet"}
}

// Shutdown implements of.StateHandler: ShutdownWithContext with a
// background context.
func (p *Provider) Shutdown() { _ = p.ShutdownWithContext(context.Background()) }

// ShutdownWithContext implements of.ContextAwareStateHandler: it stops
// the events, closes the connection to abmeshd (the provider keeps
// answering from its last configuration) and closes EventChannel. It is
// idempotent and returns the connection's close error, if any; ctx is not
// needed, closing does not block on the network.
func (p *Provider) ShutdownWithContext(context.Context) error {
	p.shutdownOnce.Do(func() {
		close(p.done)
		p.shutdownErr = p.c.Close() // waits for the watch goroutine, the only sender
		close(p.events)
	})
	return p.shutdownErr
}
