package client_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/abmesh/abmesh/assign/client"
)

// dropProcessor is a span processor that drops every span: spans are
// recorded (events and attributes are built) but not exported.
type dropProcessor struct{}

func (dropProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (dropProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (dropProcessor) Shutdown(context.Context) error                  { return nil }
func (dropProcessor) ForceFlush(context.Context) error                { return nil }

func benchTracer(b *testing.B) *sdktrace.TracerProvider {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(dropProcessor{}))
	b.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp
}

// BenchmarkServerInterceptor measures what the server interceptor adds to
// a request whose server span is recording (the SDK's TracerProvider, as
// otelgrpc would start it) around a no-op handler: "without" is the span
// alone, "with" adds the interceptor evaluating and recording the
// recommendation service's 3 tests; the difference is the overhead.
func BenchmarkServerInterceptor(b *testing.B) {
	cfg := shopConfig(b)
	c, err := client.NewStatic(cfg, client.WithService("recommendation"))
	if err != nil {
		b.Fatal(err)
	}
	tr := benchTracer(b).Tracer("bench")
	base := client.WithUnit(context.Background(), "user-12345")
	info := &grpc.UnaryServerInfo{FullMethod: "/abmesh.demo.v1.ShopService/Handle"}
	var sink string
	handler := func(ctx context.Context, _ any) (any, error) { return nil, nil }
	variantHandler := func(ctx context.Context, _ any) (any, error) { sink = c.Variant(ctx, "rec-model"); return nil, nil }
	intercept := c.UnaryServerInterceptor()

	b.Run("without", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, span := tr.Start(base, "Handle")
			handler(ctx, nil)
			span.End()
		}
	})
	b.Run("with", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, span := tr.Start(base, "Handle")
			intercept(ctx, nil, info, handler)
			span.End()
		}
	})
	b.Run("with+Variant", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, span := tr.Start(base, "Handle")
			intercept(ctx, nil, info, variantHandler)
			span.End()
		}
	})
	// The tracing SDK's share: the same span attribute and 3 events of
	// the same shape added by hand, without evaluation or context.
	b.Run("sdk-events-only", func(b *testing.B) {
		kv := []attribute.KeyValue{
			attribute.String("feature_flag.key", "rec-model"), attribute.String("feature_flag.provider.name", "abmesh"),
			attribute.String("feature_flag.version", "1"), attribute.String("feature_flag.result.reason", "split"),
			attribute.String("abmesh.reason", "HASH"), attribute.String("feature_flag.result.variant", "v2"),
			attribute.String("feature_flag.context.id", "user-12345"),
		}
		b.ReportAllocs()
		for b.Loop() {
			_, span := tr.Start(base, "Handle")
			span.SetAttributes(client.UnitKey.String("user-12345"))
			for range 3 {
				span.AddEvent(client.EventName, trace.WithAttributes(kv...))
			}
			span.End()
		}
	})
	b.Run("with/not-sampled", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() { // no span in ctx: a non-recording span
			intercept(base, nil, info, handler)
		}
	})
	_ = sink
}

// BenchmarkVariant measures Variant in a request the interceptor has
// evaluated (a cache hit), and without request state (an evaluation from
// the baggage unit each call, on a non-recording span).
func BenchmarkVariant(b *testing.B) {
	c, err := client.NewStatic(shopConfig(b), client.WithService("recommendation"))
	if err != nil {
		b.Fatal(err)
	}
	base := client.WithUnit(context.Background(), "user-12345")
	var sink string
	b.Run("cached", func(b *testing.B) {
		ctx := c.Evaluate(base, "", nil)
		b.ReportAllocs()
		for b.Loop() {
			sink = c.Variant(ctx, "rec-model")
		}
	})
	b.Run("no-request-state", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = c.Variant(base, "rec-model")
		}
	})
	_ = sink
}

// BenchmarkClientInterceptor measures the outgoing side: the unit header
// (and, with routing, the x-abmesh-<test> headers) added to a call.
func BenchmarkClientInterceptor(b *testing.B) {
	cfg := shopConfig(b)
	for _, routing := range []bool{false, true} {
		name := map[bool]string{false: "unit-header", true: "with-routing"}[routing]
		b.Run(name, func(b *testing.B) {
			c, err := client.NewStatic(cfg, client.WithService("recommendation"), client.WithRoutingHeaders(routing))
			if err != nil {
				b.Fatal(err)
			}
			ctx := c.Evaluate(context.Background(), "user-12345", nil)
			intercept := c.UnaryClientInterceptor()
			invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
			b.ReportAllocs()
			for b.Loop() {
				intercept(ctx, "/m", nil, nil, nil, invoker)
			}
		})
	}
}
