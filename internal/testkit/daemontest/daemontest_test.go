package daemontest

import (
	"context"
	"net"
	"testing"

	"go.uber.org/goleak"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func isLoopback(t *testing.T, what, addr string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !net.ParseIP(host).IsLoopback() || port == "0" {
		t.Errorf("%s address %q is not a bound loopback port (%v)", what, addr, err)
	}
}

func TestStartDefaults(t *testing.T) {
	d := Start(t)
	isLoopback(t, "gRPC", d.Addr())
	if d.OTLPAddr() != "" || d.HTTPAddr() != "" {
		t.Errorf("OTLP %q and HTTP %q are on by default", d.OTLPAddr(), d.HTTPAddr())
	}
	r, err := healthpb.NewHealthClient(Dial(t, d.Addr())).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", r, err)
	}
}

func TestStartOptions(t *testing.T) {
	var seen daemon.Config
	d := Start(t, OTLP(), HTTP(), func(c *daemon.Config) { c.SubsetCap = 3; seen = *c })
	isLoopback(t, "OTLP", d.OTLPAddr())
	isLoopback(t, "HTTP", d.HTTPAddr())
	if seen.SubsetCap != 3 || seen.Logger == nil || seen.DataDir == "" {
		t.Errorf("config = %+v", seen)
	}
}

// TestRestart: a daemon started on the address and data directory of a
// stopped one serves what the first one stored.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	d := Start(t, DataDir(dir))
	x := &assign.Experiment{ID: "kept", Owner: "team", ChangeService: "svc", MeasureService: "svc",
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "treatment", Weight: 1}}, Plan: assign.Plan{MDE: 1}}
	if _, err := d.Registry().Create(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	addr := d.Addr()
	d.Stop()
	d2 := Start(t, Listen(addr), DataDir(dir))
	if d2.Addr() != addr {
		t.Errorf("restarted on %s, want %s", d2.Addr(), addr)
	}
	if _, err := d2.Registry().Experiment("kept"); err != nil {
		t.Errorf("after the restart: %v", err)
	}
}
