package tracing

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/abmesh/abmesh/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type collector struct {
	mu  sync.Mutex
	obs []*Observation
}

func (c *collector) ConsumeObservation(o *Observation) {
	c.mu.Lock()
	c.obs = append(c.obs, o)
	c.mu.Unlock()
}

func (c *collector) get() []*Observation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Observation(nil), c.obs...)
}

func newTestAssembler(t *testing.T, cfg Config) (*Assembler, *collector, *testkit.Clock) {
	t.Helper()
	clk := testkit.NewClock(t0)
	cfg.Now = clk.Now
	if cfg.TickInterval == 0 {
		cfg.TickInterval = -1
	}
	col := &collector{}
	a, err := NewAssembler(cfg, col)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, col, clk
}

func mustAdd(t *testing.T, a *Assembler, spans ...Span) AddResult {
	t.Helper()
	res, err := a.Add(&Batch{Spans: spans})
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	return res
}

func checkBalance(t *testing.T, c AssemblyStats) {
	t.Helper()
	if c.SpansReceived != c.SpansAccepted+c.SpansLate+c.MalformedTotal() {
		t.Errorf("counters do not balance: received %d != accepted %d + late %d + malformed %d",
			c.SpansReceived, c.SpansAccepted, c.SpansLate, c.MalformedTotal())
	}
}

func TestAssemblerIdleAndLate(t *testing.T) {
	a, col, clk := newTestAssembler(t, Config{IdleTimeout: 5 * time.Second})
	spans := shopTrace(1, "u1")
	mustAdd(t, a, spans[:6]...)
	clk.Advance(3 * time.Second)
	mustAdd(t, a, spans[6:]...)
	clk.Advance(3 * time.Second)
	if n := a.Expire(); n != 0 {
		t.Fatalf("Expire completed %d traces 3s after the last span, want 0", n)
	}
	clk.Advance(2 * time.Second)
	if n := a.Expire(); n != 1 {
		t.Fatalf("Expire completed %d traces, want 1", n)
	}
	obs := col.get()
	if len(obs) != 1 || len(obs[0].Services) != 5 || obs[0].Unit != "u1" {
		t.Fatalf("observations = %+v", obs)
	}

	// A late span of the completed trace is counted, not a new trace.
	late := span(1, 999, 101, "frontend", KindInternal, 1, 1)
	res := mustAdd(t, a, late)
	if res.Late != 1 || res.Accepted != 0 || res.RejectedSpans() != 1 || !strings.Contains(res.Message(), "late=1") {
		t.Errorf("late span result = %+v (%s)", res, res.Message())
	}
	c := a.Stats()
	if c.SpansAccepted != 10 || c.SpansLate != 1 || c.TracesCompleted != 1 || c.ObservationsEmitted != 1 ||
		c.TracesInFlight != 0 || c.SpansInFlight != 0 || c.SameServiceCalls != 5 {
		t.Errorf("counters = %+v", c)
	}
	checkBalance(t, c)
}

func TestAssemblerMaxTraceAge(t *testing.T) {
	a, col, clk := newTestAssembler(t, Config{IdleTimeout: 2 * time.Second, MaxTraceAge: 5 * time.Second})
	for i := uint64(1); i <= 6; i++ {
		mustAdd(t, a, span(1, i, 0, "web", KindServer, float64(i), 1))
		if i == 3 {
			mustAdd(t, a, span(2, 1, 0, "web", KindServer, 0, 1)) // goes idle
		}
		clk.Advance(time.Second)
		a.Expire()
	}
	c := a.Stats()
	if c.TracesCompleted != 2 || c.TracesTimedOut != 1 {
		t.Errorf("completed %d timed out %d, want 2 and 1", c.TracesCompleted, c.TracesTimedOut)
	}
	if obs := col.get(); len(obs) != 2 || obs[0].TraceID != traceID(2).String() {
		t.Errorf("observations = %v", obs)
	}
}

