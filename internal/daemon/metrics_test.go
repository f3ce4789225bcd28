package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dto "github.com/prometheus/client_model/go"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/tracing"
)

// startMetered starts abmeshd with the OTLP receiver and the HTTP pages
// (where /metrics is), short trace idle timeout and flush interval, and
// experiment "btn" started on service web.
func startMetered(t *testing.T) *daemon.Daemon {
	t.Helper()
	d := daemontest.Start(t, daemontest.OTLP(), daemontest.HTTP(), func(c *daemon.Config) {
		c.Assembly = tracing.Config{IdleTimeout: 100 * time.Millisecond}
		c.FlushInterval = 50 * time.Millisecond
	})
	daemontest.CreateStarted(t, d.Registry(), &assign.Experiment{ID: "btn", Owner: "team", ChangeService: "web", MeasureService: "web",
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "green", Weight: 1}}, Plan: assign.Plan{MDE: 1, SD: 1}})
	return d
}

// span is a one-span OTLP request of service web: trace id n (0 is
// malformed), carrying btn's variant for unit user-n.
func span(t *testing.T, d *daemon.Daemon, n byte) *collectortrace.ExportTraceServiceRequest {
	unit := fmt.Sprint("user-", n)
	a, err := d.Registry().Snapshot().EvaluateTest("btn", unit, nil)
	if err != nil {
		t.Fatal(err)
	}
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	now := uint64(time.Now().UnixNano())
	traceID := make([]byte, 16)
	traceID[15] = n
	return &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "web")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: traceID, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "GET /", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: now - 1e6, EndTimeUnixNano: now,
			Events: []*tracepb.Span_Event{{Name: "feature_flag.evaluation", TimeUnixNano: now, Attributes: []*commonpb.KeyValue{
				str("feature_flag.key", "btn"), str("feature_flag.result.variant", a.Variant), str("feature_flag.context.id", unit),
				str("feature_flag.version", "1"), str("abmesh.reason", "HASH")}}},
		}}}},
	}}}
}

