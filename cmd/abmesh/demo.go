package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/abmesh/abmesh/internal/tool/demo"
)

func demoCmd(fs *flag.FlagSet) body {
	var cfg demo.Config
	fs.DurationVar(&cfg.Duration, "duration", 3*time.Minute, "time budget: stop when every report is COMPLETE or this runs out")
	fs.Float64Var(&cfg.Rate, "rate", 50, "simulated users per second, each starting a session")
	fs.Float64Var(&cfg.RequestsPerUser, "requests-per-user", 4, "mean requests of a user's session (geometric; 1: one request per user)")
	fs.Float64Var(&cfg.WithinUserCorr, "within-user-corr", 0.3, "correlation of one user's outcomes, in [0, 1) (negative: 0)")
	fs.IntVar(&cfg.Workers, "workers", 32, "concurrent users")
	fs.DurationVar(&cfg.Warmup, "warmup", 3*time.Second, "traffic before the experiments start, to learn the service graph")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "keep abmeshd's store here (default: a temporary directory)")
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "abmeshd gRPC address")
	fs.StringVar(&cfg.OTLPListen, "otlp-listen", "127.0.0.1:0", "abmeshd OTLP receiver address")
	fs.StringVar(&cfg.HTTPListen, "http-listen", "127.0.0.1:0", "abmeshd report pages address")
	fs.StringVar(&cfg.EdgeListen, "edge-listen", "127.0.0.1:0", "abmeshd forward-auth endpoint address, which the users' requests pass before the frontend")
	fs.StringVar(&cfg.JaegerOTLP, "jaeger-otlp", "", "send the services' spans to this Jaeger OTLP gRPC address instead of abmeshd")
	fs.StringVar(&cfg.JaegerQuery, "jaeger-query", "", "have abmeshd read the spans back from this Jaeger query gRPC address")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the simulated users and outcomes")
	fs.IntVar(&cfg.Replicas, "replicas", 0, fmt.Sprintf("run N abmeshd replicas (1 to %d) sharing the PostgreSQL database --store, each trace sent to one by a hash of its trace id; the summary says where the traces went (0: one abmeshd with its bbolt store)", demo.MaxReplicas))
	fs.StringVar(&cfg.Store, "store", "", "with --replicas: postgres://USER@HOST:PORT/DATABASE, an empty database the replicas share")
	routes := fs.String("routes", "", "with --replicas: write a line \"TRACE_ID REPLICA\" per trace to this file")
	serve := fs.Bool("serve", false, "keep abmeshd and its report pages up after the run, until interrupted")
	return func(ctx context.Context, r *request) (err error) {
		if err := r.noArgs(); err != nil {
			return err
		}
		cfg.Progress = r.stderr
		if *routes != "" {
			cfg.Routes = io.Discard // the file, once the flags are checked
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		if *routes != "" {
			f, ferr := os.Create(*routes)
			if ferr != nil {
				return ferr
			}
			w := bufio.NewWriter(f)
			cfg.Routes = w
			defer func() {
				if ferr := errors.Join(w.Flush(), f.Close()); ferr != nil && err == nil {
					err = fmt.Errorf("--routes %s: %w", *routes, ferr)
				}
			}()
		}
		res, err := demo.Run(ctx, cfg, *serve)
		if err != nil {
			return err
		}
		demo.WriteSummary(r.stdout, res)
		return nil
	}
}