func TestAssemblerFull(t *testing.T) {
	a, col, clk := newTestAssembler(t, Config{MaxTraces: 2, MaxSpans: 25})
	mustAdd(t, a, shopTrace(1, "u")...)
	mustAdd(t, a, shopTrace(2, "u")...)

	// Trace 3 would exceed MaxTraces: nothing of the batch is taken, not even
	// the span of trace 1 or the malformed one.
	mixed := append(shopTrace(3, "u"), span(1, 500, 101, "frontend", KindInternal, 1, 1), Span{})
	b := &Batch{Spans: mixed}
	b.Reject(ReasonInvalidSpanID, "conv")
	if _, err := a.Add(b); !errors.Is(err, ErrFull) {
		t.Fatalf("Add over MaxTraces: err = %v, want ErrFull", err)
	}
	// Spans: 20 in flight + 6 > 25.
	if _, err := a.Add(&Batch{Spans: shopTrace(1, "u")[:6]}); !errors.Is(err, ErrFull) {
		t.Fatalf("Add over MaxSpans: err = %v, want ErrFull", err)
	}
	// 30 spans can never fit in MaxSpans 25: ErrTooLarge, not ErrFull.
	huge := append(append(shopTrace(4, "u"), shopTrace(5, "u")...), shopTrace(6, "u")...)
	if _, err := a.Add(&Batch{Spans: huge}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Add of 30 spans: err = %v, want ErrTooLarge", err)
	}
	c := a.Stats()
	if c.SpansAccepted != 20 || c.SpansReceived != 20 || c.BatchesRejectedFull != 2 || c.SpansRejectedFull != 13+6 ||
		c.SpansRejectedTooLarge != 30 || c.MalformedTotal() != 0 {
		t.Fatalf("counters after refusals = %+v", c)
	}

	clk.Advance(time.Minute)
	a.Expire()
	res, err := a.Add(b)
	if err != nil {
		t.Fatalf("retry after expiry: %v", err)
	}
	// trace 3's 10 spans + the span of (completed) trace 1 is late + empty
	// span and converter rejection are malformed.
	if res.Accepted != 10 || res.Late != 1 || res.Rejected[ReasonInvalidTraceID] != 1 || res.Rejected[ReasonInvalidSpanID] != 1 {
		t.Errorf("retry result = %+v", res)
	}
	a.Flush()
	if n := len(col.get()); n != 3 {
		t.Errorf("%d observations, want 3", n)
	}
	checkBalance(t, a.Stats())
}

func TestAssemblerMalformed(t *testing.T) {
	a, _, _ := newTestAssembler(t, Config{MaxSpansPerTrace: 3, MaxValueLen: 8, MaxAttrsPerSpan: 2, MaxEventsPerSpan: 1})
	good := func(n uint64) Span { return span(1, n, 0, "web", KindServer, 0, 1) }
	with := func(n uint64, f func(*Span)) Span { s := good(n); f(&s); return s }
	res := mustAdd(t, a,
		with(1, func(s *Span) { s.TraceID = TraceID{} }),
		with(2, func(s *Span) { s.SpanID = SpanID{} }),
		with(3, func(s *Span) { s.Service = "" }),
		with(4, func(s *Span) { s.Start = time.Time{} }),
		with(5, func(s *Span) { s.End = s.Start.Add(-time.Second) }),
		with(6, func(s *Span) { s.Start = t0.Add(48 * time.Hour); s.End = s.Start }),
		with(7, func(s *Span) { s.End = s.Start.Add(100 * time.Hour) }),
		good(8),
		good(8), // duplicate
		with(9, func(s *Span) {
			s.Service = strings.Repeat("é", 10) // 20 bytes, cut on a rune boundary
			s.Attrs = []Attr{StringAttr("abmesh.unit", strings.Repeat("x", 1<<20)), IntAttr("a", 1), IntAttr("b", 2)}
			s.Events = []Event{flagEvent("t", "v", "u"), flagEvent("t", "w", "u")}
		}),
		good(10),
		good(11), // trace full at 3 spans
	)
	want := map[Reason]int{
		ReasonInvalidTraceID: 1, ReasonInvalidSpanID: 1, ReasonMissingService: 1, ReasonMissingStart: 1,
		ReasonEndBeforeStart: 1, ReasonFutureStart: 1, ReasonTooLong: 1, ReasonDuplicateSpanID: 1, ReasonTraceTooLarge: 1,
	}
	for r := Reason(0); r < NumReasons; r++ {
		if res.Rejected[r] != want[r] {
			t.Errorf("Rejected[%s] = %d, want %d", r, res.Rejected[r], want[r])
		}
	}
	if res.Accepted != 3 || res.Detail == "" {
		t.Errorf("result = %+v", res)
	}
	c := a.Stats()
	if c.ValuesTruncated != 3 || c.AttrsDropped != 5 || c.EventsDropped != 1 {
		t.Errorf("truncated %d attrs dropped %d events dropped %d, want 3 (service, attribute, event name), 5, 1", c.ValuesTruncated, c.AttrsDropped, c.EventsDropped)
	}
	if c.Malformed["missing_service"] != 1 || len(c.Malformed) != 9 {
		t.Errorf("Malformed = %v", c.Malformed)
	}
	a.mu.Lock()
	tr := &a.traces[traceID(1)].sum
	s := tr.spans[1]
	service, unit := tr.get(s.svc), tr.get(s.unit)
	a.mu.Unlock()
	if service != "éééé" || len(unit) != 8 {
		t.Errorf("truncated service %q unit attribute length %d", service, len(unit))
	}
	checkBalance(t, c)
}

