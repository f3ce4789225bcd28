package otlpload

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/otlpreceiver"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const serveEnv = "ABMESH_OTLPLOAD_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		if err := serveUntilStdinCloses(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// serverReport is what the receiver process prints when it stops.
type serverReport struct {
	Stats        tracing.AssemblyStats `json:"stats"`
	Observations int64                 `json:"observations"`
	WithExposure int64                 `json:"with_exposure"`
}

// startReceiver runs an OTLP receiver with an Assembler, as abmeshd does.
func startReceiver() (addr string, stop func() serverReport, err error) {
	var obs, exposed atomic.Int64
	asm, err := tracing.NewAssembler(tracing.Config{IdleTimeout: time.Second, TickInterval: 200 * time.Millisecond},
		tracing.ConsumerFunc(func(o *tracing.Observation) {
			obs.Add(1)
			if len(o.Exposures) > 0 && o.Unit != "" {
				exposed.Add(1)
			}
		}))
	if err != nil {
		return "", nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := grpc.NewServer()
	otlpreceiver.Register(s, asm, otlpreceiver.WithRetryDelay(20*time.Millisecond))
	go s.Serve(lis)
	return lis.Addr().String(), func() serverReport {
		s.Stop()
		asm.Close()
		return serverReport{Stats: asm.Stats(), Observations: obs.Load(), WithExposure: exposed.Load()}
	}, nil
}

func serveUntilStdinCloses(in io.Reader, out io.Writer) error {
	addr, stop, err := startReceiver()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ADDR %s\n", addr)
	io.Copy(io.Discard, in)
	return json.NewEncoder(out).Encode(stop())
}

func TestRunInProcess(t *testing.T) {
	addr, stop, err := startReceiver()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), Config{
		Endpoint: addr, Duration: 5 * time.Second, Rate: 20_000, MaxSpans: 6000, RequestSpans: 500, Concurrency: 2,
	})
	rep := stop()
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 6000 || res.Rejected != 0 || res.Failed != 0 || res.Requests != 12 {
		t.Errorf("result = %+v", res)
	}
	// 6000 spans at 20,000/s take about 0.3s (the first request goes at once).
	if res.Elapsed < 200*time.Millisecond || res.SpansPerSecond <= 0 {
		t.Errorf("elapsed %v, %.0f spans/s: pacing not applied", res.Elapsed, res.SpansPerSecond)
	}
	c := rep.Stats
	if c.SpansAccepted != 6000 || c.MalformedTotal() != 0 || rep.Observations != 600 || rep.WithExposure != 600 {
		t.Errorf("server saw %+v, %d observations, %d with exposures", c, rep.Observations, rep.WithExposure)
	}
}

func TestRunErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Endpoint: "x:1", Duration: time.Hour},
		{Endpoint: "x:1", Duration: time.Second, TraceSize: 20, RequestSpans: 10},
		{Endpoint: "x:1", Duration: time.Second, Rate: -1},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run accepted %+v", cfg)
		}
	}
	// Nothing listens: every request fails, Run says so.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	res, err := Run(context.Background(), Config{Endpoint: addr, Duration: 300 * time.Millisecond, Concurrency: 1, Connections: 1})
	if err == nil || res.Sent != 0 || res.Failed == 0 && res.Refused == 0 {
		t.Errorf("no server: %+v, %v", res, err)
	}
}

// TestIngestAcrossProcesses measures abmeshd-style ingest (OTLP receiver +
// Assembler) in a separate process, loaded from this one at full speed.
// It runs only with ABMESH_OTLPLOAD_BENCH=<seconds>, e.g.
//
//	ABMESH_OTLPLOAD_BENCH=10 go test -run IngestAcrossProcesses -v ./tracing/otlpload
func TestIngestAcrossProcesses(t *testing.T) {
	secs := os.Getenv("ABMESH_OTLPLOAD_BENCH")
	if secs == "" {
		t.Skip("set ABMESH_OTLPLOAD_BENCH=<seconds> to measure ingest across processes")
	}
	d, err := time.ParseDuration(secs + "s")
	if err != nil || d <= 0 || d > 2*time.Minute {
		t.Fatalf("ABMESH_OTLPLOAD_BENCH=%q: want seconds up to 120", secs)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ADDR ") {
		t.Fatalf("server said %q, %v", line, err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "ADDR "))

	res, err := Run(context.Background(), Config{Endpoint: addr, Duration: d, MaxSpans: 50_000_000})
	if err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	var rep serverReport
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	t.Logf("client: %d requests, %d spans sent, %d refused, %d failed in %v: %.0f spans/s accepted",
		res.Requests, res.Sent, res.Refused, res.Failed, res.Elapsed.Round(time.Millisecond), res.SpansPerSecond)
	c := rep.Stats
	t.Logf("server: %d spans accepted, %d malformed, %d batches refused full, %d traces completed, %d observations (%d with unit and exposures)",
		c.SpansAccepted, c.MalformedTotal(), c.BatchesRejectedFull, c.TracesCompleted, rep.Observations, rep.WithExposure)
	if uint64(res.Sent-res.Rejected) != c.SpansAccepted {
		t.Errorf("client counted %d spans accepted, server %d", res.Sent-res.Rejected, c.SpansAccepted)
	}
}

