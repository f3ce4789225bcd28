package jaeger

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/tracing"
	model "github.com/jaegertracing/jaeger-idl/model/v1"
	api "github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func str(k, v string) model.KeyValue {
	return model.KeyValue{Key: k, VType: model.ValueType_STRING, VStr: v}
}
func i64(k string, v int64) model.KeyValue {
	return model.KeyValue{Key: k, VType: model.ValueType_INT64, VInt64: v}
}

var (
	frontend = &model.Process{ServiceName: "frontend", Tags: []model.KeyValue{str("hostname", "fe-1")}}
	checkout = &model.Process{ServiceName: "checkout"}
	payment  = &model.Process{ServiceName: "payment"}
)

func flagLog(at time.Time, test, variant, unit string) model.Log {
	return model.Log{Timestamp: at, Fields: []model.KeyValue{
		str("event", tracing.EventFlagEvaluation), str(tracing.AttrFlagKey, test), str(tracing.AttrFlagVariant, variant),
		str(tracing.AttrFlagContextID, unit), i64(tracing.AttrFlagVersion, 2), str(tracing.AttrFlagResultReason, "SPLIT"),
	}}
}

// jaegerTrace is a realistic trace as Jaeger's query service returns it
// (api_v2 model, Process on every span).
func jaegerTrace(low uint64, start time.Time, unit, variant string) []model.Span {
	tid := model.NewTraceID(0xabc, low)
	sp := func(id, parent uint64, op string, p *model.Process, kind string, off, dur time.Duration, tags ...model.KeyValue) model.Span {
		s := model.Span{TraceID: tid, SpanID: model.SpanID(id), OperationName: op, Process: p,
			StartTime: start.Add(off), Duration: dur, Tags: append([]model.KeyValue{str("span.kind", kind)}, tags...)}
		if parent != 0 {
			s.References = []model.SpanRef{model.NewChildOfRef(tid, model.SpanID(parent))}
		}
		return s
	}
	spans := []model.Span{
		sp(1, 0, "GET /buy", frontend, "server", 0, 120*time.Millisecond, str(tracing.UnitAttribute, unit), i64("http.status_code", 200)),
		sp(2, 1, "checkout.Buy", frontend, "client", time.Millisecond, 110*time.Millisecond, str("http.url", "http://x")),
		sp(3, 2, "Buy", checkout, "server", 2*time.Millisecond, 100*time.Millisecond,
			model.KeyValue{Key: "shop.order.value", VType: model.ValueType_FLOAT64, VFloat64: 42.5}),
		sp(4, 3, "payment.Charge", checkout, "client", 5*time.Millisecond, 50*time.Millisecond),
		sp(5, 4, "Charge", payment, "server", 6*time.Millisecond, 45*time.Millisecond,
			model.KeyValue{Key: "error", VType: model.ValueType_BOOL, VBool: true}),
	}
	spans[2].Logs = []model.Log{
		{Timestamp: start, Fields: []model.KeyValue{str("message", "no event field")}},
		flagLog(start.Add(2*time.Millisecond), "fast-checkout", variant, unit),
	}
	spans[4].References = append([]model.SpanRef{model.NewFollowsFromRef(model.NewTraceID(9, 9), 77)}, spans[4].References...)
	return spans
}

func TestConvert(t *testing.T) {
	spans := jaegerTrace(1, t0, "user-1", "treatment")
	spans = append(spans, model.Span{TraceID: spans[0].TraceID, SpanID: 6, StartTime: t0,
		Tags: []model.KeyValue{str("otel.status_code", "ERROR")}}) // no process
	var b tracing.Batch
	Convert(spans, &b)
	if len(b.Spans) != 6 {
		t.Fatalf("%d spans", len(b.Spans))
	}
	s := b.Spans[2]
	if s.TraceID.String() != "0000000000000abc0000000000000001" || s.SpanID.String() != "0000000000000003" ||
		s.ParentID.String() != "0000000000000002" || s.Service != "checkout" || s.Kind != tracing.KindServer ||
		s.Duration() != 100*time.Millisecond || s.Error {
		t.Errorf("span = %+v", s)
	}
	if len(s.Events) != 1 || s.Events[0].Name != tracing.EventFlagEvaluation || len(s.Events[0].Attrs) != 5 {
		t.Errorf("events = %+v", s.Events)
	}
	if !b.Spans[4].Error || b.Spans[4].ParentID.String() != "0000000000000004" {
		t.Errorf("payment span = %+v", b.Spans[4])
	}
	if len(b.Spans[1].Attrs) != 0 {
		t.Errorf("http.url kept: %+v", b.Spans[1].Attrs)
	}
	if b.Spans[5].Service != "" || !b.Spans[5].Error || !b.Spans[5].ParentID.IsZero() {
		t.Errorf("bare span = %+v", b.Spans[5])
	}
	o, _ := tracing.BuildObservation(b.Spans[:5])
	want := []tracing.Edge{{Caller: "checkout", Callee: "payment", Calls: 1}, {Caller: "frontend", Callee: "checkout", Calls: 1}}
	if o.Unit != "user-1" || !reflect.DeepEqual(o.Edges, want) || len(o.Exposures) != 1 {
		t.Errorf("observation = %+v", o)
	}
}