func TestAssemblerGoroutineAndClose(t *testing.T) {
	col := &collector{}
	a, err := NewAssembler(Config{IdleTimeout: 20 * time.Millisecond, TickInterval: 5 * time.Millisecond}, col)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s := shopTrace(1, "u")
	for i := range s {
		s[i].Start, s[i].End = now, now.Add(time.Millisecond)
	}
	if _, err := a.Add(&Batch{Spans: s}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(col.get()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(col.get()) != 1 {
		t.Fatal("ticker did not complete the trace")
	}
	s2 := shopTrace(2, "u")
	for i := range s2 {
		s2[i].Start, s2[i].End = now, now.Add(time.Millisecond)
	}
	if _, err := a.Add(&Batch{Spans: s2}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	a.Close()
	if len(col.get()) != 2 {
		t.Errorf("Close did not flush: %d observations", len(col.get()))
	}
	if _, err := a.Add(&Batch{Spans: s2}); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
}

func TestAssemblerConcurrent(t *testing.T) {
	col := &collector{}
	a, err := NewAssembler(Config{IdleTimeout: time.Millisecond, TickInterval: time.Millisecond}, col)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				s := shopTrace(uint64(w*1000+i+1), "u")
				now := time.Now()
				for k := range s {
					s[k].Start, s[k].End = now, now
				}
				for {
					_, err := a.Add(&Batch{Spans: s})
					if !errors.Is(err, ErrFull) {
						break
					}
					time.Sleep(time.Millisecond)
				}
				_ = a.Stats()
			}
		}()
	}
	wg.Wait()
	a.Close()
	c := a.Stats()
	if c.SpansAccepted != 2000 || c.TracesCompleted != 200 || len(col.get()) != 200 {
		t.Errorf("counters %+v, %d observations", c, len(col.get()))
	}
	checkBalance(t, c)
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{IdleTimeout: time.Minute, MaxTraceAge: time.Second}, "MaxTraceAge"},
		{Config{MaxSpans: -1}, "MaxSpans"},
		{Config{IdleTimeout: -time.Second}, "IdleTimeout"},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want error mentioning %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := NewAssembler(Config{MaxTraces: -5}, nil); err == nil {
		t.Error("NewAssembler accepted MaxTraces -5")
	}
	if d := DefaultConfig(); d.IdleTimeout != 5*time.Second || d.MaxSpans != 500_000 {
		t.Errorf("DefaultConfig = %+v", d)
	}
}

// BenchmarkSpanToObservation measures a decoded span's way through the
// Assembler to its Observation: Add in batches of 50 realistic 10-span
// traces, then completion and BuildObservation. Reported as ns/span.
func BenchmarkSpanToObservation(b *testing.B) {
	const tracesPerBatch = 50
	clk := testkit.NewClock(t0)
	var n int
	a, err := NewAssembler(Config{TickInterval: -1, Now: clk.Now}, ConsumerFunc(func(*Observation) { n++ }))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	templates := make([][]Span, tracesPerBatch)
	for i := range templates {
		templates[i] = shopTrace(uint64(i+1), "user-1")
	}
	batch := &Batch{}
	next := uint64(1)
	b.ReportAllocs()
	b.ResetTimer()
	spans := 0
	for b.Loop() {
		batch.Reset()
		for _, tpl := range templates {
			id := traceID(next)
			next++
			for _, s := range tpl {
				s.TraceID = id
				batch.Spans = append(batch.Spans, s)
			}
		}
		if _, err := a.Add(batch); err != nil {
			b.Fatal(err)
		}
		spans += len(batch.Spans)
		clk.Advance(10 * time.Second)
		a.Expire()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
	if n == 0 {
		b.Fatal("no observations")
	}
}
