package daemon

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// metrics is abmeshd's Prometheus registry, served at /metrics on the
// HTTP listener (docs/operations.md lists every series). The trace
// consumer's counters are not duplicated: a collector reads them from
// Counts at each scrape, so /metrics and GetStatus cannot disagree. What
// only the daemon sees is counted here: gRPC calls (by interceptors on
// both gRPC servers) and flushes.
type metrics struct {
	reg *prometheus.Registry

	started  *prometheus.CounterVec   // grpc_server_started_total
	handled  *prometheus.CounterVec   // grpc_server_handled_total
	seconds  *prometheus.HistogramVec // grpc_server_handling_seconds
	inFlight *prometheus.GaugeVec     // abmesh_grpc_server_in_flight
	methods  sync.Map                 // full method → *rpcSeries

	flushes      *prometheus.CounterVec // abmesh_flushes_total{result}
	windowsSaved prometheus.Counter     // abmesh_windows_saved_total
	rowsSaved    prometheus.Counter     // abmesh_flush_rows_total
	flushTime    prometheus.Histogram   // abmesh_flush_seconds
	lastFlush    prometheus.Gauge       // abmesh_last_flush_timestamp_seconds
	failedRun    int                    // flushes failed in a row (flush's goroutine only)
}

// rpcLabels are a gRPC call's labels, as go-grpc-middleware's Prometheus
// provider names them, so that existing gRPC dashboards work.
var rpcLabels = []string{"grpc_type", "grpc_service", "grpc_method"}

// newMetrics registers the daemon's metrics, the Go runtime's and the
// process's (RSS, open files) in a registry of its own (several daemons
// may run in one test process).
func newMetrics(d *Daemon) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total", Help: "gRPC calls started on the API and OTLP ports.",
		}, rpcLabels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total", Help: "gRPC calls completed, by status code.",
		}, append(rpcLabels, "grpc_code")),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "grpc_server_handling_seconds", Help: "Time from a gRPC call's start to its end (streams: the stream's life).",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30, 300},
		}, rpcLabels),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "abmesh_grpc_server_in_flight", Help: "gRPC calls and streams open now (Watch streams: grpc_method=\"Watch\").",
		}, rpcLabels),
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abmesh_flushes_total", Help: "Flushes of the cells and the service graph to the store, by result (ok, error).",
		}, []string{"result"}),
		windowsSaved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "abmesh_windows_saved_total", Help: "Analysis windows (their cells and changed units) written to the store by flushes.",
		}),
		rowsSaved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "abmesh_flush_rows_total", Help: "Rows written to the store by flushes: one per window saved and one per changed unit's totals.",
		}),
		flushTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "abmesh_flush_seconds", Help: "Duration of flushes that saved everything (windows, units, graph and the write-ahead log's checkpoint).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms to 33 s
		}),
		lastFlush: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "abmesh_last_flush_timestamp_seconds", Help: "Unix time of the last flush that saved everything (0: none yet).",
		}),
	}
	m.reg.MustRegister(m.started, m.handled, m.seconds, m.inFlight, m.flushes, m.windowsSaved, m.rowsSaved, m.flushTime, m.lastFlush,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "abmesh_config_version", Help: "Version of the experiment configuration served (Watch snapshots carry it).",
		}, func() float64 { return float64(d.registry.Version()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "abmesh_leader", Help: "1 when this replica holds the leader lock of a PostgreSQL store (always 1 with bbolt), else 0.",
		}, func() float64 {
			if d.leader.Load() {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "abmesh_window_plan_generation", Help: "Generation of the leader's window plan this replica published or adopted last (0: none; always 0 with bbolt).",
		}, func() float64 { return float64(d.planGen.Load()) }),
		countsCollector{d},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"ok", "error"} {
		m.flushes.WithLabelValues(r)
	}
	return m
}

// handler serves /metrics and hands every other path to next.
func (m *metrics) handler(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.Handle("/", next)
	return mux
}

// serverOptions instrument a gRPC server's calls.
func (m *metrics) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(m.unary), grpc.ChainStreamInterceptor(m.stream)}
}

func (m *metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	s, t0 := m.begin("unary", info.FullMethod)
	resp, err := h(ctx, req)
	s.end(t0, err)
	return resp, err
}

func (m *metrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	typ := "bidi_stream"
	switch {
	case info.IsClientStream && !info.IsServerStream:
		typ = "client_stream"
	case info.IsServerStream && !info.IsClientStream:
		typ = "server_stream"
	}
	s, t0 := m.begin(typ, info.FullMethod)
	err := h(srv, ss)
	s.end(t0, err)
	return err
}

// rpcSeries are one method's series, looked up once: the label lookups
// would otherwise be most of the interceptor's cost on Assign's path
// (BenchmarkMetricsUnary).
type rpcSeries struct {
	labels   []string // grpc_type, grpc_service, grpc_method
	started  prometheus.Counter
	inFlight prometheus.Gauge
	seconds  prometheus.Observer
	ok       prometheus.Counter // handled with code OK
	handled  *prometheus.CounterVec
}

