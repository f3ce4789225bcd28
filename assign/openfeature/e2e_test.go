package openfeature_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	demov1 "github.com/abmesh/abmesh/proto/abmesh/demo/v1"
	"github.com/abmesh/abmesh/tracing"
)

// shop is a ShopService that knows abmesh only through OpenFeature: it
// reads the user from its request's metadata and asks its OpenFeature
// client for the variant of rec-model.
type shop struct {
	demov1.UnimplementedShopServiceServer
	flags *of.Client
}

func (s *shop) Handle(ctx context.Context, _ *demov1.HandleRequest) (*demov1.HandleResponse, error) {
	user := metadata.ValueFromIncomingContext(ctx, "x-user")[0]
	value := 20.0
	if s.flags.String(ctx, "rec-model", "control", of.NewEvaluationContext(user, nil)) == "ml-v2" {
		value = 24.0
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.Float64("shop.order.value", value))
	return &demov1.HandleResponse{Service: "shop", Value: value}, nil
}

// TestServiceCountedInCells: a gRPC service instrumented with otelgrpc,
// exporting OTLP to abmeshd's receiver and evaluating its test only
// through OpenFeature, has every request counted in the cell of the
// variant abmeshd assigns its user.
func TestServiceCountedInCells(t *testing.T) {
	d := daemontest.Start(t, daemontest.OTLP(), func(c *daemon.Config) {
		c.Assembly = tracing.Config{IdleTimeout: 200 * time.Millisecond}
	})
	x := exp("rec-model", "control", "ml-v2")
	x.Metric = assign.Metric{Kind: assign.MetricAttribute, Attribute: "shop.order.value", HigherIsBetter: true}
	x.Plan = assign.Plan{MDE: 1, SD: 1}
	daemontest.CreateStarted(t, d.Registry(), x)
	flags := install(t, newProvider(t, d.Addr()))

	// The service: otelgrpc's server handler, spans exported to abmeshd.
	ctx := context.Background()
	exporter, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(d.OTLPAddr()), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter), sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("shop"))))
	defer tp.Shutdown(ctx)
	srv := grpc.NewServer(grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp))))
	demov1.RegisterShopServiceServer(srv, &shop{flags: flags})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()

	// 60 users, user i sending 1 + i%3 requests.
	api := demov1.NewShopServiceClient(daemontest.Dial(t, lis.Addr().String()))
	eng := d.Registry().Snapshot()
	wantReqs, wantUnits := map[string]int64{}, map[string]int64{}
	total := int64(0)
	for i := range 60 {
		user := "user-" + strconv.Itoa(i)
		a, _ := eng.EvaluateTest("rec-model", user, nil)
		wantUnits[a.Variant]++
		for range 1 + i%3 {
			resp, err := api.Handle(metadata.AppendToOutgoingContext(ctx, "x-user", user), &demov1.HandleRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]float64{"control": 20, "ml-v2": 24}[a.Variant]; resp.GetValue() != want {
				t.Fatalf("%s (%s): value %v, want %v", user, a.Variant, resp.GetValue(), want)
			}
			wantReqs[a.Variant]++
			total++
		}
	}

	eventually(t, "every request counted", func() bool {
		w, ok := d.Windows().Current("rec-model")
		return ok && w.Quality.Counted == total
	})
	w, _ := d.Windows().Current("rec-model")
	if w.Quality.Seen != total {
		t.Errorf("quality %+v: requests excluded", w.Quality)
	}
	if len(w.Cells) != 2 {
		t.Fatalf("cells %+v", w.Cells)
	}
	for _, c := range w.Cells {
		v := x.Variants[c.Variants[0]].Name
		if c.Requests != wantReqs[v] || int64(c.Stats.N) != wantUnits[v] {
			t.Errorf("cell %s: %d requests of %v units, want %d of %d", v, c.Requests, c.Stats.N, wantReqs[v], wantUnits[v])
		}
	}
}
