package client_test

import (
	"context"
	"fmt"
	"log"
	"net"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"google.golang.org/grpc"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
	demov1 "github.com/abmesh/abmesh/proto/abmesh/demo/v1"
)

// recommendation is a ShopService whose behaviour depends on the variant
// of test rec-model.
type recommendation struct {
	demov1.UnimplementedShopServiceServer
	abm *client.Client
}

func (s *recommendation) Handle(ctx context.Context, _ *demov1.HandleRequest) (*demov1.HandleResponse, error) {
	value := 20.0 // control, and "" (nothing known yet)
	if s.abm.Variant(ctx, "rec-model") == "ml-v2" {
		value = 24.0
	}
	return &demov1.HandleResponse{Service: "recommendation", Value: value}, nil
}

// A service integrates abmesh in a few lines: the baggage propagator, the
// client, and its interceptors after otelgrpc's stats handler.
func Example() {
	otel.SetTextMapPropagator(client.Propagator())
	abm, err := client.New("127.0.0.1:7070", client.WithService("recommendation"))
	if err != nil {
		log.Fatal(err)
	}
	defer abm.Close()

	srv := grpc.NewServer(
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(abm.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(abm.StreamServerInterceptor()),
	)
	demov1.RegisterShopServiceServer(srv, &recommendation{abm: abm})
	lis, err := net.Listen("tcp", "127.0.0.1:8081")
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(srv.Serve(lis))
}

// NewStatic serves a fixed configuration: for tests and offline tools.
// Evaluate is what an HTTP handler calls instead of the gRPC interceptor.
func ExampleNewStatic() {
	cfg := assign.Config{Version: 1, Experiments: []assign.Experiment{{
		ID: "rec-model", ChangeService: "recommendation", MeasureService: "frontend",
		Variants: []assign.Variant{{Name: "control", Weight: 50}, {Name: "ml-v2", Weight: 50}},
		Plan:     assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 1},
		Status:   assign.StatusRunning, Phase: 1, Phases: []assign.Phase{{Number: 1, Weights: []uint32{50, 50}}},
	}}}
	abm, err := client.NewStatic(cfg, client.WithService("recommendation"))
	if err != nil {
		log.Fatal(err)
	}
	for _, user := range []string{"user-1", "user-2", "user-3"} {
		ctx := abm.Evaluate(context.Background(), user, nil)
		fmt.Println(user, abm.Variant(ctx, "rec-model"))
	}
	fmt.Printf("unknown test: %q\n", abm.Variant(context.Background(), "no-such-test"))
	// Output:
	// user-1 control
	// user-2 ml-v2
	// user-3 control
	// unknown test: ""
}
