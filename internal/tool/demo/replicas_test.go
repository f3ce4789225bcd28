package demo

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/otlproute"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	"github.com/abmesh/abmesh/internal/testkit/pgtest"
	"github.com/abmesh/abmesh/internal/testkit/reporttest"
)

// TestDemoReplicasEqualOneNode runs the shop demo on 3 replicas sharing one
// PostgreSQL, the services' spans routed to them by trace id
// (otlproute.Pick; the OpenTelemetry Collector's load-balancing exporter is
// not installed here), with a reference abmeshd (its own bbolt store) fed
// every span and every admin change as well. Every test's report, read on
// every replica (merged from all three), equals the reference's to 1e-9:
// cells, quality counters, ANOVA, estimates, SRM and joint SRM. The
// summary's routing adds up, and the routes file names each trace's
// replica.
func TestDemoReplicasEqualOneNode(t *testing.T) {
	if testing.Short() {
		t.Skip("demo on replicas skipped in -short mode")
	}
	url := pgtest.Start(t).NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress io.Writer = io.Discard
	if testing.Verbose() {
		progress = os.Stderr
	}
	var routes bytes.Buffer
	compared, tests, analysed := 0, 0, 0
	cfg := Config{
		Duration: 10 * time.Second, Warmup: 2 * time.Second, Seed: 5, DataDir: t.TempDir(),
		Replicas: 3, Store: url, Routes: &routes, Progress: progress,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		reference: true,
		// Under load a span can reach abmeshd more than the demo's 1 s
		// after its trace's others: late on one side and not the other, it
		// would make the reports differ for a reason that is not the merge.
		traceIdle: 4 * time.Second,
	}
	var refLate uint64
	cfg.inspect = func(c *cluster) {
		refLate = c.ref.Assembler().Stats().SpansLate
		for _, x := range c.ref.Registry().Snapshot().Config().Experiments {
			cur, err := c.ref.Reports().Report(context.Background(), x.ID, 0, report.Options{})
			if err != nil {
				t.Fatalf("reference report of %s: %v", x.ID, err)
			}
			// The comparison must not be vacuous: every report has units,
			// and most have the whole analysis (the layer's tests see only
			// their slice of checkouts, few units on a slow machine).
			if cur.Table.N() == 0 {
				t.Fatalf("the reference's report of %s has no units", x.ID)
			}
			if cur.Anova != nil && cur.Estimates != nil && len(cur.SRM) > 0 && cur.Table.N() >= 30 {
				analysed++
			}
			// Every window of the test, the current one and those closed
			// when a later test's start changed its subset.
			wins := c.ref.Windows().List(x.ID)
			for i, d := range c.reps {
				if got := d.Windows().List(x.ID); len(got) != len(wins) {
					t.Errorf("%s: replica %d has %d windows, the reference %d", x.ID, i+1, len(got), len(wins))
				}
			}
			for _, w := range wins {
				want, err := c.ref.Reports().Report(context.Background(), x.ID, w.Seq, report.Options{})
				if err != nil {
					t.Fatalf("reference report of %s window %d: %v", x.ID, w.Seq, err)
				}
				for i, d := range c.reps {
					got, err := d.Reports().Report(context.Background(), x.ID, w.Seq, report.Options{})
					if err != nil {
						t.Errorf("replica %d's report of %s window %d: %v", i+1, x.ID, w.Seq, err)
						continue
					}
					if diff := reporttest.Diff(want, got, 1e-9); diff != "" {
						t.Errorf("%s window %d (members %v; replica's %v): replica %d's report differs from the reference's: %s", x.ID, w.Seq,
							want.Window.Members, got.Window.Members, i+1, diff)
					}
					compared++
				}
			}
			tests++
		}
	}
	res, err := Run(ctx, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		WriteSummary(os.Stderr, res)
	}
	if analysed < 4 {
		t.Errorf("%d of %d reports have ANOVA, estimates, SRM and 30 units; want at least 4", analysed, tests)
	}
	if tests != len(res.Reports) || tests == 0 || compared < 3*tests {
		t.Errorf("compared %d reports of %d tests, want 3 replicas × every window of each of %d tests", compared, tests, len(res.Reports))
	}
	if res.Errors != 0 || res.SpansFailed != 0 {
		t.Errorf("%d requests failed, %d spans failed to export", res.Errors, res.SpansFailed)
	}
	if res.Counters.SpansLate != 0 || refLate != 0 {
		t.Errorf("spans late (after their trace completed): %d on the replicas, %d on the reference; the machine was too loaded for a %s idle timeout",
			res.Counters.SpansLate, refLate, cfg.traceIdle)
	}

	// The routing: every span was routed to a replica that received it,
	// every replica got a share, and each trace completed on the replica
	// it was routed to.
	var spans, traces int64
	for i, r := range res.Replicas {
		spans += r.Routed.Spans
		traces += r.Routed.Traces
		if r.Routed.Traces == 0 || uint64(r.Routed.Spans) != r.Counters.SpansReceived || uint64(r.Routed.Traces) != r.Counters.TracesCompleted {
			t.Errorf("replica %d: routed %+v, received %d spans, completed %d traces", i+1, r.Routed, r.Counters.SpansReceived, r.Counters.TracesCompleted)
		}
	}
	if len(res.Replicas) != 3 || spans != res.SpansAcked || uint64(traces) != res.Counters.TracesCompleted {
		t.Errorf("%d replicas were routed %d spans and %d traces; acknowledged %d spans, completed %d traces", len(res.Replicas), spans, traces,
			res.SpansAcked, res.Counters.TracesCompleted)
	}
	lines := strings.Split(strings.TrimSpace(routes.String()), "\n")
	if int64(len(lines)) != traces {
		t.Errorf("%d route lines, %d traces routed", len(lines), traces)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		id, err := hex.DecodeString(f[0])
		if len(f) != 2 || err != nil || len(id) != 16 || f[1] != strconv.Itoa(otlproute.Pick(id, 3)+1) {
			t.Fatalf("route line %q: want TRACE_ID and its replica", l)
		}
	}
	t.Logf("%d traces (%d spans) over 3 replicas; %d reports (%d windows of %d tests × 3 replicas; %d tests with ANOVA, estimates and SRM) equal the reference's",
		traces, spans, compared, compared/3, tests, analysed)
}

