package daemon_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	"github.com/abmesh/abmesh/internal/testkit/pgtest"
	"github.com/abmesh/abmesh/internal/wal"
	"github.com/abmesh/abmesh/tracing"
)

// oneTrace is an Export request of one two-span trace with id {n}.
func oneTrace(n byte) *collectortrace.ExportTraceServiceRequest {
	now := uint64(time.Now().UnixNano())
	id := make([]byte, 16)
	id[0] = n
	span := func(s byte) *tracepb.Span {
		return &tracepb.Span{TraceId: id, SpanId: []byte{s, 0, 0, 0, 0, 0, 0, 1}, Name: "GET /", StartTimeUnixNano: now - 1e6, EndTimeUnixNano: now}
	}
	return &collectortrace.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name",
			Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "web"}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{span(1), span(2)}}},
	}}}
}

func count(d *daemon.Daemon, name string) int64 {
	for n, v := range d.Counts() {
		if n == name {
			return v
		}
	}
	return 0
}

// A replica restarts with requests for traces 1 and 2 in its write-ahead
// log, unacknowledged: the exporter has re-sent trace 1 to replica B
// already, and re-sends trace 2 to B after the restart. With the claims,
// B holds trace 1 when the restarted replica claims its log, so the
// replay leaves it to B; trace 2 is counted by the replay, and B drops its
// copy as claimed: two traces counted. Without them (--wal-claims=false)
// both are counted twice.
func TestClaimsCountReSentTracesOnce(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	for _, claims := range []bool{true, false} {
		t.Run(fmt.Sprint("claims=", claims), func(t *testing.T) {
			opts := func(c *daemon.Config) {
				c.Assembly = tracing.Config{IdleTimeout: 300 * time.Millisecond}
				c.FlushInterval = 100 * time.Millisecond
				c.WAL.NoClaims = !claims
			}
			b := daemontest.Start(t, daemontest.Store(url), daemontest.OTLP(), opts)
			otlp := collectortrace.NewTraceServiceClient(daemontest.Dial(t, b.OTLPAddr()))
			if _, err := otlp.Export(t.Context(), oneTrace(1)); err != nil {
				t.Fatal(err)
			}
			// The restarting replica's log: both requests, never flushed.
			dir := t.TempDir()
			l, err := wal.Open(filepath.Join(dir, "wal"), 0, wal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []byte{1, 2} {
				data, err := proto.Marshal(oneTrace(n))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := l.Append(data); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			a := daemontest.Start(t, daemontest.Store(url), daemontest.OTLP(), daemontest.DataDir(dir), opts)
			if _, err := otlp.Export(t.Context(), oneTrace(2)); err != nil {
				t.Fatal(err)
			}
			want, held, dropped := int64(2), int64(1), int64(2)
			if !claims {
				want, held, dropped = 4, 0, 0
			}
			testkit.Eventually(t, fmt.Sprintf("%d traces completed", want), func() bool {
				return count(a, "traces.completed")+count(b, "traces.completed") == want &&
					count(a, "traces.in_flight")+count(b, "traces.in_flight") == 0
			})
			time.Sleep(500 * time.Millisecond) // nothing more completes
			ca, cb := count(a, "traces.completed"), count(b, "traces.completed")
			if ca+cb != want || count(a, "claims.traces_held_elsewhere") != held || count(b, "spans.claimed") != dropped {
				t.Errorf("traces counted: %d by the restarted replica, %d by B, want %d in all; held elsewhere %d (want %d); B dropped %d spans as claimed (want %d)",
					ca, cb, want, count(a, "claims.traces_held_elsewhere"), held, count(b, "spans.claimed"), dropped)
			}
		})
	}
}