func TestDecodeUIJSON(t *testing.T) {
	data, err := os.ReadFile("../testdata/jaeger_ui_export.json")
	if err != nil {
		t.Fatal(err)
	}
	var b tracing.Batch
	if err := DecodeUIJSON(data, &b); err != nil {
		t.Fatal(err)
	}
	if len(b.Spans) != 7 || b.Malformed[tracing.ReasonInvalidSpanID] != 1 || !strings.Contains(b.Detail, `trace 0 span 5: spanID "zz"`) {
		t.Fatalf("%d spans, malformed %s (%s)", len(b.Spans), b.Malformed.String(), b.Detail)
	}
	if got := b.Spans[5].TraceID.String(); got != "000000000000000000f067aa0ba902b7" {
		t.Errorf("64-bit trace id = %s", got)
	}
	o, _ := tracing.BuildObservation(b.Spans[:5])
	if o.Unit != "user-7" || len(o.Services) != 3 || len(o.Exposures) != 2 || o.Exposures[0].Phase != 2 {
		t.Errorf("observation = %+v", o)
	}
	if v, _ := o.Metric("payment", "error"); v != 1 {
		t.Error("payment error not read from the error tag")
	}
	if v, _ := o.Metric("checkout", "latency_ms"); v != 100 {
		t.Errorf("checkout latency = %v, want 100", v)
	}
	o2, _ := tracing.BuildObservation(b.Spans[5:])
	if len(o2.Conflicts) != 1 || o2.Unit != "user-9" {
		t.Errorf("trace 2 = %+v", o2)
	}

	// Tolerated oddities: embedded process, parentSpanID, strings for numbers.
	odd := `{"data":[{"spans":[{"traceID":"1","spanID":"2","parentSpanID":"3","startTime":"1772366400000000","duration":"5",
	  "process":{"serviceName":"svc"},"tags":[{"key":"n","type":"int64","value":"7"},{"key":"b","type":"bool","value":"true"},
	  {"key":"f","type":"float64","value":1.5},{"key":"x","type":"binary","value":"AQI="},{"key":"bad","type":"int64","value":"x"}]}]}]}`
	b.Reset()
	if err := DecodeUIJSON([]byte(odd), &b); err != nil {
		t.Fatal(err)
	}
	s := b.Spans[0]
	if s.Service != "svc" || s.ParentID.String() != "0000000000000003" || s.Duration() != 5*time.Microsecond || len(s.Attrs) != 3 {
		t.Errorf("odd span = %+v", s)
	}

	var se *json.SyntaxError
	if err := DecodeUIJSON([]byte(`{"data":[{"spans":[}]}`), &b); !errors.As(err, &se) || se.Offset != 20 {
		t.Errorf("syntax error = %v", err)
	}
	var te *json.UnmarshalTypeError
	if err := DecodeUIJSON([]byte(`{"data":{"x":1}}`), &b); !errors.As(err, &te) {
		t.Errorf("type error = %v", err)
	}
}

// fakeQuery is a Jaeger query service holding traces.
type fakeQuery struct {
	api.UnimplementedQueryServiceServer
	mu       sync.Mutex
	traces   [][]model.Span
	deps     []model.DependencyLink
	failSvc  string
	queries  []api.TraceQueryParameters
	depsReqs []api.GetDependenciesRequest
}

func (f *fakeQuery) add(spans []model.Span) {
	f.mu.Lock()
	f.traces = append(f.traces, spans)
	f.mu.Unlock()
}

func (f *fakeQuery) GetServices(context.Context, *api.GetServicesRequest) (*api.GetServicesResponse, error) {
	return &api.GetServicesResponse{Services: []string{"checkout", "frontend", "payment"}}, nil
}

func (f *fakeQuery) FindTraces(req *api.FindTracesRequest, stream api.QueryService_FindTracesServer) error {
	f.mu.Lock()
	q := *req.Query
	f.queries = append(f.queries, q)
	var out [][]model.Span
	for _, tr := range f.traces {
		root := tr[0]
		has := false
		for _, s := range tr {
			has = has || s.Process.ServiceName == q.ServiceName
		}
		if has && !root.StartTime.Before(q.StartTimeMin) && !root.StartTime.After(q.StartTimeMax) {
			out = append(out, tr)
		}
	}
	fail := f.failSvc == q.ServiceName
	f.mu.Unlock()
	if fail {
		return status.Error(codes.Unavailable, "storage down")
	}
	for _, tr := range out {
		// Each trace in two chunks, as Jaeger streams large traces.
		h := len(tr) / 2
		for _, part := range [][]model.Span{tr[:h], tr[h:]} {
			if err := stream.Send(&api.SpansResponseChunk{Spans: part}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeQuery) GetDependencies(_ context.Context, req *api.GetDependenciesRequest) (*api.GetDependenciesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.depsReqs = append(f.depsReqs, *req)
	return &api.GetDependenciesResponse{Dependencies: f.deps}, nil
}

func startFake(t *testing.T, f *fakeQuery) api.QueryServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(ServerOption())
	api.RegisterQueryServiceServer(s, f)
	go s.Serve(lis)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		s.Stop()
	})
	return api.NewQueryServiceClient(conn)
}

