// Command abmeshd is the abmesh server: assignment and experiment APIs over
// gRPC, the OTLP trace receiver, the subsetter, the per-subset factorial
// reports and their web pages, with an embedded store.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/abmesh/abmesh/internal/daemon"
)

func main() {
	ctx, stop := signalContext()
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "abmeshd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the usage is printed, nothing failed
	}
	if err != nil {
		return err
	}
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	// A second interrupt during shutdown ends the process at once.
	signal.Reset(os.Interrupt, syscall.SIGTERM)
	cfg.Logger.Info("abmeshd shutting down (interrupt again to exit at once)")
	d.Stop()
	return nil
}

// signalContext is done on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func parseFlags(args []string) (daemon.Config, error) {
	return parseFlagsInto(flag.NewFlagSet("abmeshd", flag.ContinueOnError), args)
}

func parseFlagsInto(fs *flag.FlagSet, args []string) (daemon.Config, error) {
	var cfg daemon.Config
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:7070", "gRPC API address (assignment, experiments, reports)")
	fs.StringVar(&cfg.DataDir, "data-dir", "abmesh-data", "directory of the embedded store (one file)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.OTLPListen, "otlp-listen", "127.0.0.1:4317", `OTLP/gRPC trace receiver address, or "off"`)
	fs.StringVar(&cfg.HTTPListen, "http-listen", "127.0.0.1:7080", `report web pages address, or "off"`)
	fs.StringVar(&cfg.JaegerQuery, "jaeger-query", "", "read traces and dependencies from this Jaeger query gRPC address (HOST:16685)")
	fs.DurationVar(&cfg.JaegerPoll, "jaeger-poll", 30*time.Second, "Jaeger poll interval")
	fs.DurationVar(&cfg.Assembly.IdleTimeout, "trace-idle-timeout", 5*time.Second, "a trace is complete after no span arrived for this long")
	fs.IntVar(&cfg.Assembly.MaxTraces, "max-traces", 100_000, "traces in flight before the receiver answers RESOURCE_EXHAUSTED")
	fs.IntVar(&cfg.Assembly.MaxSpans, "max-spans", 500_000, "spans in flight before the receiver answers RESOURCE_EXHAUSTED")
	fs.DurationVar(&cfg.GraphWindow, "graph-window", time.Hour, "sliding window of the service dependency graph")
	fs.DurationVar(&cfg.GraphRefresh, "graph-refresh", 10*time.Second, "how often subsets see a new service graph")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", 5*time.Second, "how often cells are written to the store (the most a crash loses)")
	fs.IntVar(&cfg.SubsetCap, "subset-cap", 6, "largest subset, viewpoint included")
	fs.IntVar(&cfg.MinEdgeCalls, "min-edge-calls", 5, "calls an edge needs in the graph window before subsets use it")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: abmeshd [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	return cfg, cfg.Validate()
}
