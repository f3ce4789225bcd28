// Command service is a minimal abmesh-instrumented microservice: a
// ShopService (proto/abmesh/demo/v1) named "recommendation" by default
// that serves test "rec-model" from a local evaluation of abmeshd's
// configuration, propagates the unit in W3C baggage and exports its spans
// with the feature-flag evaluation events over OTLP. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"

	"github.com/abmesh/abmesh/assign/client"
	demov1 "github.com/abmesh/abmesh/proto/abmesh/demo/v1"
)

type flags struct {
	listen, abmeshd, otlp, service, test, next string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8081", "gRPC address this service serves ShopService on")
	fs.StringVar(&f.abmeshd, "abmeshd", "127.0.0.1:7070", "abmeshd gRPC address (assignment config is watched from it)")
	fs.StringVar(&f.otlp, "otlp", "127.0.0.1:4317", `OTLP/gRPC trace endpoint (abmeshd's receiver, a collector or Jaeger), or "off"`)
	fs.StringVar(&f.service, "service", "recommendation", "this service's name: service.name of its spans and the change service of its tests")
	fs.StringVar(&f.test, "test", "rec-model", "the test whose variant picks the behaviour")
	fs.StringVar(&f.next, "next", "", "optional ShopService address to call on every request (to chain services)")
	return f, fs.Parse(args)
}

func run(ctx context.Context, args []string) error {
	f, err := parseFlags(args)
	if err != nil {
		return err
	}
	log := slog.Default()

	// 1. Tracing: a provider that exports this service's spans, and the
	//    TraceContext+Baggage propagator that carries the unit.
	tp, err := tracerProvider(ctx, f)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(client.Propagator())

	// 2. The abmesh client: watches abmeshd, evaluates locally.
	abm, err := client.New(f.abmeshd, client.WithService(f.service), client.WithLogger(log))
	if err != nil {
		return err
	}
	defer abm.Close()
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	if err := abm.WaitReady(wctx); err != nil {
		log.Warn("no assignment config yet; serving controls until abmeshd answers", "abmeshd", f.abmeshd)
	}
	cancel()

	// 3. The server: otelgrpc first (span + baggage), then abmesh.
	srv := grpc.NewServer(
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(abm.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(abm.StreamServerInterceptor()),
	)
	h := &handler{name: f.service, test: f.test, abm: abm}
	if f.next != "" {
		// 4. Outgoing calls: otelgrpc injects the baggage, abmesh adds
		//    the x-abmesh-unit header.
		conn, err := grpc.NewClient(f.next,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
			grpc.WithChainUnaryInterceptor(abm.UnaryClientInterceptor()),
		)
		if err != nil {
			return fmt.Errorf("--next %q: %w", f.next, err)
		}
		defer conn.Close()
		h.next = demov1.NewShopServiceClient(conn)
	}
	demov1.RegisterShopServiceServer(srv, h)
	reflection.Register(srv)

	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	log.Info("serving", "service", f.service, "addr", lis.Addr().String(), "test", f.test, "abmeshd", f.abmeshd, "otlp", f.otlp)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		srv.GracefulStop()
		return nil
	}
}

func tracerProvider(ctx context.Context, f flags) (*sdktrace.TracerProvider, error) {
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName(f.service)), resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, err
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if f.otlp != "off" {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(f.otlp), otlptracegrpc.WithInsecure())
		if err != nil {
			return nil, fmt.Errorf("--otlp: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// handler serves ShopService; its behaviour depends on the variant of
// its test that the request's unit gets.
type handler struct {
	demov1.UnimplementedShopServiceServer
	name, test string
	abm        *client.Client
	next       demov1.ShopServiceClient
}

var valueKey = attribute.Key("shop.order.value")

func (h *handler) Handle(ctx context.Context, req *demov1.HandleRequest) (*demov1.HandleResponse, error) {
	// The interceptor has already evaluated and recorded the service's
	// tests; Variant reads the cached result. "" (no config yet, or an
	// unknown test) is treated as the control.
	value := 20.0
	switch h.abm.Variant(ctx, h.test) {
	case "control", "":
	default: // e.g. "ml-v2": the new behaviour
		value = 24.0
	}
	resp := &demov1.HandleResponse{Service: h.name, Value: value, Variants: map[string]string{}}
	if h.next != nil {
		down, err := h.next.Handle(ctx, req)
		if err != nil {
			return nil, err
		}
		resp.Value += down.GetValue()
		for k, v := range down.GetVariants() {
			resp.Variants[k] = v
		}
	}
	for _, a := range h.abm.Assignments(ctx) {
		resp.Variants[a.Test] = a.Variant
	}
	trace.SpanFromContext(ctx).SetAttributes(valueKey.Float64(resp.Value))
	return resp, nil
}