func TestReader(t *testing.T) {
	clk := testkit.NewClock(t0.Add(time.Minute))
	f := &fakeQuery{deps: []model.DependencyLink{
		{Parent: "frontend", Child: "checkout", CallCount: 40}, {Parent: "checkout", Child: "payment", CallCount: 7},
	}}
	f.add(jaegerTrace(1, t0.Add(10*time.Second), "user-1", "treatment"))
	f.add(jaegerTrace(2, t0.Add(20*time.Second), "user-2", "control"))
	f.add(jaegerTrace(3, t0.Add(55*time.Second), "user-3", "control")) // too fresh for poll 1
	client := startFake(t, f)

	var mu sync.Mutex
	var obs []*tracing.Observation
	asm, err := tracing.NewAssembler(tracing.Config{TickInterval: -1, MaxTraces: 2, Now: clk.Now},
		tracing.ConsumerFunc(func(o *tracing.Observation) { mu.Lock(); obs = append(obs, o); mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	defer asm.Close()
	graph, err := tracing.NewGraph(tracing.GraphConfig{Window: time.Hour, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(client, asm, graph, ReaderConfig{PollInterval: 30 * time.Second, Settle: 10 * time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}

	// Poll 1: window [t0-10s, t0+50s]; frontend finds traces 1 and 2, the
	// other services find them again (duplicates).
	res, err := r.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Services != 3 || res.Traces != 2 || res.Duplicates != 4 || res.Spans != 10 || res.Links != 2 || res.Refused != 0 {
		t.Errorf("poll 1 = %+v", res)
	}
	q := f.queries[0]
	if q.ServiceName != "checkout" || !q.StartTimeMin.Equal(t0.Add(-10*time.Second)) || !q.StartTimeMax.Equal(t0.Add(50*time.Second)) || q.SearchDepth != 1000 {
		t.Errorf("query = %+v", q)
	}

	// Poll 2: the assembler is full (MaxTraces 2), trace 3 is refused.
	clk.Advance(30 * time.Second)
	res, err = r.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Refused != 1 || res.Traces != 0 {
		t.Errorf("poll 2 = %+v", res)
	}
	asm.Flush()

	// Poll 3: room again; trace 3 is still in the window and read now. A
	// service failing does not stop the others.
	f.mu.Lock()
	f.failSvc = "payment"
	f.mu.Unlock()
	clk.Advance(time.Second)
	res, err = r.Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "storage down") {
		t.Errorf("poll 3 error = %v, want the payment failure", err)
	}
	if res.Traces != 1 {
		t.Errorf("poll 3 = %+v", res)
	}
	asm.Flush()

	mu.Lock()
	defer mu.Unlock()
	if len(obs) != 3 {
		t.Fatalf("%d observations, want 3", len(obs))
	}
	sort.Slice(obs, func(i, j int) bool { return obs[i].Unit < obs[j].Unit })
	for i, o := range obs {
		if want := []string{"user-1", "user-2", "user-3"}[i]; o.Unit != want {
			t.Errorf("unit %q, want %q", o.Unit, want)
		}
		if len(o.Exposures) != 1 || o.Exposures[0].Service != "checkout" || len(o.Edges) != 2 {
			t.Errorf("observation %+v", o)
		}
	}
	if obs[0].Exposures[0].Variant != "treatment" {
		t.Errorf("variant = %s", obs[0].Exposures[0].Variant)
	}

	// Dependencies: each poll asks from the previous poll's end.
	if len(f.depsReqs) != 3 || !f.depsReqs[1].StartTime.Equal(f.depsReqs[0].EndTime) {
		t.Errorf("dependency requests = %+v", f.depsReqs)
	}
	snap := graph.Snapshot()
	if len(snap.Edges) != 2 || snap.Edges[1].Calls != 120 {
		t.Errorf("graph = %+v", snap)
	}
	if tot := r.Totals(); tot.Traces != 3 || tot.Refused != 1 {
		t.Errorf("totals = %+v", tot)
	}
}

func TestReaderRunAndConfig(t *testing.T) {
	f := &fakeQuery{}
	f.add(jaegerTrace(1, time.Now().Add(-20*time.Second), "u", "a"))
	client := startFake(t, f)
	asm, err := tracing.NewAssembler(tracing.Config{TickInterval: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer asm.Close()
	r, err := NewReader(client, asm, nil, ReaderConfig{Services: []string{"frontend"}, PollInterval: 10 * time.Millisecond, Lookback: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for r.Totals().Duplicates == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if tot := r.Totals(); tot.Traces != 1 || tot.Duplicates == 0 {
		t.Errorf("totals = %+v", tot)
	}

	for _, cfg := range []ReaderConfig{
		{PollInterval: time.Minute, Lookback: time.Second},
		{Services: []string{""}},
		{SearchDepth: -1},
	} {
		if _, err := NewReader(client, asm, nil, cfg); err == nil {
			t.Errorf("NewReader accepted %+v", cfg)
		}
	}
}
