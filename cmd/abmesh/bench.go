package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/proccpu"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/tracing/otlpload"
)

// loadResult is what a load run measured.
type loadResult struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_second"`
	P50Millis float64 `json:"p50_ms"`
	P90Millis float64 `json:"p90_ms"`
	P99Millis float64 `json:"p99_ms"`
	MaxMillis float64 `json:"max_ms"`
	// Late counts calls of a paced run that started over a millisecond
	// after their scheduled time: the load client fell behind the rate.
	Late       int64  `json:"late,omitempty"`
	FirstError string `json:"first_error,omitempty"`
	// ServerCPUMicrosPerCall is the server process's CPU time (user +
	// system, read from /proc before and after the run) divided by the
	// calls answered; set when the server's pid was given.
	ServerCPUMicrosPerCall float64 `json:"server_cpu_us_per_call,omitempty"`
}

// loadShape is how a load run sends: Concurrency callers until Duration
// has passed or, when Calls > 0, Calls calls have been made, whichever
// comes first; paced at Rate calls per second when Rate > 0.
type loadShape struct {
	Duration    time.Duration
	Concurrency int
	Rate        int
	Calls       int64
}

func benchAssignCmd(fs *flag.FlagSet) body {
	dur := fs.Duration("duration", 10*time.Second, "how long to send load (bounded)")
	conc := fs.Int("concurrency", 64, "concurrent callers")
	conns := fs.Int("conns", 4, "gRPC connections (callers are spread over them)")
	units := fs.Int("units", 100000, "distinct unit ids (user-1 … user-N)")
	rate := fs.Int("rate", 0, "Assign calls per second, paced (0: each caller calls again as soon as it is answered)")
	service := fs.String("service", "", "Assign's service filter")
	calls := fs.Int64("calls", 0, "stop after this many calls (0: run for --duration); with --pid, a fixed amount of work to measure")
	pid := fs.Int("pid", 0, "abmeshd's process id on this machine: report its CPU time per call (read from /proc)")
	out := outputFlag(fs, "table", "json")
	return func(ctx context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		if *dur <= 0 || *dur > 10*time.Minute {
			return errors.New("--duration: want between 0 and 10m")
		}
		if *conc < 1 || *conns < 1 || *units < 1 || *rate < 0 || *rate > 1_000_000 {
			return errors.New("--concurrency, --conns and --units must be positive, --rate 0 to 1,000,000")
		}
		if *calls < 0 || *pid < 0 {
			return errors.New("--calls and --pid must not be negative")
		}
		// One warm-up call tells whether the server is there at all.
		if _, err := r.api.assignment.Assign(ctx, &pb.AssignRequest{UnitId: "user-1"}); err != nil {
			return err
		}
		// The load goes over connections of its own, whose calls carry no
		// deadline (see runLoad).
		var clients []pb.AssignmentServiceClient
		for i := 0; i < *conns; i++ {
			conn, err := r.dialServer()
			if err != nil {
				return err
			}
			defer conn.Close()
			clients = append(clients, pb.NewAssignmentServiceClient(conn))
		}
		fmt.Fprintf(r.stderr, "sending Assign to %s for %s with %d callers over %d connections...\n", r.server, *dur, *conc, *conns)
		res, err := runLoadMeasured(ctx, *pid, loadShape{Duration: *dur, Concurrency: *conc, Rate: *rate, Calls: *calls}, func(ctx context.Context, worker int, rng *rand.Rand) error {
			unit := "user-" + strconv.Itoa(1+rng.IntN(*units))
			_, err := clients[worker%len(clients)].Assign(ctx, &pb.AssignRequest{UnitId: unit, Service: *service})
			return err
		})
		if err != nil {
			return err
		}
		if *out == "json" {
			return printPlainJSON(r.stdout, res)
		}
		printLoad(r.stdout, "Assign", res)
		return nil
	}
}

func printLoad(w io.Writer, what string, r loadResult) {
	fmt.Fprintf(w, "%s: %d requests in %.1fs = %.0f/s, %d errors\n", what, r.Requests, r.Seconds, r.PerSecond, r.Errors)
	fmt.Fprintf(w, "latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", r.P50Millis, r.P90Millis, r.P99Millis, r.MaxMillis)
	if r.Late > 0 {
		fmt.Fprintf(w, "%d requests started over 1 ms late: the load client fell behind the rate\n", r.Late)
	}
	if r.ServerCPUMicrosPerCall > 0 {
		fmt.Fprintf(w, "server CPU: %.1f µs per call\n", r.ServerCPUMicrosPerCall)
	}
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
}

