package client

import (
	"context"
	"slices"
	"sync"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/abmesh/abmesh/assign"
)

// reqKey keys a Client's request state in a context; one per Client, so
// two Clients in one process (two services, or a test) never read each
// other's state.
type reqKey struct{ c *Client }

// request is the evaluation state of one request: the configuration it
// was evaluated with (so that every lookup in the request sees the same
// version), its unit, and the assignments evaluated so far.
type request struct {
	v     *view
	unit  string // valid unit, or "" when the request has none
	bad   string // error.type of a fallback for want of a valid unit
	attrs map[string]string

	mu  sync.Mutex
	as  []assign.Assignment
	buf [4]assign.Assignment // backing array for the common case
}

// unitError is the error.type of a fallback for unit u: "" for a valid
// unit.
func unitError(u string) string {
	switch {
	case u == "":
		return ErrorTargetingKeyMissing
	case len(u) > assign.MaxUnitLen:
		return ErrorInvalidContext
	}
	return ""
}

func (c *Client) request(ctx context.Context) *request {
	r, _ := ctx.Value(reqKey{c}).(*request)
	return r
}

// incomingUnit returns the unit of an incoming request: from baggage,
// else from the UnitHeader metadata.
func (c *Client) incomingUnit(ctx context.Context) string {
	if u, ok := unitFromBaggage(ctx, c.cfg.baggageKey); ok {
		return u
	}
	return unitFromMetadata(ctx)
}

func (c *Client) attributes(ctx context.Context) map[string]string {
	if c.cfg.attrs == nil {
		return nil
	}
	return c.cfg.attrs(ctx)
}

// begin evaluates the service's tests for the request in ctx, records them
// on ctx's span and returns ctx with the request state.
func (c *Client) begin(ctx context.Context, unit string, attrs map[string]string) context.Context {
	r := &request{v: c.view.Load(), attrs: attrs, bad: unitError(unit)}
	r.as = r.buf[:0]
	if r.bad == "" {
		r.unit = unit
	}
	if r.v != nil {
		if r.unit != "" {
			r.as = r.v.eng.AppendAssignments(r.as, r.unit, attrs, r.v.filter)
		} else {
			r.as = append(r.as, r.v.unitless...)
		}
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		kv := getScratch()
		if r.unit != "" {
			kv[0] = UnitKey.String(r.unit)
			span.SetAttributes(kv[:1]...) // the span copies its attributes
		}
		for i := range r.as {
			errType := ""
			if r.as[i].Reason == assign.ReasonFallback {
				errType = r.bad
			}
			record(span, kv, r.unit, r.as[i], errType)
		}
		putScratch(kv)
	}
	return context.WithValue(ctx, reqKey{c}, r)
}

// evalOne evaluates one test outside the request's eager evaluation; bad
// is unitError(unit). The string is the error.type to record for a
// fallback.
func evalOne(v *view, unit, bad string, attrs map[string]string, testID string) (assign.Assignment, string) {
	if v == nil {
		return assign.Assignment{Test: testID, Reason: assign.ReasonFallback}, ErrorProviderNotReady
	}
	x, ok := v.eng.Experiment(testID)
	if !ok {
		return assign.Assignment{Test: testID, Reason: assign.ReasonFallback}, ErrorFlagNotFound
	}
	if bad != "" {
		a := unitless(x)
		if a.Reason == assign.ReasonFallback {
			return a, bad
		}
		return a, ""
	}
	a, err := v.eng.EvaluateTest(testID, unit, attrs)
	if err != nil { // only invalid attributes can fail here
		return assign.Assignment{Test: testID, Variant: x.Variants[0].Name, Reason: assign.ReasonFallback, Phase: x.Phase}, ErrorInvalidContext
	}
	return a, ""
}

// recordOne records a on ctx's span if it is recording.
func recordOne(ctx context.Context, unit string, a assign.Assignment, errType string) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		kv := getScratch()
		record(span, kv, unit, a, errType)
		putScratch(kv)
	}
}

