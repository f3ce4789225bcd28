// Package daemontest starts abmeshd for tests: a real daemon.Daemon on
// free loopback ports, with its store in a temporary directory, silent
// logs, and a stop when the test ends.
//
// Tests in package daemon itself cannot import it (the import would be a
// cycle); they are in package daemon_test.
package daemontest

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
)

// Loopback is a listen address on a free loopback port.
const Loopback = "127.0.0.1:0"

// Option changes the configuration Config builds. A test may pass its own
// func(*daemon.Config) for a setting without a named option.
type Option func(*daemon.Config)

// Listen puts the gRPC API on addr instead of a free port: a daemon
// restarted on the address of the one before it.
func Listen(addr string) Option { return func(c *daemon.Config) { c.Listen = addr } }

// DataDir keeps the store in dir instead of a fresh temporary directory: a
// daemon restarted on the data of the one before it.
func DataDir(dir string) Option { return func(c *daemon.Config) { c.DataDir = dir } }

// Store keeps the state in the PostgreSQL database at url (--store): a
// replica of every daemon started with the same url.
func Store(url string) Option { return func(c *daemon.Config) { c.Store = url } }

// OTLP turns on the OTLP receiver, on a free loopback port.
func OTLP() Option { return func(c *daemon.Config) { c.OTLPListen = Loopback } }

// HTTP turns on the report pages, on a free loopback port.
func HTTP() Option { return func(c *daemon.Config) { c.HTTPListen = Loopback } }

// Edge turns on the forward-auth HTTP endpoint, on a free loopback port.
func Edge() Option { return func(c *daemon.Config) { c.EdgeListen = Loopback } }

// Config returns the configuration Start starts abmeshd with: the gRPC API
// on a free loopback port, the OTLP receiver and the report pages off, the
// store in a new temporary directory of t, logs discarded; then opts, in
// order.
func Config(t testing.TB, opts ...Option) daemon.Config {
	t.Helper()
	cfg := daemon.Config{
		Listen:     Loopback,
		OTLPListen: "off",
		HTTPListen: "off",
		DataDir:    t.TempDir(),
		Logger:     slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// Start starts abmeshd with Config(t, opts...) and stops it when t ends;
// the test may stop it earlier (Stop is idempotent). A failure to start
// ends the test.
func Start(t testing.TB, opts ...Option) *daemon.Daemon {
	t.Helper()
	d, err := daemon.Start(context.Background(), Config(t, opts...))
	if err != nil {
		t.Fatalf("start abmeshd: %v", err)
	}
	t.Cleanup(d.Stop)
	return d
}

// Dial returns a plaintext gRPC client connection to addr (a daemon's
// Addr), closed when t ends: before a daemon started earlier in t stops.
func Dial(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// CreateStarted creates experiment x in r (a daemon's Registry, or any
// other) and starts it; a failure ends the test. Creating and starting
// are two changes: a Watch client may see the draft first.
func CreateStarted(t testing.TB, r *assign.Registry, x *assign.Experiment) {
	t.Helper()
	ctx := context.Background()
	if _, err := r.Create(ctx, x); err != nil {
		t.Fatalf("create %s: %v", x.ID, err)
	}
	if _, err := r.Start(ctx, x.ID); err != nil {
		t.Fatalf("start %s: %v", x.ID, err)
	}
}

// FreeAddr returns a loopback address whose port was free a moment ago,
// for a program the test starts that cannot listen on port 0 and say
// where it is.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", Loopback)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