// runLoadMeasured is runLoad that, when pid > 0, also reads that process's
// CPU time before and after the run and reports it per answered call.
func runLoadMeasured(ctx context.Context, pid int, shape loadShape, call func(ctx context.Context, worker int, rng *rand.Rand) error) (loadResult, error) {
	if pid == 0 {
		return runLoad(ctx, shape, call), nil
	}
	before, err := proccpu.Time(pid)
	if err != nil {
		return loadResult{}, fmt.Errorf("--pid: %w", err)
	}
	res := runLoad(ctx, shape, call)
	after, err := proccpu.Time(pid)
	if err != nil {
		return loadResult{}, fmt.Errorf("--pid: %w", err)
	}
	if res.Requests > 0 {
		res.ServerCPUMicrosPerCall = float64(after-before) / float64(time.Microsecond) / float64(res.Requests)
	}
	return res, nil
}

// runLoad calls call from shape.Concurrency goroutines until
// shape.Duration has passed, shape.Calls calls have been started (when
// positive) or ctx is done, and measures every call's latency (from the
// moment it is sent). With shape.Rate 0 each goroutine calls again as soon
// as a call returns; with a rate the calls are paced: call i is due at
// start + i/rate, taken by the next free goroutine, and one that starts
// over a millisecond late counts as Late. Calls carry no deadline of their
// own (a server-side deadline at the end of the run would count as an
// error); the run stops between calls.
func runLoad(ctx context.Context, shape loadShape, call func(ctx context.Context, worker int, rng *rand.Rand) error) loadResult {
	dur, conc, rate := shape.Duration, shape.Concurrency, shape.Rate
	var (
		mu       sync.Mutex
		lats     []time.Duration
		errs     atomic.Int64
		late     atomic.Int64
		ticket   atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(dur)
	// pace waits until the next call is due; false when the run is over.
	pace := func() bool {
		n := ticket.Add(1)
		if shape.Calls > 0 && n > shape.Calls {
			return false
		}
		if rate <= 0 {
			return time.Now().Before(end)
		}
		due := start.Add(time.Duration(n-1) * time.Second / time.Duration(rate))
		if !due.Before(end) {
			return false
		}
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		} else if wait < -time.Millisecond {
			late.Add(1)
		}
		return true
	}
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			local := make([]time.Duration, 0, 1<<16)
			for ctx.Err() == nil && pace() {
				t0 := time.Now()
				err := call(ctx, w, rng)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	slices.Sort(lats)
	pct := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		i := int(p * float64(len(lats)-1))
		return float64(lats[i]) / 1e6
	}
	r := loadResult{Requests: int64(len(lats)), Errors: errs.Load(), Seconds: elapsed,
		PerSecond: float64(len(lats)) / elapsed, P50Millis: pct(0.50), P90Millis: pct(0.90), P99Millis: pct(0.99), MaxMillis: pct(1), Late: late.Load()}
	if v, ok := firstErr.Load().(string); ok {
		r.FirstError = v
	}
	return r
}

func benchOTLPCmd(fs *flag.FlagSet) body {
	var cfg otlpload.Config
	fs.StringVar(&cfg.Endpoint, "endpoint", daemon.DefaultConfig().OTLPListen, "the OTLP/gRPC receiver (abmeshd --otlp-listen)")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "how long to send (at most 10m)")
	fs.IntVar(&cfg.Rate, "rate", 0, "target spans per second (0: as fast as the receiver takes them)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 4, "concurrent exporters")
	fs.IntVar(&cfg.Connections, "conns", 2, "gRPC connections")
	fs.IntVar(&cfg.TraceSize, "trace-size", 10, "spans per trace")
	fs.IntVar(&cfg.RequestSpans, "request-spans", 500, "spans per Export request")
	fs.IntVar(&cfg.Units, "units", 10_000, "distinct unit ids the traces carry (1 to 1e9)")
	out := outputFlag(fs, "table", "json")
	return func(ctx context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		// The global --token (ingest role) and TLS flags apply here too.
		var err error
		if cfg.DialOptions, err = r.credentialOptions(); err != nil {
			return err
		}
		fmt.Fprintf(r.stderr, "sending OTLP traces to %s for %s...\n", cfg.Endpoint, cfg.Duration)
		res, err := otlpload.Run(ctx, cfg)
		if err != nil {
			return err
		}
		if *out == "json" {
			return printPlainJSON(r.stdout, res)
		}
		fmt.Fprintf(r.stdout, "OTLP: %d spans accepted in %s = %.0f spans/s (%d requests, %d spans rejected, %d refused, %d failed calls)\n",
			res.Sent-res.Rejected, res.Elapsed.Round(time.Millisecond), res.SpansPerSecond, res.Requests, res.Rejected, res.Refused, res.Failed)
		if res.FirstError != "" {
			fmt.Fprintln(r.stdout, "first error:", res.FirstError)
		}
		return nil
	}
}
