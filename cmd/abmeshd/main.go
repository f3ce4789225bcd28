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
	"runtime/debug"
	"strconv"
	"syscall"

	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/otlpreceiver"
)

func main() {
	ctx, stop := signalContext()
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "abmeshd:", err)
		os.Exit(1)
	}
}

// gcPercent is abmeshd's GOGC unless the environment sets one.
const gcPercent = 400

func run(ctx context.Context, args []string) error {
	cfg, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the usage is printed, nothing failed
	}
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		// The memory limit above bounds the heap, so the collector can
		// wait for the heap to grow 4× past what is live instead of 1×:
		// a third less CPU per Assign (docs/performance.md), with the
		// limit, not GOGC, deciding the peak.
		debug.SetGCPercent(gcPercent)
	}
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		return err
	}
	reloadOnHangup(ctx, d, cfg.Logger)
	<-ctx.Done()
	// A second interrupt during shutdown ends the process at once.
	signal.Reset(os.Interrupt, syscall.SIGTERM)
	cfg.Logger.Info("abmeshd shutting down (interrupt again to exit at once)")
	d.Stop()
	return nil
}

// reloadOnHangup rereads the auth file and the TLS files on each SIGHUP
// until ctx is done.
func reloadOnHangup(ctx context.Context, d *daemon.Daemon, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := d.Reload(); err != nil {
					log.Error("reload on SIGHUP failed; the previous auth rules and certificates stay", "err", err)
				} else {
					log.Info("reloaded the auth file and TLS certificates (SIGHUP)")
				}
			}
		}
	}()
}

// signalContext is done on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func parseFlags(args []string) (daemon.Config, error) {
	return parseFlagsInto(flag.NewFlagSet("abmeshd", flag.ContinueOnError), args)
}

// defaultDataDir is where abmeshd keeps its store unless --data-dir says
// otherwise. Unlike daemon.Config's default (a temporary directory), it
// outlives the process: a server started by hand keeps its experiments.
const defaultDataDir = "abmesh-data"