// Variant returns the variant of test testID that the request in ctx
// gets, and records it. It never fails and never makes an RPC:
//
//   - In a request the server interceptors (or Evaluate) have evaluated,
//     it returns the cached assignment; a test they did not evaluate
//     (another service's test, a draft) is evaluated now with the
//     request's configuration snapshot and unit, recorded on ctx's current
//     span and cached, so each test is recorded once per request.
//   - Without that state, it evaluates with the unit in ctx (baggage, else
//     UnitHeader metadata) and records on ctx's span on every call.
//
// With no valid unit, a running test gives its control (reason
// assign.ReasonFallback). When nothing is known of testID (no snapshot
// has arrived yet, or the snapshot has no such test) it returns "" with
// assign.ReasonFallback: callers treat "" as the control, e.g.
//
//	switch c.Variant(ctx, "rec-model") {
//	case "v2": ...
//	default: // control, or "" when unknown
//	}
func (c *Client) Variant(ctx context.Context, testID string) string {
	if r := c.request(ctx); r != nil {
		r.mu.Lock()
		for i := range r.as {
			if r.as[i].Test == testID {
				v := r.as[i].Variant
				r.mu.Unlock()
				return v
			}
		}
		a, errType := evalOne(r.v, r.unit, r.bad, r.attrs, testID)
		r.as = append(r.as, a)
		r.mu.Unlock()
		recordOne(ctx, r.unit, a, errType)
		return a.Variant
	}
	a, _ := c.Snapshot().Evaluate(ctx, testID, c.incomingUnit(ctx), c.attributes(ctx))
	return a.Variant
}

// Snapshot is the configuration a Client evaluated at one moment, for
// adapters that evaluate one test at a time for a unit they carry
// themselves (the OpenFeature provider): Engine to inspect a test,
// Evaluate to evaluate and record it, both on the same configuration.
// The zero Snapshot is the state before the first configuration: it knows
// no test.
type Snapshot struct{ v *view }

// Snapshot returns the configuration in use now.
func (c *Client) Snapshot() Snapshot { return Snapshot{c.view.Load()} }

// Engine returns the snapshot's compiled configuration; nil (an empty
// configuration) before the first. It must not be modified.
func (s Snapshot) Engine() *assign.Engine {
	if s.v == nil {
		return nil
	}
	return s.v.eng
}

// Evaluate evaluates test testID for unit with attrs (nil for none) and
// records the result on ctx's current span, exactly as Variant does for a
// context without an evaluated request: one EventName event, with the
// error.type of a fallback, and no UnitKey on the span. It never fails.
//
// It returns the assignment and, for reason assign.ReasonFallback, the
// error.type recorded (ErrorProviderNotReady: s is the zero Snapshot;
// ErrorFlagNotFound: no such test, the assignment has no variant;
// ErrorTargetingKeyMissing: unit is empty; ErrorInvalidContext: unit is
// over assign.MaxUnitLen bytes, recorded without it, or attrs fail
// assign.ValidateAttributes); "" otherwise. Without a valid unit a
// running test gives its control with the fallback, a paused or draft one
// its control (assign.ReasonPaused) and a concluded one its winner
// (assign.ReasonWinner), with no error.
func (s Snapshot) Evaluate(ctx context.Context, testID, unit string, attrs map[string]string) (assign.Assignment, string) {
	bad := unitError(unit)
	if bad != "" {
		unit = ""
	}
	a, errType := evalOne(s.v, unit, bad, attrs, testID)
	recordOne(ctx, unit, a, errType)
	return a, errType
}

// Assignments returns a copy of the assignments evaluated so far for the
// request in ctx: the service's tests evaluated by the server interceptor
// or Evaluate, then the tests Variant evaluated later, in that order. It
// returns nil when ctx has no evaluated request. It records nothing.
func (c *Client) Assignments(ctx context.Context) []assign.Assignment {
	r := c.request(ctx)
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.as)
}

// Evaluate does for a request that does not come through gRPC (an HTTP
// handler, a queue consumer) what the server interceptors do: it
// evaluates the service's tests for unit with attrs (nil for none),
// records each as an EventName event on ctx's current span, sets UnitKey
// on that span, and returns a context that carries the results for
// Variant and Assignments and carries unit in baggage, so that outgoing
// otelgrpc calls propagate it. An empty unit means the unit already in
// ctx (see UnitFromContext); with none the request gets the fallback. It
// replaces an earlier evaluation in ctx.
func (c *Client) Evaluate(ctx context.Context, unit string, attrs map[string]string) context.Context {
	if unit == "" {
		unit, _ = c.UnitFromContext(ctx)
	} else if u, _ := unitFromBaggage(ctx, c.cfg.baggageKey); u != unit {
		ctx = withUnit(ctx, c.cfg.baggageKey, unit)
	}
	return c.begin(ctx, unit, attrs)
}

