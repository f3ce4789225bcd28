// Package client is abmesh's Go SDK for services: it evaluates the A/B
// tests a service serves locally, from the configuration abmeshd streams
// to it, propagates the unit id from service to service in W3C baggage,
// and records every variant served on the request's span as an
// OpenTelemetry feature-flag evaluation event, for abmeshd's trace
// consumer to attribute each request to its factorial cells.
//
// # Integrating a service, in order
//
// Step 1, tracing: a TracerProvider that exports the service's spans (OTLP
// to abmeshd's receiver, a collector or Jaeger), and the propagator that
// carries baggage. otelgrpc uses the global propagator, which is a no-op
// until set; without propagation.Baggage the unit does not travel.
//
//	otel.SetTracerProvider(tp)
//	otel.SetTextMapPropagator(client.Propagator()) // TraceContext + Baggage
//
// Step 2, the client, once per process; it watches abmeshd in the
// background and never blocks a request.
//
//	c, err := client.New("127.0.0.1:7070", client.WithService("recommendation"))
//	...
//	defer c.Close()
//
// When abmeshd authenticates (--auth-file) the client needs the client
// role's token, and beyond loopback TLS:
//
//	c, err := client.New("abmeshd.internal:7070", client.WithService("recommendation"),
//		client.WithToken(os.Getenv("ABMESH_TOKEN")), client.WithTLS(&tls.Config{RootCAs: pool}))
//
// Step 3, the server: otelgrpc's stats handler, which runs before every
// interceptor (so the server span is current and the incoming baggage is
// in the context), then the abmesh interceptors.
//
//	srv := grpc.NewServer(
//		grpc.StatsHandler(otelgrpc.NewServerHandler()),
//		grpc.ChainUnaryInterceptor(c.UnaryServerInterceptor()),
//		grpc.ChainStreamInterceptor(c.StreamServerInterceptor()),
//	)
//
// Step 4, calls to other services: otelgrpc's client stats handler
// injects the baggage; the abmesh client interceptors make sure the unit
// is in it and add the x-abmesh-unit header.
//
//	conn, err := grpc.NewClient(addr, creds,
//		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
//		grpc.WithChainUnaryInterceptor(c.UnaryClientInterceptor()),
//		grpc.WithChainStreamInterceptor(c.StreamClientInterceptor()),
//	)
//
// Step 5, in handlers, branch on the variant. "" means nothing is known
// (no configuration yet, or no such test) and is treated as the control.
//
//	switch c.Variant(ctx, "rec-model") {
//	case "ml-v2":
//		// the change
//	default:
//		// control
//	}
//
// Step 6, at the edge, the service that knows the user sets the unit
// before it calls downstream. A handler that is not a gRPC server (HTTP, a
// queue consumer) calls Evaluate instead, which does what the server
// interceptor does and also puts the unit in baggage.
//
//	ctx = client.WithUnit(ctx, userID)     // a caller
//	ctx = c.Evaluate(ctx, userID, attrs)  // an HTTP handler serving tests
//
// # What a request gets
//
// The server interceptor reads the unit from baggage (member
// DefaultBaggageKey, "abmesh.unit"), or, failing that, from the
// x-abmesh-unit metadata header (UnitHeader). It evaluates the tests
// whose change service is this service (assign.Filter{Service: …}) once,
// with the configuration snapshot current at that moment, and keeps the
// result in the request's context: Variant is then a lookup (no RPC, no
// lock contention, no allocation). Drafts are not evaluated. A request
// without a valid unit gets each running test's control with reason
// assign.ReasonFallback; a paused test gives its control, a concluded one
// its winner, as for any unit.
//
// Before the first snapshot the Client knows no test: Variant returns ""
// with assign.ReasonFallback and never an error. Afterwards, when abmeshd
// is unreachable, it keeps serving its last snapshot and reconnects with
// exponential backoff and jitter (Backoff). Sticky tests are evaluated by
// hash only: the SDK has no access to abmeshd's store of first
// assignments.
//
// # Adapters
//
// Snapshot.Evaluate evaluates one test for a unit the caller carries and
// records it as Variant does; WithWatchHook reports connections, installed
// snapshots and disconnections as they happen. The OpenFeature provider,
// assign/openfeature, is built on these two.
//
// # What is recorded
//
// On the server span, the attribute abmesh.unit (UnitKey) once, and for
// every test evaluated in the request one event named
// "feature_flag.evaluation" (EventName) with feature_flag.key (test id),
// feature_flag.result.variant, feature_flag.context.id (unit),
// feature_flag.provider.name "abmesh", feature_flag.version (phase, a
// decimal string), feature_flag.result.reason (see FeatureFlagReason),
// abmesh.reason (the assign.Reason wire name, e.g. "HASH") and, for a
// fallback, error.type (e.g. "targeting_key_missing"). Only HASH and
// STICKY ("split" and "cached") were randomized and count in analysis.
// RecordEvaluation records one evaluation on any span.
//
// # Cost
//
// See BenchmarkServerInterceptor and BenchmarkVariant. Evaluation itself
// is a few hundred nanoseconds for a handful of tests; most of the
// interceptor's cost on a recording span is the tracing SDK's AddEvent.
// On a span that is not sampled nothing is recorded.
package client