// The demo on replicas refuses, before any traffic, a PostgreSQL it cannot
// reach (naming the replica and the server) and a database that already
// holds a configuration (an earlier run's state would merge into its
// windows), and stops the replicas it started.
func TestDemoReplicasRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL tests skipped in -short mode")
	}
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	_, err := Run(ctx, Config{Replicas: 2, Store: "postgres://abmesh@127.0.0.1:1/none?connect_timeout=2", Logger: quiet}, false)
	if err == nil || !strings.Contains(err.Error(), "replica 1") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("unreachable PostgreSQL: %v, want replica 1 and the server named", err)
	}

	url := pgtest.Start(t).NewDatabase(t)
	d := daemontest.Start(t, daemontest.Store(url))
	if _, err := d.Registry().CreateLayer(ctx, &assign.Layer{ID: "earlier"}); err != nil {
		t.Fatal(err)
	}
	d.Stop()
	_, err = Run(ctx, Config{Replicas: 2, Store: url, Logger: quiet}, false)
	if err == nil || !strings.Contains(err.Error(), "already holds a configuration (version 1)") {
		t.Errorf("a database with a configuration: %v", err)
	}
	if r := redact("postgres://abmesh:s3cret@db:5432/abmesh"); strings.Contains(r, "s3cret") || !strings.Contains(r, "db:5432/abmesh") {
		t.Errorf("redact: %s", r)
	}
}