// flakyReceiver answers each request's first attempt (known by its first
// trace id) with UNAVAILABLE after keeping its traces (every third
// request: taken, the answer lost), or with RESOURCE_EXHAUSTED without
// keeping them (every fifth), and every other attempt with OK.
type flakyReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	attempts map[string]int
	traces   map[string]bool // trace ids kept
	lost     int             // traces kept whose answer was UNAVAILABLE
	fails    int             // attempts answered with an error
	always   codes.Code      // when not OK, every request is answered with it
}

func (f *flakyReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				ids = append(ids, string(sp.TraceId))
			}
		}
	}
	key := ids[0]
	n := len(f.attempts)
	if f.always != codes.OK {
		f.attempts[key]++
		return nil, status.Error(f.always, "down")
	}
	f.attempts[key]++
	keep := func() int {
		added := 0
		for _, id := range ids {
			if !f.traces[id] {
				f.traces[id] = true
				added++
			}
		}
		return added
	}
	if f.attempts[key] == 1 {
		switch {
		case n%3 == 0:
			f.lost += keep()
			f.fails++
			return nil, status.Error(codes.Unavailable, "answer lost")
		case n%5 == 0:
			f.fails++
			return nil, status.Error(codes.ResourceExhausted, "full")
		}
	}
	keep()
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestRunRetries: with Config.Retry every request is sent again after a
// failure until acknowledged, so the client's acknowledged traces are
// exactly the distinct traces the receiver kept; without retries the
// requests that failed with UNAVAILABLE are counted in doubt.
func TestRunRetries(t *testing.T) {
	for _, retry := range []time.Duration{10 * time.Second, 0} {
		f := &flakyReceiver{attempts: map[string]int{}, traces: map[string]bool{}}
		s, addr := serveReceiver(t, f)
		res, err := Run(context.Background(), Config{Endpoint: addr, Duration: 5 * time.Second,
			MaxSpans: 40 * 100, RequestSpans: 100, Concurrency: 3, Retry: retry})
		s.Stop()
		if err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		kept, requests, fails, lost := int64(len(f.traces)), int64(len(f.attempts)), int64(f.fails), int64(f.lost)
		f.mu.Unlock()
		if requests != 40 || fails < 10 || lost == 0 {
			t.Fatalf("retry %v: the receiver saw %d requests, failed %d (%d traces lost): the test did not test", retry, requests, fails, lost)
		}
		want := Result{Requests: 40 + fails, Traces: kept, InDoubt: 0, Retries: fails}
		if retry == 0 {
			want = Result{Requests: 40, Traces: kept - lost, InDoubt: lost, Retries: 0}
		}
		got := Result{Requests: res.Requests, Traces: res.Traces, InDoubt: res.InDoubt, Retries: res.Retries}
		if !reflect.DeepEqual(got, want) || res.Sent != res.Traces*10 {
			t.Errorf("retry %v: result %+v, want %+v (%d requests failed)", retry, res, want, fails)
		}
	}
}

// TestRunRoutes: with Endpoints, each attempt is routed again, so the
// retries of a request that failed at one receiver go where Route says;
// traces acknowledged elsewhere after an attempt that may have landed are
// Moved, after a refusal they are not.
func TestRunRoutes(t *testing.T) {
	for _, c := range []struct {
		code  codes.Code
		moved bool
	}{{codes.Unavailable, true}, {codes.ResourceExhausted, false}} {
		var addrs []string
		var servers []*grpc.Server
		for i := range 2 {
			f := &flakyReceiver{attempts: map[string]int{}, traces: map[string]bool{}}
			if i == 0 {
				f.always = c.code
			}
			s, addr := serveReceiver(t, f)
			servers = append(servers, s)
			addrs = append(addrs, addr)
		}
		var mu sync.Mutex
		tried := map[[16]byte]bool{}
		route := func(id [16]byte) int { // the first attempt to 0, the others to 1
			mu.Lock()
			defer mu.Unlock()
			if tried[id] {
				return 1
			}
			tried[id] = true
			return 0
		}
		res, err := Run(context.Background(), Config{Endpoints: addrs, Route: route, Duration: 5 * time.Second,
			MaxSpans: 20 * 100, RequestSpans: 100, Concurrency: 2, Retry: 10 * time.Second})
		for _, s := range servers {
			s.Stop()
		}
		if err != nil {
			t.Fatal(err)
		}
		moved := int64(0)
		if c.moved {
			moved = 200
		}
		if res.Traces != 200 || res.Moved != moved || !reflect.DeepEqual(res.PerEndpoint, []int64{0, 200}) || len(tried) != 20 {
			t.Errorf("receiver 0 answering %v: %+v (%d requests routed), want 200 traces, all acknowledged by 1, %d moved", c.code, res, len(tried), moved)
		}
	}
	if err := (Config{Endpoints: []string{"x:1"}, Duration: time.Second}).Validate(); err == nil {
		t.Error("Endpoints without Route accepted")
	}
	if err := (Config{Endpoint: "x:1", Endpoints: []string{"x:1"}, Route: func([16]byte) int { return 0 }, Duration: time.Second}).Validate(); err == nil {
		t.Error("Endpoint and Endpoints accepted together")
	}
}

// serveReceiver serves f as an OTLP trace receiver on a loopback port and
// returns the server (the caller stops it) and its address.
func serveReceiver(t *testing.T, f collectortrace.TraceServiceServer) (*grpc.Server, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(s, f)
	go s.Serve(lis)
	return s, lis.Addr().String()
}
