package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	"github.com/abmesh/abmesh/internal/testkit/pgtest"
	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/otlpload"
)

// lockedBuffer is a log destination safe for the daemon's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// lostPostgres is a replica on PostgreSQL server srv, with the OTLP
// receiver and /metrics, experiment new-home running (the flag otlpload
// puts on every trace's root), fast flushes and logs kept in log.
type lostPostgres struct {
	t   *testing.T
	srv *pgtest.Server
	d   *daemon.Daemon
	log *lockedBuffer
}

func startLostPostgres(t *testing.T, opts ...daemontest.Option) *lostPostgres {
	srv := pgtest.Start(t)
	lp := &lostPostgres{t: t, srv: srv, log: &lockedBuffer{}}
	opts = append([]daemontest.Option{daemontest.Store(srv.NewDatabase(t)), daemontest.OTLP(), daemontest.HTTP(), func(c *daemon.Config) {
		c.Assembly = tracing.Config{IdleTimeout: 200 * time.Millisecond}
		c.FlushInterval = 100 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(lp.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}}, opts...)
	lp.d = daemontest.Start(t, opts...)
	daemontest.CreateStarted(t, lp.d.Registry(), &assign.Experiment{ID: "new-home", Owner: "team", ChangeService: "frontend", MeasureService: "frontend",
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "treatment", Weight: 1}}, Plan: assign.Plan{MDE: 1, SD: 5}})
	return lp
}

// load sends otlpload's traces for dur at rate spans/s (0: as fast as
// they are taken), never retrying a refused request, and returns what the
// receiver answered. A failure other than a refusal ends the test.
func (lp *lostPostgres) load(dur time.Duration, rate int) otlpload.Result {
	lp.t.Helper()
	r, err := otlpload.Run(context.Background(), otlpload.Config{Endpoint: lp.d.OTLPAddr(), Duration: dur, Rate: rate,
		Concurrency: 2, Connections: 1, Units: 500})
	if err != nil && r.Refused == 0 {
		lp.t.Fatalf("load: %v", err)
	}
	if r.Failed != 0 || r.Rejected != 0 || r.InDoubt != 0 {
		lp.t.Fatalf("load: %d calls failed, %d spans rejected, %d traces in doubt (%s)", r.Failed, r.Rejected, r.InDoubt, r.FirstError)
	}
	return r
}

func (lp *lostPostgres) count(name string) int64 {
	for k, v := range lp.d.Counts() {
		if k == name {
			return v
		}
	}
	lp.t.Fatalf("no count %s", name)
	return 0
}

// seen is the traces counted in new-home's current window: by this
// replica, or merged from every replica's rows in PostgreSQL as the
// report reads them (as of the last flush).
func (lp *lostPostgres) seen(merged bool) int64 {
	if !merged {
		w, _ := lp.d.Windows().Current("new-home")
		return w.Quality.Seen
	}
	r, err := lp.d.Reports().Report(context.Background(), "new-home", 0, report.Options{})
	if err != nil {
		return -1
	}
	return r.Window.Quality.Seen
}

// probe is a one-trace Export of service frontend carrying new-home for
// a unit of its own, padded to 64 KiB so that few fit a log's last bytes.
func probe(n int) *collectortrace.ExportTraceServiceRequest {
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	now := uint64(time.Now().UnixNano())
	traceID := []byte(fmt.Sprintf("probe-%010d", n))
	unit := fmt.Sprint("probe-", n)
	return &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "frontend")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: traceID, SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "GET /", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: now - 1e6, EndTimeUnixNano: now,
			Attributes: []*commonpb.KeyValue{str("abmesh.unit", unit), str("padding", strings.Repeat("x", 64<<10))},
			Events: []*tracepb.Span_Event{{Name: "feature_flag.evaluation", TimeUnixNano: now, Attributes: []*commonpb.KeyValue{
				str("feature_flag.key", "new-home"), str("feature_flag.result.variant", "control"), str("feature_flag.context.id", unit),
				str("feature_flag.version", "1")}}},
		}}}},
	}}}
}

