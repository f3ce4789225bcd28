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

// Three replicas on one PostgreSQL receive the traces routed to them by
// trace id; one embedded abmeshd (bbolt) receives every trace. Every
// replica's report of each test (cells, quality, ANOVA, estimates, SRM)
// equals the single node's to 1e-9.
func TestReplicaReportsEqualOneNode(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx := context.Background()
	fast := func(c *daemon.Config) {
		c.Assembly = tracing.Config{IdleTimeout: 200 * time.Millisecond}
		c.FlushInterval = 100 * time.Millisecond
	}
	single := daemontest.Start(t, daemontest.OTLP(), fast)
	var reps []*daemon.Daemon
	for range 3 {
		reps = append(reps, daemontest.Start(t, daemontest.Store(url), daemontest.OTLP(), fast))
	}
	// The same admin changes on the single node and on replica 1; each
	// waits until every replica has it, so all open the same windows.
	admin := func(f func(r *assign.Registry) error) {
		t.Helper()
		for _, r := range []*assign.Registry{single.Registry(), reps[0].Registry()} {
			if err := f(r); err != nil {
				t.Fatal(err)
			}
		}
		want := reps[0].Registry().Version()
		testkit.Eventually(t, fmt.Sprintf("every replica at config version %d", want), func() bool {
			for _, d := range reps {
				if d.Registry().Version() != want {
					return false
				}
			}
			return true
		})
	}
	tests := []string{"a", "b"}
	for _, id := range tests {
		admin(func(r *assign.Registry) error {
			_, err := r.Create(ctx, &assign.Experiment{ID: id, ChangeService: "web", MeasureService: "web",
				Metric:   assign.Metric{Kind: assign.MetricAttribute, Attribute: "order.value", HigherIsBetter: true},
				Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "green", Weight: 1}},
				Plan:     assign.Plan{MDE: 1, SD: 1}})
			return err
		})
	}
	for _, id := range tests {
		admin(func(r *assign.Registry) error { _, err := r.Start(ctx, id); return err })
	}
	eng := reps[0].Registry().Snapshot()

	var exps []sdktrace.SpanExporter
	for _, d := range reps {
		exps = append(exps, otlpExporter(t, d.OTLPAddr()))
	}
	// Each span to the single node, and to the replica otlproute picks for
	// its trace id (as a load-balancing exporter with routing_key traceID
	// would).
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(otlpExporter(t, single.OTLPAddr())), sdktrace.WithSyncer(otlproute.NewRouter(nil, exps...)),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "web"))))
	defer tp.Shutdown(ctx)
	rng := rand.New(rand.NewPCG(14, 2))
	total := 0
	for u := range 150 {
		unit := fmt.Sprintf("user-%d", u)
		for range 1 + rng.IntN(4) {
			_, span := tp.Tracer("t").Start(ctx, "GET /checkout", trace.WithSpanKind(trace.SpanKindServer))
			for _, id := range tests {
				a, err := eng.EvaluateTest(id, unit, nil)
				if err != nil {
					t.Fatal(err)
				}
				span.AddEvent("feature_flag.evaluation", trace.WithAttributes(
					attribute.String("feature_flag.key", id), attribute.String("feature_flag.result.variant", a.Variant),
					attribute.String("feature_flag.context.id", unit), attribute.String("feature_flag.version", "1"),
					attribute.String("abmesh.reason", "HASH")))
			}
			span.SetAttributes(attribute.Float64("order.value", 20+80*rng.Float64()))
			span.End()
			total++
		}
	}
	counted := func(d *daemon.Daemon, id string) int64 {
		w, _ := d.Windows().Current(id)
		return w.Quality.Counted
	}
	testkit.Eventually(t, "every trace counted", func() bool {
		var n int64
		for _, d := range reps {
			n += counted(d, "a")
		}
		return n == int64(total) && counted(single, "a") == int64(total)
	})
	var shares []int64
	for _, d := range reps {
		shares = append(shares, counted(d, "a"))
	}
	for _, id := range tests {
		want, err := single.Reports().Report(id, 0, report.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if want.Anova == nil || want.Estimates == nil || len(want.SRM) == 0 || want.Table.N() != 150 {
			t.Fatalf("the single node's report of %s has no ANOVA, estimates or SRM, or not 150 units: %+v", id, want)
		}
		for i, d := range reps {
			var got *report.Report
			// The merged state is as of each replica's last flush.
			testkit.Eventually(t, "merged counts of every replica", func() bool {
				got, err = d.Reports().Report(id, 0, report.Options{})
				return err == nil && got.Window.Quality.Counted == int64(total)
			})
			if d := reporttest.Diff(want, got, 1e-9); d != "" {
				t.Errorf("test %s, replica %d: %s", id, i+1, d)
			}
		}
	}
	t.Logf("%d traces of 150 units split %v over 3 replicas; every replica's reports equal the single node's", total, shares)
}