// WithUnit is the package-level WithUnit with the Client's baggage key
// (WithBaggageKey).
func (c *Client) WithUnit(ctx context.Context, unit string) context.Context {
	return withUnit(ctx, c.cfg.baggageKey, unit)
}

// UnitFromContext returns the unit of the request in ctx: the one the
// server interceptor or Evaluate evaluated (which may have come from
// UnitHeader), else the one in ctx's baggage under the Client's baggage
// key. ok is false when there is none.
func (c *Client) UnitFromContext(ctx context.Context) (unit string, ok bool) {
	if r := c.request(ctx); r != nil && r.unit != "" {
		return r.unit, true
	}
	return unitFromBaggage(ctx, c.cfg.baggageKey)
}

// UnaryServerInterceptor returns the interceptor that evaluates the
// service's tests once per request (see Evaluate). Install it with
// otelgrpc's stats handler, which runs before any interceptor, so that
// the server span is current and the baggage extracted when the
// interceptor runs:
//
//	grpc.NewServer(
//		grpc.StatsHandler(otelgrpc.NewServerHandler()),
//		grpc.ChainUnaryInterceptor(c.UnaryServerInterceptor()),
//	)
//
// The unit comes from baggage (the Client's baggage key), else from the
// UnitHeader metadata. A request already evaluated by this Client (the
// interceptor chained twice) is not evaluated again.
func (c *Client) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if c.request(ctx) == nil {
			ctx = c.begin(ctx, c.incomingUnit(ctx), c.attributes(ctx))
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming RPCs:
// the evaluation happens once, when the stream starts, and the handler's
// stream.Context() carries it.
func (c *Client) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		if c.request(ctx) != nil {
			return handler(srv, ss)
		}
		ctx = c.begin(ctx, c.incomingUnit(ctx), c.attributes(ctx))
		return handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
	}
}

type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }

// UnaryClientInterceptor returns the interceptor for calls a service
// makes to other services. Install it with otelgrpc's client stats
// handler, which injects baggage after the interceptors run:
//
//	grpc.NewClient(addr,
//		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
//		grpc.WithChainUnaryInterceptor(c.UnaryClientInterceptor()),
//	)
//
// It makes sure the request's unit travels on: when ctx's baggage lacks
// the unit that the request was evaluated with (it came in UnitHeader, or
// Evaluate was given it), the unit is added to the baggage; and it sets
// the UnitHeader metadata (when the unit is printable ASCII, as gRPC
// headers must be; baggage carries any unit). With WithRoutingHeaders it
// also sets "x-abmesh-<test>: <variant>" for the request's evaluated
// assignments. A call without a unit passes through unchanged.
func (c *Client) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(c.outgoing(ctx), method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor is UnaryClientInterceptor for streaming calls.
func (c *Client) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(c.outgoing(ctx), desc, cc, method, opts...)
	}
}

func (c *Client) outgoing(ctx context.Context) context.Context {
	bag := baggage.FromContext(ctx)
	unit := bag.Member(c.cfg.baggageKey).Value()
	r := c.request(ctx)
	if unit == "" && r != nil && r.unit != "" {
		unit = r.unit
		if m, err := baggage.NewMemberRaw(c.cfg.baggageKey, unit); err == nil {
			if b, err := bag.SetMember(m); err == nil {
				ctx = baggage.ContextWithBaggage(ctx, b)
			}
		}
	}
	if unit == "" {
		return ctx
	}
	var kv []string
	if headerSafe(unit) {
		kv = append(kv, UnitHeader, unit)
	}
	if c.cfg.routing && r != nil {
		r.mu.Lock()
		for _, a := range r.as {
			if a.Variant != "" && assign.HeaderName(a.Test) != UnitHeader {
				kv = append(kv, assign.HeaderName(a.Test), a.Variant)
			}
		}
		r.mu.Unlock()
	}
	if len(kv) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}