// begin counts a call to fullMethod ("/package.Service/Method") of type
// typ starting; the caller passes the time it returns to the series' end.
func (m *metrics) begin(typ, fullMethod string) (*rpcSeries, time.Time) {
	s, ok := m.methods.Load(fullMethod)
	if !ok {
		service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
		l := []string{typ, service, method}
		s, _ = m.methods.LoadOrStore(fullMethod, &rpcSeries{labels: l, started: m.started.WithLabelValues(l...),
			inFlight: m.inFlight.WithLabelValues(l...), seconds: m.seconds.WithLabelValues(l...),
			ok: m.handled.WithLabelValues(append(l, codes.OK.String())...), handled: m.handled})
	}
	rs := s.(*rpcSeries)
	rs.started.Inc()
	rs.inFlight.Inc()
	return rs, time.Now()
}

// end counts the end of a call begun at t0 that returned err.
func (s *rpcSeries) end(t0 time.Time, err error) {
	s.inFlight.Dec()
	s.seconds.Observe(time.Since(t0).Seconds())
	if code := status.Code(err); code != codes.OK {
		s.handled.WithLabelValues(append(s.labels[:3:3], code.String())...).Inc()
		return
	}
	s.ok.Inc()
}

// flushed records the outcome of a flush that took took: a successful
// one's duration and time, or a failure. It returns how many flushes had
// failed in a row before this successful one (0 after a failure).
func (m *metrics) flushed(err error, took time.Duration) (failedBefore int) {
	if err != nil {
		m.flushes.WithLabelValues("error").Inc()
		m.failedRun++
		return 0
	}
	m.flushes.WithLabelValues("ok").Inc()
	m.flushTime.Observe(took.Seconds())
	m.lastFlush.SetToCurrentTime()
	failedBefore, m.failedRun = m.failedRun, 0
	return failedBefore
}

// saveRows is the rows saves write: one per window and one per unit.
func saveRows(saves []subset.WindowSave) (rows int) {
	for _, s := range saves {
		rows += 1 + len(s.Units.Put)
	}
	return rows
}

// saved counts the windows and rows of saves written by a flush.
func (m *metrics) saved(saves ...subset.WindowSave) (rows int) {
	rows = saveRows(saves)
	m.windowsSaved.Add(float64(len(saves)))
	m.rowsSaved.Add(float64(rows))
	return rows
}

// countingStore counts the windows and rows a flush saves.
type countingStore struct {
	subset.Store
	m    *metrics
	rows *int // the rows saved so far by this flush
}

// SaveWindow saves w, within saveTimeout of its rows, and counts it once
// saved.
func (s countingStore) SaveWindow(ctx context.Context, w subset.WindowCells, units subset.UnitChanges) error {
	ctx, cancel := context.WithTimeout(ctx, saveTimeout(1+len(units.Put)))
	defer cancel()
	err := s.Store.SaveWindow(ctx, w, units)
	if err == nil {
		*s.rows += s.m.saved(subset.WindowSave{Cells: w, Units: units})
	}
	return err
}

// countsCollector exports Daemon.Counts at each scrape: "a.b" becomes
// abmesh_a_b_total (a counter), except the gauges (in flight, units held,
// the cells' data-quality totals over the windows held, which fall as
// windows are pruned, the write-ahead log's size and lag) and malformed spans, which are one counter with a
// reason label.
type countsCollector struct{ d *Daemon }

// Describe sends nothing: the series follow Counts (the Jaeger reader's
// only with --jaeger-query), so the collector is unchecked.
func (countsCollector) Describe(chan<- *prometheus.Desc) {}

// Collect sends every count of Counts, and a zero for each malformed
// reason Counts leaves out (it has only those seen), so that rate() sees
// a reason's first span.
func (c countsCollector) Collect(ch chan<- prometheus.Metric) {
	var seen [tracing.NumReasons]bool
	for name, v := range c.d.Counts() {
		for r := range tracing.NumReasons {
			seen[r] = seen[r] || name == malformedPrefix+r.String()
		}
		ch <- countMetric(name, float64(v))
	}
	for r := range tracing.NumReasons {
		if !seen[r] {
			ch <- countMetric(malformedPrefix+r.String(), 0)
		}
	}
}

const malformedPrefix = "spans.malformed."

// countMetric turns the count called name (Daemon.Counts) into its
// Prometheus metric.
func countMetric(name string, v float64) prometheus.Metric {
	help := "abmeshd's " + name + " count, as abmesh status shows it (docs/operations.md, Metrics)."
	if reason, ok := strings.CutPrefix(name, malformedPrefix); ok {
		desc := prometheus.NewDesc("abmesh_spans_malformed_total", "Spans refused as malformed, by reason.", []string{"reason"}, nil)
		return prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, reason)
	}
	metric := "abmesh_" + strings.ReplaceAll(name, ".", "_")
	if isGauge(name) {
		return prometheus.MustNewConstMetric(prometheus.NewDesc(metric, help, nil, nil), prometheus.GaugeValue, v)
	}
	return prometheus.MustNewConstMetric(prometheus.NewDesc(metric+"_total", help, nil, nil), prometheus.CounterValue, v)
}

// isGauge says whether the count called name can fall.
func isGauge(name string) bool {
	switch name {
	case "wal.bytes", "wal.segments", "wal.unflushed_records":
		return true
	}
	return strings.HasSuffix(name, ".in_flight") || strings.HasPrefix(name, "units.") || strings.HasPrefix(name, "cells.")
}
