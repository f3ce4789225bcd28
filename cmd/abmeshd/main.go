// Command abmeshd is the abmesh server: assignment and experiment APIs over
// gRPC, the OTLP trace receiver, the subsetter, the per-subset factorial
// reports and their web pages, with an embedded store.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/abmesh/abmesh/internal/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "abmeshd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	slog.Info("abmeshd shutting down")
	d.Stop()
	return nil
}

func parseFlags(args []string) (daemon.Config, error) {
	var cfg daemon.Config
	fs := flag.NewFlagSet("abmeshd", flag.ContinueOnError)
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:7070", "gRPC API address (assignment, experiments, reports)")
	fs.StringVar(&cfg.DataDir, "data-dir", "abmesh-data", "directory of the embedded store (one file)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	registerFlags(fs, &cfg)
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

// registerFlags registers the flags of the daemon's optional parts.
var registerFlags = func(*flag.FlagSet, *daemon.Config) {}
