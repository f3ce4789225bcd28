// Package daemon wires abmeshd together: the embedded store, the
// experiment registry, the gRPC API (assignment, experiments, reports,
// OTLP trace receiver), the trace consumer, the subsetter and the report
// web pages. cmd/abmeshd and the demo both start it.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/bolt"
	"github.com/abmesh/abmesh/internal/server"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// Config is abmeshd's configuration. The zero value of each field means
// its default.
type Config struct {
	// Listen is the gRPC API address (default 127.0.0.1:7070; port 0 picks
	// a free port).
	Listen string
	// DataDir holds the store file; empty means a fresh temporary
	// directory removed on Stop.
	DataDir string
	// Logger receives the daemon's logs (default slog.Default()).
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("listen %q: %w", c.Listen, err)
		}
	}
	return nil
}

func (c *Config) defaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:7070"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Daemon is a running abmeshd.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	db       *bolt.DB
	tmpDir   string
	registry *assign.Registry
	grpc     *grpc.Server
	health   *health.Server
	lis      net.Listener
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// Start opens the store, loads the registry and starts serving. It returns
// once every listener is bound; Stop ends it.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	d := &Daemon{cfg: cfg, log: cfg.Logger}
	life, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	ok := false
	defer func() {
		if !ok {
			d.Stop()
		}
	}()

	dir := cfg.DataDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "abmeshd-")
		if err != nil {
			return nil, err
		}
		d.tmpDir, dir = tmp, tmp
	}
	db, err := bolt.Open(dir)
	if err != nil {
		return nil, err
	}
	d.db = db
	d.registry, err = assign.NewRegistry(ctx, db, assign.WithSticky(db))
	if err != nil {
		return nil, err
	}

	d.lis, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (--listen): %w", cfg.Listen, err)
	}
	d.grpc = grpc.NewServer()
	pb.RegisterAssignmentServiceServer(d.grpc, server.NewAssignment(life, d.registry))
	pb.RegisterExperimentServiceServer(d.grpc, server.NewExperiments(d.registry))
	d.health = health.NewServer()
	healthpb.RegisterHealthServer(d.grpc, d.health)
	reflection.Register(d.grpc)

	d.serve("grpc", func() error { return d.grpc.Serve(d.lis) })
	d.log.Info("abmeshd started", "grpc", d.lis.Addr().String(), "store", db.Path(), "config_version", d.registry.Version())
	ok = true
	return d, nil
}

func (d *Daemon) serve(name string, f func() error) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := f(); err != nil && !errors.Is(err, grpc.ErrServerStopped) && !errors.Is(err, net.ErrClosed) {
			d.log.Error("server stopped", "server", name, "err", err)
		}
	}()
}

// Addr is the gRPC API's address.
func (d *Daemon) Addr() string { return d.lis.Addr().String() }

// Registry is the experiment registry.
func (d *Daemon) Registry() *assign.Registry { return d.registry }

// Stop shuts down gracefully: health turns NOT_SERVING, Watch streams end,
// in-flight RPCs finish, state is flushed and the store closed.
func (d *Daemon) Stop() {
	d.stopOnce.Do(func() {
		if d.health != nil {
			d.health.Shutdown()
		}
		d.cancel()
		if d.grpc != nil {
			d.grpc.GracefulStop()
		}
		d.wg.Wait()
		if d.db != nil {
			if err := d.db.Close(); err != nil {
				d.log.Error("close store", "err", err)
			}
		}
		if d.tmpDir != "" {
			os.RemoveAll(d.tmpDir)
		}
	})
}
