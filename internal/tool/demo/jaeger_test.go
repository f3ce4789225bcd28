package demo

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// jaegerBinary is a Jaeger all-in-one executable: $ABMESH_JAEGER_ALL_IN_ONE,
// or jaeger-all-in-one on PATH. .ci/run builds one from the Go module proxy
// when it can.
func jaegerBinary() string {
	if p := os.Getenv("ABMESH_JAEGER_ALL_IN_ONE"); p != "" {
		return p
	}
	p, _ := exec.LookPath("jaeger-all-in-one")
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDemoThroughJaeger runs the demo with a real Jaeger in between: the
// services export their spans to Jaeger's OTLP port and abmeshd reads them
// back through Jaeger's query API (FindTraces, GetDependencies).
func TestDemoThroughJaeger(t *testing.T) {
	bin := jaegerBinary()
	if bin == "" || testing.Short() {
		t.Skip("no Jaeger all-in-one binary (set ABMESH_JAEGER_ALL_IN_ONE)")
	}
	otlp, query := freeAddr(t), freeAddr(t)
	args := []string{"--memory.max-traces=100000",
		"--collector.otlp.grpc.host-port=" + otlp, "--query.grpc-server.host-port=" + query,
		"--collector.otlp.http.host-port=" + freeAddr(t), "--query.http-server.host-port=" + freeAddr(t),
		"--collector.grpc-server.host-port=" + freeAddr(t), "--collector.http-server.host-port=" + freeAddr(t),
		"--admin.http.host-port=" + freeAddr(t), "--http-server.host-port=" + freeAddr(t),
		"--processor.jaeger-binary.server-host-port=" + freeAddr(t), "--processor.jaeger-compact.server-host-port=" + freeAddr(t),
		"--processor.zipkin-compact.server-host-port=" + freeAddr(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.Dial("tcp", query)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Jaeger query port %s never opened", query)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var progress io.Writer = io.Discard
	if testing.Verbose() {
		progress = os.Stderr
	}
	// 25 users a second make about 100 requests a second (sessions of 4),
	// what abmeshd's Jaeger reader has been sized and tested for; at rest
	// the reports are COMPLETE in about 85 s, the budget allows a loaded
	// machine.
	res, err := Run(ctx, Config{Duration: 3 * time.Minute, Rate: 25, Warmup: 2 * time.Second, Seed: 3,
		JaegerOTLP: otlp, JaegerQuery: query, Progress: progress, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Complete {
		t.Errorf("not every report reached COMPLETE through Jaeger")
	}
	if res.SpansFailed != 0 || res.Counters.SpansReceived == 0 || uint64(res.SpansAcked) != res.Counters.SpansReceived {
		t.Errorf("spans exported to Jaeger %d (failed %d), read back by abmeshd %d", res.SpansAcked, res.SpansFailed, res.Counters.SpansReceived)
	}
	var members []string
	for _, m := range res.Reports["rec-model"].Window.Members {
		members = append(members, m.Test)
	}
	if !slices.Contains(members, "ui-layout") {
		t.Errorf("rec-model's subset through Jaeger is %v", members)
	}
}