// PostgreSQL stops under a replica taking OTLP with the write-ahead log
// on (--wal-max-bytes 4 MiB): Exports are acknowledged while the log has
// room, then answered RESOURCE_EXHAUSTED with a RetryInfo; flushes fail
// (counted in /metrics, logged naming the server) and are retried. Once
// the server is back a flush saves everything, the log is truncated, OTLP
// is accepted again, and the merged report counts exactly the traces
// acknowledged before, during and after the outage.
func TestPostgresLostOTLPUpToTheLogBound(t *testing.T) {
	const walMax = 4 << 20
	lp := startLostPostgres(t, func(c *daemon.Config) {
		c.OTLP.MaxMessageBytes = walMax / 4
		c.WAL.MaxBytes = walMax
	})
	acked := lp.load(time.Second, 5000).Traces
	testkit.Eventually(t, "the first traces flushed", func() bool { return lp.seen(true) == acked })

	lp.srv.Stop()
	during := lp.load(3*time.Second, 0)
	acked += during.Traces
	if during.Traces == 0 || during.Refused == 0 {
		t.Fatalf("with PostgreSQL down: %d traces acknowledged, %d spans refused; want some of each", during.Traces, during.Refused)
	}
	if b := lp.count("wal.bytes"); b > walMax || b < walMax/2 {
		t.Errorf("write-ahead log at %d bytes with PostgreSQL down, want it filled up to its bound %d", b, walMax)
	}
	// A small request may still fit the last bytes; the first one that
	// does not is refused with RetryInfo.
	var refusal *status.Status
	tc := collectortrace.NewTraceServiceClient(daemontest.Dial(t, lp.d.OTLPAddr()))
	for i := 0; refusal == nil && i < 100; i++ {
		_, err := tc.Export(context.Background(), probe(i))
		if err == nil {
			acked++
			continue
		}
		refusal = status.Convert(err)
	}
	if refusal.Code() != codes.ResourceExhausted || !strings.Contains(refusal.Message(), "--wal-max-bytes") {
		t.Fatalf("refusal = %v, want RESOURCE_EXHAUSTED naming --wal-max-bytes", refusal)
	}
	hasRetry := false
	for _, d := range refusal.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			hasRetry = true
		}
	}
	if !hasRetry {
		t.Errorf("refusal %v carries no RetryInfo", refusal)
	}
	if n := lp.count("otlp.requests_refused_wal"); n == 0 {
		t.Error("otlp.requests_refused_wal = 0 after refusals")
	}
	testkit.Eventually(t, "every acknowledged trace counted in memory", func() bool { return lp.seen(false) == acked })
	fams := scrape(t, lp.d)
	if v := value(fams, "abmesh_flushes_total", "result", "error"); v < 1 {
		t.Errorf("abmesh_flushes_total{result=error} = %v with PostgreSQL down", v)
	}
	if !strings.Contains(lp.log.String(), "PostgreSQL at "+lp.srv.Addr()) {
		t.Errorf("no log names the server %s; logs:\n%s", lp.srv.Addr(), lp.log.String())
	}
	peak := lp.count("wal.bytes")

	if err := lp.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "a flush, logged, and the log truncated once PostgreSQL is back", func() bool {
		return lp.count("wal.bytes") <= walMax/4+walMax/16 && lp.count("wal.unflushed_records") <= 1 &&
			strings.Contains(lp.log.String(), "flushed again after failures")
	})
	after := lp.load(time.Second, 5000)
	if after.Refused != 0 || after.Traces == 0 {
		t.Errorf("after PostgreSQL came back: %d traces acknowledged, %d spans refused", after.Traces, after.Refused)
	}
	acked += after.Traces
	testkit.Eventually(t, "the merged report counting every acknowledged trace", func() bool {
		return lp.seen(true) == acked && lp.seen(false) == acked
	})
	t.Logf("acknowledged %d traces (%d while PostgreSQL was down, %d spans refused then, log peak %d B of %d); the merged report counts %d",
		acked, during.Traces, during.Refused, peak, walMax, lp.seen(true))
}

// With --wal=false PostgreSQL's loss refuses nothing: what is counted
// stays in memory (per-unit totals, which abmeshd holds anyway: the
// memory does not grow with the spans), failed flushes are retried, and
// once the server is back the merged report counts every acknowledged
// trace. (A crash meanwhile loses what was counted since the last flush,
// as --wal=false always does.)
func TestPostgresLostWithoutLog(t *testing.T) {
	lp := startLostPostgres(t, func(c *daemon.Config) { c.WAL.Off = true })
	acked := lp.load(time.Second, 5000).Traces
	lp.srv.Stop()
	during := lp.load(2*time.Second, 5000)
	if during.Refused != 0 || during.Traces == 0 {
		t.Errorf("with PostgreSQL down and --wal=false: %d traces acknowledged, %d spans refused", during.Traces, during.Refused)
	}
	acked += during.Traces
	testkit.Eventually(t, "failed flushes", func() bool {
		return value(scrape(t, lp.d), "abmesh_flushes_total", "result", "error") >= 1
	})
	if err := lp.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the merged report counting every acknowledged trace", func() bool {
		return lp.seen(true) == acked && lp.seen(false) == acked
	})
	t.Logf("acknowledged %d traces (%d while PostgreSQL was down); the merged report counts %d", acked, during.Traces, lp.seen(true))
}
