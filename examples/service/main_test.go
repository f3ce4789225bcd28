package main

import (
	"context"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	demov1 "github.com/abmesh/abmesh/proto/abmesh/demo/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestService runs the example against a real abmeshd and checks that it
// serves the variant abmeshd assigns to the unit in the baggage.
func TestService(t *testing.T) {
	d := daemontest.Start(t)
	ctx := context.Background()
	x := &assign.Experiment{
		ID: "rec-model", Owner: "team-reco", ChangeService: "recommendation", MeasureService: "frontend",
		Variants: []assign.Variant{{Name: "control", Weight: 50}, {Name: "ml-v2", Weight: 50}},
		Plan:     assign.Plan{MDE: 1},
	}
	if _, err := d.Registry().Create(ctx, x); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Registry().Start(ctx, "rec-model"); err != nil {
		t.Fatal(err)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx, []string{"--listen", addr, "--abmeshd", d.Addr(), "--otlp", "off"}) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	// The caller propagates the unit in baggage, as an otelgrpc-instrumented
	// frontend does.
	conn := daemontest.Dial(t, addr, grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithPropagators(client.Propagator()))))
	shop := demov1.NewShopServiceClient(conn)
	seen := map[string]bool{}
	for _, unit := range []string{"user-1", "user-2", "user-3", "user-4", "user-5", "user-6"} {
		want, _ := d.Registry().Snapshot().EvaluateTest("rec-model", unit, nil)
		var resp *demov1.HandleResponse
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp, err = shop.Handle(client.WithUnit(ctx, unit), &demov1.HandleRequest{Action: "view"})
			if err == nil && resp.GetVariants()["rec-model"] != "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetVariants()["rec-model"]; got != want.Variant {
			t.Fatalf("unit %s: served %q, abmeshd assigns %q", unit, got, want.Variant)
		}
		if wantValue := map[string]float64{"control": 20, "ml-v2": 24}[want.Variant]; resp.GetValue() != wantValue {
			t.Fatalf("unit %s (%s): value %v, want %v", unit, want.Variant, resp.GetValue(), wantValue)
		}
		seen[want.Variant] = true
	}
	if len(seen) != 2 {
		t.Logf("only variants %v among the units", seen)
	}
}
