package daemon_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	model "github.com/jaegertracing/jaeger-idl/model/v1"
	api "github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"google.golang.org/grpc"

	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/tracing/jaeger"
)

// TestStopWithStalledWatch: a Watch client that stopped reading (its flow
// control window full) must not hold Stop forever.
func TestStopWithStalledWatch(t *testing.T) {
	defer daemon.SetGRPCGrace(300 * time.Millisecond)()
	d, conn := startDaemon(t)
	ctx := context.Background()
	if _, err := pb.NewAssignmentServiceClient(conn).Watch(ctx, &pb.WatchRequest{}); err != nil {
		t.Fatal(err)
	}
	// Each change sends the whole config (~4 KB per experiment) to the
	// watcher, who never reads: well over the 64 KB window.
	ec := pb.NewExperimentServiceClient(conn)
	for i := 0; i < 40; i++ {
		e := exp("e-" + strconv.Itoa(i))
		e.Description = strings.Repeat("d", 4000)
		if _, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: e}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { d.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(4 * time.Second):
		t.Fatal("Stop still blocked by a Watch stream that does not read")
	}
}

// stallingJaeger serves one two-span trace (web → db) from FindTraces and
// then keeps the stream open until the caller goes away, as a slow Jaeger
// does mid-query.
type stallingJaeger struct {
	api.UnimplementedQueryServiceServer
	sent chan struct{}
	once sync.Once
}

func (f *stallingJaeger) GetServices(context.Context, *api.GetServicesRequest) (*api.GetServicesResponse, error) {
	return &api.GetServicesResponse{Services: []string{"web"}}, nil
}

func (f *stallingJaeger) FindTraces(_ *api.FindTracesRequest, stream api.QueryService_FindTracesServer) error {
	tid := model.NewTraceID(1, 2)
	now := time.Now()
	spans := []model.Span{
		{TraceID: tid, SpanID: 1, OperationName: "GET /", StartTime: now, Duration: time.Millisecond,
			Process: &model.Process{ServiceName: "web"}},
		{TraceID: tid, SpanID: 2, OperationName: "query", StartTime: now, Duration: time.Millisecond,
			Process: &model.Process{ServiceName: "db"}, References: []model.SpanRef{model.NewChildOfRef(tid, 1)}},
	}
	if err := stream.Send(&api.SpansResponseChunk{Spans: spans}); err != nil {
		return err
	}
	f.once.Do(func() { close(f.sent) })
	<-stream.Context().Done()
	return stream.Context().Err()
}

func (f *stallingJaeger) GetDependencies(context.Context, *api.GetDependenciesRequest) (*api.GetDependenciesResponse, error) {
	return &api.GetDependenciesResponse{}, nil
}

// TestStopCountsJaegerPollInProgress: traces a Jaeger poll has read when
// Stop begins are still counted (the reader stops before the assembler
// closes) and are in the store after a restart.
func TestStopCountsJaegerPollInProgress(t *testing.T) {
	fake := &stallingJaeger{sent: make(chan struct{})}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(jaeger.ServerOption())
	api.RegisterQueryServiceServer(srv, fake)
	go srv.Serve(lis)
	defer srv.Stop()

	store := daemontest.DataDir(t.TempDir())
	d := daemontest.Start(t, store, func(c *daemon.Config) { c.JaegerQuery, c.JaegerPoll = lis.Addr().String(), time.Hour })
	select {
	case <-fake.sent:
	case <-time.After(3 * time.Second):
		d.Stop()
		t.Fatal("the Jaeger reader never queried")
	}
	time.Sleep(100 * time.Millisecond) // let the client take the chunk in
	d.Stop()
	if c := d.Assembler().Stats(); c.SpansAccepted != 2 {
		t.Fatalf("spans accepted = %d, want 2 (the poll in progress at Stop was dropped)", c.SpansAccepted)
	}

	d2 := daemontest.Start(t, store)
	if g := d2.Graph().Snapshot(); len(g.Edges) != 1 || g.Edges[0].Caller != "web" || g.Edges[0].Callee != "db" {
		t.Errorf("graph after restart = %+v, want web → db", g)
	}
}

// TestFailedStartReleasesEverything: when Start fails part way (a port in
// use, an unusable data directory) it returns an error naming the flag and
// leaves nothing behind: the store is closed, so a daemon can start on the
// same data directory at once, and TestMain finds no goroutine left.
func TestFailedStartReleasesEverything(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	inUse := busy.Addr().String()
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		opt  daemontest.Option
		want string
	}{
		{"api port in use", daemontest.Listen(inUse), "--listen"},
		{"otlp port in use", func(c *daemon.Config) { c.OTLPListen = inUse }, "--otlp-listen"},
		{"http port in use", func(c *daemon.Config) { c.HTTPListen = inUse }, "--http-listen"},
		{"data dir is a file", daemontest.DataDir(notADir), "data dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := daemontest.Config(t, daemontest.DataDir(dir), daemontest.OTLP(), daemontest.HTTP(), tc.opt)
			d, err := daemon.Start(context.Background(), cfg)
			if err == nil {
				d.Stop()
				t.Fatalf("Start succeeded, want an error naming %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start error %q does not name %s", err, tc.want)
			}
			start := time.Now()
			daemontest.Start(t, daemontest.DataDir(dir)).Stop()
			if took := time.Since(start); took > time.Second {
				t.Errorf("the next Start on the data directory took %v: the failed one held the store", took)
			}
		})
	}
}
