package daemon_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/otlproute"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	"github.com/abmesh/abmesh/internal/testkit/pgtest"
	"github.com/abmesh/abmesh/internal/testkit/reporttest"
	"github.com/abmesh/abmesh/tracing"
)

func otlpExporter(t *testing.T, addr string) *otlptrace.Exporter {
	t.Helper()
	e, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e
}

// replicaSet is one embedded abmeshd (bbolt) and replicas on one
// PostgreSQL, for tests that compare what the replicas report with what
// one node fed every trace reports.
type replicaSet struct {
	t      *testing.T
	single *daemon.Daemon
	reps   []*daemon.Daemon
}

// startReplicaSet starts the single node and n replicas on the database at
// url, each with the OTLP receiver on, fast trace assembly and flushes,
// then opts.
func startReplicaSet(t *testing.T, url string, n int, opts ...daemontest.Option) *replicaSet {
	fast := func(c *daemon.Config) {
		c.Assembly = tracing.Config{IdleTimeout: 200 * time.Millisecond}
		c.FlushInterval = 100 * time.Millisecond
	}
	rs := &replicaSet{t: t, single: daemontest.Start(t, append([]daemontest.Option{daemontest.OTLP(), fast}, opts...)...)}
	for range n {
		rs.reps = append(rs.reps, daemontest.Start(t, append([]daemontest.Option{daemontest.Store(url), daemontest.OTLP(), fast}, opts...)...))
	}
	return rs
}

// admin makes the same admin change on the single node and on replica 1,
// and waits until every replica has it.
func (rs *replicaSet) admin(f func(r *assign.Registry) error) {
	t := rs.t
	t.Helper()
	for _, r := range []*assign.Registry{rs.single.Registry(), rs.reps[0].Registry()} {
		if err := f(r); err != nil {
			t.Fatal(err)
		}
	}
	want := rs.reps[0].Registry().Version()
	testkit.Eventually(t, fmt.Sprintf("every replica at config version %d", want), func() bool {
		for _, d := range rs.reps {
			if d.Registry().Version() != want {
				return false
			}
		}
		return true
	})
}

// createStarted creates, then starts, each experiment on every node.
func (rs *replicaSet) createStarted(xs ...assign.Experiment) {
	ctx := context.Background()
	for _, x := range xs {
		rs.admin(func(r *assign.Registry) error { y := x; _, err := r.Create(ctx, &y); return err })
	}
	for _, x := range xs {
		rs.admin(func(r *assign.Registry) error { _, err := r.Start(ctx, x.ID); return err })
	}
}

// tracer returns a tracer of service whose spans go to the single node
// and to the replica otlproute picks for their trace id (as a
// load-balancing exporter with routing_key traceID would).
func (rs *replicaSet) tracer(service string) trace.Tracer {
	t := rs.t
	var exps []sdktrace.SpanExporter
	for _, d := range rs.reps {
		exps = append(exps, otlpExporter(t, d.OTLPAddr()))
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(otlpExporter(t, rs.single.OTLPAddr())), sdktrace.WithSyncer(otlproute.NewRouter(nil, exps...)),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("t")
}

// expose records on span that test served unit its hash variant.
func expose(t *testing.T, span trace.Span, eng *assign.Engine, test, unit string) {
	a, err := eng.EvaluateTest(test, unit, nil)
	if err != nil {
		t.Fatal(err)
	}
	span.AddEvent("feature_flag.evaluation", trace.WithAttributes(
		attribute.String("feature_flag.key", test), attribute.String("feature_flag.result.variant", a.Variant),
		attribute.String("feature_flag.context.id", unit), attribute.String("feature_flag.version", "1"),
		attribute.String("abmesh.reason", "HASH")))
}

func counted(d *daemon.Daemon, id string) int64 {
	w, _ := d.Windows().Current(id)
	return w.Quality.Counted
}

// waitCounted waits until the current window of test has counted total
// requests on the single node and over the replicas, and returns each
// replica's share.
func (rs *replicaSet) waitCounted(test string, total int64) []int64 {
	var n int64
	rs.t.Cleanup(func() {
		if rs.t.Failed() {
			rs.t.Logf("counted %d of %d traces on the replicas, %d on the single node; quality %+v", n, total, counted(rs.single, test), rs.reps[0].Windows().Quality(test))
		}
	})
	testkit.Eventually(rs.t, "every trace counted", func() bool {
		n = 0
		for _, d := range rs.reps {
			n += counted(d, test)
		}
		return n == total && counted(rs.single, test) == total
	})
	var shares []int64
	for _, d := range rs.reps {
		shares = append(shares, counted(d, test))
	}
	return shares
}

// compareReports checks that every replica's report of each test's
// current window equals the single node's to 1e-9 (reporttest.Diff, and
// the window's members), once the replicas have flushed total counted
// requests; units is the number of units the single node's report must
// have.
func (rs *replicaSet) compareReports(tests []string, total, units int64) {
	t := rs.t
	for _, id := range tests {
		want, err := rs.single.Reports().Report(context.Background(), id, 0, report.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if want.Anova == nil || want.Estimates == nil || len(want.SRM) == 0 || want.Table.N() != units {
			t.Fatalf("the single node's report of %s has no ANOVA, estimates or SRM, or not %d units: %+v", id, units, want)
		}
		for i, d := range rs.reps {
			var got *report.Report
			// The merged state is as of each replica's last flush.
			testkit.Eventually(t, "merged counts of every replica", func() bool {
				got, err = d.Reports().Report(context.Background(), id, 0, report.Options{})
				return err == nil && got.Window.Quality.Counted == total
			})
			if d := reporttest.Diff(want, got, 1e-9) + testkit.JSONDiff(want.Window.Members, got.Window.Members, 0, "members"); d != "" {
				t.Errorf("test %s, replica %d: %s", id, i+1, d)
			}
		}
	}
}

// orderValueTest is an experiment at web measuring order.value.
func orderValueTest(id string) assign.Experiment {
	return assign.Experiment{ID: id, ChangeService: "web", MeasureService: "web",
		Metric:   assign.Metric{Kind: assign.MetricAttribute, Attribute: "order.value", HigherIsBetter: true},
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "green", Weight: 1}},
		Plan:     assign.Plan{MDE: 1, SD: 1}}
}

// Three replicas on one PostgreSQL receive the traces routed to them by
// trace id; one embedded abmeshd (bbolt) receives every trace. Every
// replica's report of each test (cells, quality, ANOVA, estimates, SRM)
// equals the single node's to 1e-9.
func TestReplicaReportsEqualOneNode(t *testing.T) {
	rs := startReplicaSet(t, pgtest.Start(t).NewDatabase(t), 3)
	tests := []string{"a", "b"}
	rs.createStarted(orderValueTest("a"), orderValueTest("b"))
	eng := rs.reps[0].Registry().Snapshot()
	tr := rs.tracer("web")
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(14, 2))
	total := 0
	for u := range 150 {
		unit := fmt.Sprintf("user-%d", u)
		for range 1 + rng.IntN(4) {
			_, span := tr.Start(ctx, "GET /checkout", trace.WithSpanKind(trace.SpanKindServer))
			for _, id := range tests {
				expose(t, span, eng, id, unit)
			}
			span.SetAttributes(attribute.Float64("order.value", 20+80*rng.Float64()))
			span.End()
			total++
		}
	}
	shares := rs.waitCounted("a", int64(total))
	rs.compareReports(tests, int64(total), 150)
	t.Logf("%d traces of 150 units split %v over 3 replicas; every replica's reports equal the single node's", total, shares)
}
