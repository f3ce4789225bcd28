package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	"github.com/abmesh/abmesh/tracing"
)

// TestSpansToCellsSurviveRestart sends real OTLP spans (the OpenTelemetry
// SDK's exporter) carrying feature-flag events to abmeshd, checks they land
// in the right cells, restarts abmeshd on the same data directory and
// checks the cells and the service graph are still there.
func TestSpansToCellsSurviveRestart(t *testing.T) {
	opts := []daemontest.Option{daemontest.DataDir(t.TempDir()), daemontest.OTLP(), daemontest.HTTP(), func(c *daemon.Config) {
		c.Assembly = tracing.Config{IdleTimeout: 200 * time.Millisecond}
		c.GraphRefresh = 50 * time.Millisecond
	}}
	ctx := context.Background()
	d := daemontest.Start(t, opts...)
	exp := &assign.Experiment{ID: "btn", ChangeService: "web", MeasureService: "web",
		Metric:   assign.Metric{Kind: assign.MetricAttribute, Attribute: "order.value", HigherIsBetter: true},
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "green", Weight: 1}},
		Plan:     assign.Plan{MDE: 1, SD: 1}}
	if _, err := d.Registry().Create(ctx, exp); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Registry().Start(ctx, "btn"); err != nil {
		t.Fatal(err)
	}
	eng := d.Registry().Snapshot()

	exporter, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(d.OTLPAddr()), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := func(service string) *sdktrace.TracerProvider {
		return sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter), sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", service))))
	}
	web, db := tp("web"), tp("db")
	want := map[string]int{}
	for i := 0; i < 40; i++ {
		unit := "user-" + strconv.Itoa(i)
		a, err := eng.EvaluateTest("btn", unit, nil)
		if err != nil {
			t.Fatal(err)
		}
		want[a.Variant]++
		sctx, span := web.Tracer("t").Start(ctx, "GET /", trace.WithSpanKind(trace.SpanKindServer))
		span.AddEvent("feature_flag.evaluation", trace.WithAttributes(
			attribute.String("feature_flag.key", "btn"), attribute.String("feature_flag.result.variant", a.Variant),
			attribute.String("feature_flag.context.id", unit), attribute.String("feature_flag.version", "1"),
			attribute.String("abmesh.reason", "HASH")))
		span.SetAttributes(attribute.Float64("order.value", float64(i)))
		_, child := db.Tracer("t").Start(sctx, "query", trace.WithSpanKind(trace.SpanKindServer))
		child.End()
		span.End()
	}
	deadline := time.Now().Add(10 * time.Second)
	var n int64
	for time.Now().Before(deadline) {
		w, ok := d.Windows().Current("btn")
		n = 0
		if ok {
			n = w.Quality.Counted
		}
		if n == 40 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n != 40 {
		t.Fatalf("counted %d of 40 requests; counters %+v", n, d.Assembler().Stats())
	}
	r, err := d.Reports().Report(context.Background(), "btn", 0, report.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Estimates.Cells {
		if int(c.N) != want[c.Levels[0]] {
			t.Errorf("cell %v has n %d, want %d", c.Levels, c.N, want[c.Levels[0]])
		}
	}
	// The report page shows the same cells.
	resp, err := http.Get("http://" + d.HTTPAddr() + "/reports/btn")
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(string(page), fmt.Sprintf("<td>green</td><td>%d</td>", want["green"])) {
		t.Errorf("GET /reports/btn: %s, %v\n%.300s", resp.Status, err, page)
	}
	if g := d.Graph().Snapshot(); len(g.Edges) != 1 || g.Edges[0].Caller != "web" || g.Edges[0].Callee != "db" || g.Edges[0].Calls != 40 {
		t.Errorf("graph = %+v", g)
	}
	_ = web.Shutdown(ctx)
	_ = db.Shutdown(ctx)
	d.Stop()

	d2 := daemontest.Start(t, opts...)
	w, ok := d2.Windows().Current("btn")
	if !ok || w.Quality.Counted != 40 {
		t.Fatalf("after restart the window has %+v (ok %v)", w.Quality, ok)
	}
	if g := d2.Graph().Snapshot(); len(g.Edges) != 1 || g.Edges[0].Calls != 40 {
		t.Errorf("graph after restart = %+v", g)
	}
}

// TestRareEdgesWaitForMinCalls: an edge joins the subsets' graph only once
// it has MinEdgeCalls calls, and then stays while it has any.
func TestRareEdgesWaitForMinCalls(t *testing.T) {
	d := daemontest.Start(t, func(c *daemon.Config) { c.MinEdgeCalls = 3 })
	edges := func() int { return len(d.Subsetter().Graph().Edges()) }
	call := func(n int) {
		d.Graph().AddCalls(time.Now(), []string{"a", "b"}, []tracing.Edge{{Caller: "a", Callee: "b", Calls: uint64(n)}})
		d.RefreshGraph()
	}
	call(2)
	if edges() != 0 {
		t.Fatalf("an edge with 2 calls is in the subsets' graph")
	}
	call(1)
	if edges() != 1 {
		t.Fatalf("an edge with 3 calls is not in the subsets' graph")
	}
}
