package otlproute

import (
	"context"
	"errors"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// FNV-1a's published 32-bit values: "" → 0x811c9dc5, "a" → 0xe40c292c.
func TestPickIsFNV1a(t *testing.T) {
	for _, c := range []struct {
		in   string
		hash uint32
	}{{"", 0x811c9dc5}, {"a", 0xe40c292c}, {"foobar", 0xbf9cf968}} {
		for _, n := range []int{1, 2, 3, 7, 1 << 20} {
			if got, want := Pick([]byte(c.in), n), int(c.hash%uint32(n)); got != want {
				t.Errorf("Pick(%q, %d) = %d, want %d", c.in, n, got, want)
			}
		}
	}
}

// failing refuses every export.
type failing struct{ tracetest.InMemoryExporter }

func (*failing) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error {
	return errors.New("unavailable")
}

// 200 traces of a root and two children, exported in batches that mix
// traces, over 3 receivers: every span reaches the receiver Pick names for
// its trace, the tally counts each receiver's spans and roots, and the
// routes name each trace once with its receiver.
func TestRouterKeepsTracesWhole(t *testing.T) {
	ctx := context.Background()
	exps := []*tracetest.InMemoryExporter{tracetest.NewInMemoryExporter(), tracetest.NewInMemoryExporter(), tracetest.NewInMemoryExporter()}
	var routes strings.Builder
	tally := NewTally(3, &routes)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(NewRouter(tally, exps[0], exps[1], exps[2]), sdktrace.WithMaxExportBatchSize(50)))
	want := make([]Count, 3)
	ids := map[string]int{}
	for range 200 {
		rctx, root := tp.Tracer("t").Start(ctx, "root")
		for range 2 {
			_, c := tp.Tracer("t").Start(rctx, "child")
			c.End()
		}
		root.End()
		id := root.SpanContext().TraceID()
		i := Pick(id[:], 3)
		want[i].Traces++
		want[i].Spans += 3
		ids[id.String()] = i + 1
	}
	if err := tp.ForceFlush(ctx); err != nil { // Shutdown would empty the in-memory exporters
		t.Fatal(err)
	}
	defer tp.Shutdown(ctx)
	for i, e := range exps {
		for _, s := range e.GetSpans() {
			id := s.SpanContext.TraceID()
			if p := Pick(id[:], 3); p != i {
				t.Fatalf("a span of trace %s reached receiver %d, Pick says %d", id, i, p)
			}
		}
		if int64(len(e.GetSpans())) != want[i].Spans {
			t.Errorf("receiver %d got %d spans, want %d", i, len(e.GetSpans()), want[i].Spans)
		}
	}
	if got := tally.Counts(); got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("tally %v, want %v", got, want)
	}
	lines := strings.Split(strings.TrimSpace(routes.String()), "\n")
	if len(lines) != 200 {
		t.Fatalf("%d route lines, want 200", len(lines))
	}
	for _, l := range lines {
		var id string
		var r int
		if f := strings.Fields(l); len(f) == 2 {
			id = f[0]
			r = int(f[1][0] - '0')
		}
		if ids[id] != r || r == 0 {
			t.Errorf("route line %q: want receiver %d", l, ids[id])
		}
		delete(ids, id)
	}
}

// A receiver that fails does not stop the others; the error names it,
// and the tally counts what was sent to each.
func TestRouterFailurePerReceiver(t *testing.T) {
	ctx := context.Background()
	ok := tracetest.NewInMemoryExporter()
	tally := NewTally(2, nil)
	r := NewRouter(tally, ok, &failing{})
	var spans []sdktrace.ReadOnlySpan
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	for range 40 {
		_, s := tp.Tracer("t").Start(ctx, "root")
		s.End()
	}
	spans = rec.Ended()
	err := r.ExportSpans(ctx, spans)
	if err == nil || !strings.Contains(err.Error(), "receiver 2: unavailable") {
		t.Fatalf("err = %v, want receiver 2 named", err)
	}
	got := tally.Counts()
	if got[0].Spans != int64(len(ok.GetSpans())) || got[0].Spans == 0 || got[0].Spans+got[1].Spans != 40 || got[1].Traces != got[1].Spans {
		t.Errorf("tally %v after receiver 2 failed; receiver 1 got %d of 40", got, len(ok.GetSpans()))
	}
}