// scrape returns d's /metrics, parsed.
func scrape(t *testing.T, d *daemon.Daemon) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + d.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of the series of family name whose labels include
// labels (name=value pairs), or -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// TestMetrics scrapes a real abmeshd's /metrics after known RPCs, OTLP
// exports and flushes and checks each series against what was done.
func TestMetrics(t *testing.T) {
	d := startMetered(t)
	conn := daemontest.Dial(t, d.Addr())
	experiments := pb.NewExperimentServiceClient(conn)
	for range 3 {
		if _, err := experiments.ListExperiments(t.Context(), &pb.ListExperimentsRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := experiments.GetExperiment(t.Context(), &pb.GetExperimentRequest{Id: "nope"}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetExperiment(nope) = %v, want NotFound", err)
	}
	watch, err := pb.NewAssignmentServiceClient(conn).Watch(t.Context(), &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	otlp := collectortrace.NewTraceServiceClient(daemontest.Dial(t, d.OTLPAddr()))
	for n := range byte(4) { // traces 1-3, and 0: an invalid trace id
		if _, err := otlp.Export(t.Context(), span(t, d, n)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "3 traces counted and saved", func() bool {
		fams := scrape(t, d)
		// Rows: one per window saved, one per unit saved (3 units, each
		// changed once).
		return value(fams, "abmesh_traces_completed_total") == 3 && value(fams, "abmesh_windows_saved_total") >= 1 &&
			value(fams, "abmesh_flush_rows_total") == value(fams, "abmesh_windows_saved_total")+3
	})

	fams := scrape(t, d)
	const exp, asg = "abmesh.v1.ExperimentService", "abmesh.v1.AssignmentService"
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"grpc_server_handled_total", []string{"grpc_service", exp, "grpc_method", "ListExperiments", "grpc_code", "OK"}, 3},
		{"grpc_server_handled_total", []string{"grpc_method", "GetExperiment", "grpc_code", "NotFound", "grpc_type", "unary"}, 1},
		{"grpc_server_handling_seconds", []string{"grpc_method", "ListExperiments"}, 3},
		{"grpc_server_started_total", []string{"grpc_service", asg, "grpc_method", "Watch", "grpc_type", "server_stream"}, 1},
		{"abmesh_grpc_server_in_flight", []string{"grpc_method", "Watch"}, 1},
		{"abmesh_grpc_server_in_flight", []string{"grpc_method", "ListExperiments"}, 0},
		{"grpc_server_handled_total", []string{"grpc_service", "opentelemetry.proto.collector.trace.v1.TraceService", "grpc_method", "Export", "grpc_code", "OK"}, 4},
		{"abmesh_otlp_requests_total", nil, 4},
		{"abmesh_otlp_spans_total", nil, 4},
		{"abmesh_spans_received_total", nil, 4},
		{"abmesh_spans_accepted_total", nil, 3},
		{"abmesh_spans_malformed_total", []string{"reason", "invalid_trace_id"}, 1},
		{"abmesh_spans_malformed_total", []string{"reason", "missing_service"}, 0},
		{"abmesh_spans_late_total", nil, 0},
		{"abmesh_spans_rejected_too_large_total", nil, 0},
		{"abmesh_traces_in_flight", nil, 0},
		{"abmesh_cells_counted", nil, 3},
		{"abmesh_units_held", nil, 3},
		{"abmesh_config_version", nil, float64(d.Registry().Version())},
		{"abmesh_flushes_total", []string{"result", "error"}, 0},
	} {
		if got := value(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if v := value(fams, "abmesh_flushes_total", "result", "ok"); v < 1 {
		t.Errorf("abmesh_flushes_total{result=ok} = %v", v)
	}
	if n, ok := value(fams, "abmesh_flush_seconds"), value(fams, "abmesh_flushes_total", "result", "ok"); n < 1 || n > ok {
		t.Errorf("abmesh_flush_seconds has %v observations, want 1 to the %v successful flushes", n, ok)
	}
	if v := value(fams, "abmesh_last_flush_timestamp_seconds"); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("abmesh_last_flush_timestamp_seconds = %v", v)
	}
	if v := value(fams, "abmesh_units_bytes"); v <= 0 {
		t.Errorf("abmesh_units_bytes = %v", v)
	}
	documented(t, fams)
	if value(fams, "process_resident_memory_bytes") <= 0 || value(fams, "go_goroutines") <= 0 {
		t.Errorf("no process or Go runtime metrics")
	}
}

// waitFor polls cond for up to 10 s; then the test fails naming what.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// prometheusBin is Debian's prometheus package's server (.ci/run installs
// it best effort).
const prometheusBin = "/usr/bin/prometheus"

// TestPrometheusScrapes runs a real Prometheus that scrapes abmeshd every
// second and reads series back over Prometheus's HTTP query API: the
// config version, and the calls of an RPC made before.
func TestPrometheusScrapes(t *testing.T) {
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Skipf("prometheus is not installed (%v): apt-get install prometheus", err)
	}
	d := startMetered(t)
	experiments := pb.NewExperimentServiceClient(daemontest.Dial(t, d.Addr()))
	for range 2 {
		if _, err := experiments.ListExperiments(t.Context(), &pb.ListExperimentsRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	api := startPrometheus(t, d.HTTPAddr())
	for _, c := range []struct {
		query string
		want  float64
	}{
		{`abmesh_config_version{job="abmesh"}`, float64(d.Registry().Version())},
		{`grpc_server_handled_total{job="abmesh",grpc_method="ListExperiments",grpc_code="OK"}`, 2},
		{`up{job="abmesh"}`, 1},
	} {
		var got float64
		var err error
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			if got, err = promQuery(api, c.query); err == nil && got == c.want {
				break
			}
		}
		if err != nil || got != c.want {
			t.Errorf("Prometheus: %s = %v (%v), want %v", c.query, got, err, c.want)
		}
	}
}

// startPrometheus starts Prometheus scraping target's /metrics every
// second as job "abmesh", with its storage in a temporary directory, and
// returns its HTTP API's base URL; it is stopped when t ends. job holds
// further lines of the job's scrape config (indented four spaces).
func startPrometheus(t *testing.T, target string, job ...string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: abmesh\n    static_configs:\n      - targets: [%q]\n", target)
	for _, l := range job {
		cfg += "    " + l + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := daemontest.FreeAddr(t)
	var out bytes.Buffer
	cmd := exec.Command(prometheusBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	return "http://" + addr
}

// promQuery runs an instant query over Prometheus's HTTP API and returns
// the value of its single series.
func promQuery(api, query string) (float64, error) {
	resp, err := http.Get(api + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value model.SamplePair
			}
		}
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("%s: %w", body, err)
	}
	if r.Status != "success" || len(r.Data.Result) != 1 {
		return 0, fmt.Errorf("want one series: %.300s", body)
	}
	return float64(r.Data.Result[0].Value.Value), nil
}

// documented checks that docs/operations.md names every abmesh and gRPC
// metric family of fams.
func documented(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range fams {
		if (strings.HasPrefix(name, "abmesh_") || strings.HasPrefix(name, "grpc_")) && !bytes.Contains(doc, []byte("`"+name)) {
			t.Errorf("docs/operations.md does not list %s", name)
		}
	}
}
