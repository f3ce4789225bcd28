package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/abmesh/abmesh/assign/client"
	"github.com/abmesh/abmesh/internal/auth"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit/authtest"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/tracing"
)

func TestFlagsValidate(t *testing.T) {
	for _, args := range [][]string{
		{"--listen", "nonsense"},
		{"--otlp-listen", "no-port"},
		{"--subset-cap", "-1"},
		{"--edge-listen", "no-port"},
		{"--edge-unit-cookie", "bad cookie"},
		{"--edge-unit-header", "bad:header"},
		{"--log-level", "loud"},
		{"--listen", "0.0.0.0:7070"},
		{"--tls-cert", "c.pem"},
		{"--client-ca", "ca.pem"},
		{"extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%q) accepted bad input", args)
		}
	}
	// -h prints the usage and is not a failure (exit status 0).
	if err := run(context.Background(), []string{"-h"}); err != nil {
		t.Errorf("run(-h) = %v, want nil", err)
	}
	cfg, err := parseFlags([]string{"--listen", "127.0.0.1:0", "--otlp-listen", "off", "--http-listen", "off"})
	if err != nil || cfg.OTLPListen != "off" {
		t.Fatalf("cfg %+v, err %v", cfg, err)
	}
}

// TestFlagDefaultsAreTheDaemons: with no flags, abmeshd runs on the
// defaults the daemon would apply to a zero Config (and -h shows them),
// but for the data directory, which outlives the process; the bounds
// --memory-limit sets are left at zero for the daemon to derive.
func TestFlagDefaultsAreTheDaemons(t *testing.T) {
	got, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := daemon.DefaultConfig()
	want.DataDir = defaultDataDir
	want.OTLP.MaxInflightBytes = 0
	want.Assembly = tracing.Config{IdleTimeout: tracing.DefaultConfig().IdleTimeout}
	got.Logger, want.Logger = nil, nil // the flags' logger writes to stderr at --log-level
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flag defaults:\n%+v\nwant the daemon's:\n%+v", got, want)
	}
}

// TestRunServesAndStopsOnSignal starts abmeshd as main does, checks its
// health over gRPC, and stops it with SIGTERM.
func TestRunServesAndStopsOnSignal(t *testing.T) {
	ctx, stop := signalContext()
	defer stop()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"--listen", "127.0.0.1:17571", "--otlp-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--edge-listen", "127.0.0.1:0",
			"--data-dir", t.TempDir(), "--log-level", "error"})
	}()
	conn, err := grpc.NewClient("127.0.0.1:17571", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("abmeshd never became healthy: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("abmeshd did not stop on SIGTERM")
	}
}

func TestFlagDocs(t *testing.T) {
	var b bytes.Buffer
	fs := flag.NewFlagSet("abmeshd", flag.ContinueOnError)
	fs.SetOutput(&b)
	_, _ = parseFlagsInto(fs, []string{"-h"})
	doc := "# abmeshd flags\n\nGenerated from `abmeshd -h` (`ABMESH_UPDATE_GOLDEN=1 go test ./cmd/abmeshd -run TestFlagDocs`).\n\n```\n" + b.String() + "```\n"
	const path = "../../docs/abmeshd.md"
	if os.Getenv("ABMESH_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != doc {
		t.Errorf("docs/abmeshd.md is out of date: run ABMESH_UPDATE_GOLDEN=1 go test ./cmd/abmeshd -run TestFlagDocs")
	}
	if !strings.Contains(doc, "-otlp-listen") {
		t.Errorf("flag doc lacks -otlp-listen:\n%s", doc)
	}
}

// TestRunReloadsOnSIGHUP: abmeshd started with --auth-file takes a token
// added to the file once it gets SIGHUP, and refuses plaintext callers
// without one meanwhile.
func TestRunReloadsOnSIGHUP(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	file, _ := authtest.WriteAuthFile(t, t.TempDir())
	addr := daemontest.FreeAddr(t)
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{"--listen", addr, "--otlp-listen", "off", "--http-listen", "off",
			"--data-dir", t.TempDir(), "--log-level", "error", "--auth-file", file})
	}()
	fresh := auth.NewToken()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(client.BearerToken(fresh)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	getStatus := func() codes.Code {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := pb.NewReportServiceClient(conn).GetStatus(cctx, &pb.GetStatusRequest{})
		return status.Code(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for getStatus() != codes.Unauthenticated {
		if time.Now().After(deadline) {
			t.Fatalf("abmeshd never refused the unknown token: %v", getStatus())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.WriteFile(file, []byte(auth.TokenLine("late", auth.RolesOf(auth.Reader), fresh)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for getStatus() != codes.OK {
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the new token still gets %v", getStatus())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