func parseFlagsInto(fs *flag.FlagSet, args []string) (daemon.Config, error) {
	var cfg daemon.Config
	def := daemon.DefaultConfig()
	asm := tracing.DefaultConfig()
	fs.StringVar(&cfg.Listen, "listen", def.Listen, "gRPC API address (assignment, experiments, reports, flagd evaluation; also Connect for flagd)")
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "directory of the embedded store (one file)")
	fs.StringVar(&cfg.Store, "store", "", "keep the state in this PostgreSQL database (postgres://USER:PASS@HOST:PORT/DB) instead of the bbolt file in --data-dir; replicas with the same --store share it (docs/scaling.md)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.OTLPListen, "otlp-listen", def.OTLPListen, `OTLP/gRPC trace receiver address, or "off"`)
	fs.IntVar(&cfg.OTLP.MaxMessageBytes, "otlp-max-message-bytes", def.OTLP.MaxMessageBytes, "largest OTLP request accepted")
	fs.Int64Var(&cfg.MemoryLimit, "memory-limit", daemon.DefaultMemoryLimit,
		"bytes of memory abmeshd is sized for: sets --otlp-max-inflight-bytes (1/8), --max-trace-bytes (55%), --max-spans, --max-traces and the remembered trace ids (5%) unless they are given, and the Go runtime's soft memory limit (unless GOMEMLIMIT is set), under which the collector runs at GOGC 400 (unless GOGC is set)")
	fs.Int64Var(&cfg.OTLP.MaxInflightBytes, "otlp-max-inflight-bytes", 0,
		fmt.Sprintf("bytes of OTLP requests being read and decoded at once (a request counts the largest message while it is read, then its size plus %d bytes a span); past it the receiver answers RESOURCE_EXHAUSTED with a RetryInfo before reading (default: 1/8 of --memory-limit, %d)", otlpreceiver.DecodedSpanBytes, def.OTLP.MaxInflightBytes))
	cfg.OTLP.MaxStreams = def.OTLP.MaxStreams
	fs.Func("otlp-max-streams", fmt.Sprintf("concurrent OTLP Export calls per connection (default %d)", def.OTLP.MaxStreams), func(v string) error {
		n, err := strconv.ParseUint(v, 10, 32)
		cfg.OTLP.MaxStreams = uint32(n)
		return err
	})
	fs.StringVar(&cfg.HTTPListen, "http-listen", def.HTTPListen, `report web pages and Prometheus /metrics address, or "off"`)
	fs.StringVar(&cfg.EdgeListen, "edge-listen", def.EdgeListen, `forward-auth HTTP endpoint address for proxies (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz HTTP), or "off"; Envoy's gRPC ext_authz is on --listen`)
	fs.StringVar(&cfg.Edge.UnitCookie, "edge-unit-cookie", def.Edge.UnitCookie, "forward-auth: cookie holding the unit, minted when absent")
	fs.StringVar(&cfg.Edge.UnitHeader, "edge-unit-header", def.Edge.UnitHeader, "forward-auth: request header with a trusted unit (an authenticated user id the proxy sets); wins over the cookie")
	fs.StringVar(&cfg.Edge.ServiceHeader, "edge-service-header", def.Edge.ServiceHeader, `forward-auth: request header naming the service whose tests are assigned (else the auth URL's "service" query parameter)`)
	fs.StringVar(&cfg.JaegerQuery, "jaeger-query", def.JaegerQuery, "read traces and dependencies from this Jaeger query gRPC address (HOST:16685)")
	fs.DurationVar(&cfg.JaegerPoll, "jaeger-poll", def.JaegerPoll, "Jaeger poll interval")
	fs.DurationVar(&cfg.Assembly.IdleTimeout, "trace-idle-timeout", asm.IdleTimeout, "a trace is complete after no span arrived for this long")
	fs.IntVar(&cfg.Assembly.MaxBytes, "max-trace-bytes", 0,
		fmt.Sprintf("bytes of traces in flight (about 104 a realistic span) before the receiver answers RESOURCE_EXHAUSTED (default: 55%% of --memory-limit, %d)", def.Assembly.MaxBytes))
	fs.IntVar(&cfg.Assembly.MaxTraces, "max-traces", 0,
		fmt.Sprintf("traces in flight before the receiver answers RESOURCE_EXHAUSTED (default: from --memory-limit, %d)", def.Assembly.MaxTraces))
	fs.IntVar(&cfg.Assembly.MaxSpans, "max-spans", 0,
		fmt.Sprintf("spans in flight before the receiver answers RESOURCE_EXHAUSTED (default: from --memory-limit, %d)", def.Assembly.MaxSpans))
	fs.DurationVar(&cfg.GraphWindow, "graph-window", def.GraphWindow, "sliding window of the service dependency graph")
	fs.DurationVar(&cfg.GraphRefresh, "graph-refresh", def.GraphRefresh, "how often subsets see a new service graph")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", def.FlushInterval, "how often cells and the graph are written to the store (and the write-ahead log truncated); with --wal a crash loses no acknowledged span, without it a crash loses the spans in flight and what was counted since the last flush")
	walOn := fs.Bool("wal", !def.WAL.Off, "write-ahead log of accepted OTLP requests in DATA-DIR/wal: an Export is acknowledged once fsynced, replayed on start, truncated once flushed")
	walClaims := fs.Bool("wal-claims", !def.WAL.NoClaims, "with --store postgres://…: before replaying its write-ahead log a replica claims the log's trace ids and leaves to the other replicas those they already hold (re-sent there by the exporter), and every replica drops re-sent copies of traces another claimed, so no trace is counted twice; false only to measure that hazard (docs/scaling.md)")
	fs.Int64Var(&cfg.WAL.MaxBytes, "wal-max-bytes", def.WAL.MaxBytes, "disk bound of the write-ahead log; past it the receiver answers RESOURCE_EXHAUSTED with a RetryInfo until a flush frees segments")
	fs.StringVar(&cfg.Security.AuthFile, "auth-file", "", `authenticate callers: bearer token hashes and client certificate subjects with their roles (admin, reader, client, ingest), one rule a line: "token NAME ROLES sha256:HEX" (abmesh token new) or "cert CN=VALUE|OU=VALUE ROLES"; reread on SIGHUP. Empty: every call allowed`)
	fs.StringVar(&cfg.Security.TLSCert, "tls-cert", "", "serve TLS on every listener with this PEM certificate (chain); reread when it changes or on SIGHUP")
	fs.StringVar(&cfg.Security.TLSKey, "tls-key", "", "the PEM private key of --tls-cert")
	fs.StringVar(&cfg.Security.ClientCA, "client-ca", "", "verify client certificates (mTLS) against these PEM CA certificates; --auth-file's cert rules give them roles")
	fs.BoolVar(&cfg.Security.Insecure, "insecure", false, "serve an address that is not loopback without TLS and authentication (refused otherwise)")
	fs.IntVar(&cfg.SubsetCap, "subset-cap", def.SubsetCap, "largest subset, viewpoint included")
	fs.IntVar(&cfg.MinEdgeCalls, "min-edge-calls", def.MinEdgeCalls, "calls an edge needs in the graph window before subsets use it")
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
	cfg.WAL.Off = !*walOn
	cfg.WAL.NoClaims = !*walClaims
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	return cfg, cfg.Validate()
}
