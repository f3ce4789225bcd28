package flagd_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/flagd"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
)

// recv returns the stream's next event, failing the test after 10 s.
func recv(t *testing.T, stream grpc.ServerStreamingClient[evalpb.EventStreamResponse]) *evalpb.EventStreamResponse {
	t.Helper()
	type got struct {
		ev  *evalpb.EventStreamResponse
		err error
	}
	ch := make(chan got, 1)
	go func() { ev, err := stream.Recv(); ch <- got{ev, err} }()
	select {
	case g := <-ch:
		if g.err != nil {
			t.Fatalf("event stream: %v", g.err)
		}
		return g.ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event in 10 s")
	}
	return nil
}

// changes returns a configuration_change event's flags as test → kind,
// checking its configVersion.
func changes(t *testing.T, ev *evalpb.EventStreamResponse, version uint64) map[string]string {
	t.Helper()
	if ev.GetType() != flagd.EventConfigurationChange {
		t.Fatalf("event %v, want %s", ev, flagd.EventConfigurationChange)
	}
	if v := ev.GetData().GetFields()["configVersion"].GetNumberValue(); v != float64(version) {
		t.Errorf("configVersion %v, want %d", v, version)
	}
	out := map[string]string{}
	for k, v := range ev.GetData().GetFields()["flags"].GetStructValue().GetFields() {
		out[k] = v.GetStructValue().GetFields()["type"].GetStringValue()
	}
	return out
}

func equalChanges(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestEventStream: on a real abmeshd the stream starts with
// provider_ready, then every configuration change is one
// configuration_change naming exactly the tests it changed — created
// (write), updated, overridden or paused (update), deleted (delete) — and
// a daemon stop ends the stream Unavailable.
func TestEventStream(t *testing.T) {
	d := daemontest.Start(t)
	reg := d.Registry()
	fixture(t, reg)
	client := evalpb.NewServiceClient(daemontest.Dial(t, d.Addr()))
	stream, err := client.EventStream(context.Background(), &evalpb.EventStreamRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, stream); ev.GetType() != flagd.EventProviderReady {
		t.Fatalf("first event %v, want %s", ev, flagd.EventProviderReady)
	}
	ctx := context.Background()
	steps := []struct {
		name   string
		change func() error
		want   map[string]string
	}{
		{"create", func() error { _, err := reg.Create(ctx, experiment("new-test", "a", "b")); return err }, map[string]string{"new-test": "write"}},
		{"override", func() error {
			return reg.SetOverride(ctx, assign.Override{Experiment: banner, Unit: "u-1", Variant: "on"})
		}, map[string]string{banner: "update"}},
		{"pause", func() error { _, err := reg.Pause(ctx, checkout); return err }, map[string]string{checkout: "update"}},
		{"delete", func() error { return reg.Delete(ctx, draft) }, map[string]string{draft: "delete"}},
		{"layer", func() error { _, err := reg.CreateLayer(ctx, &assign.Layer{ID: "other"}); return err }, map[string]string{}},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := changes(t, recv(t, stream), reg.Version()); !equalChanges(got, st.want) {
			t.Errorf("%s: changed flags %v, want %v", st.name, got, st.want)
		}
	}
	d.Stop()
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("after stop: %v, want Unavailable", err)
	}
}

// TestEventStreamKeepAlive: a silent stream sends keep_alive every
// keep-alive interval, and ends Unavailable when the service's life ends.
func TestEventStreamKeepAlive(t *testing.T) {
	reg, err := assign.NewRegistry(context.Background(), &assign.MemStore{})
	if err != nil {
		t.Fatal(err)
	}
	life, stop := context.WithCancel(context.Background())
	srv := grpc.NewServer()
	evalpb.RegisterServiceServer(srv, flagd.New(life, reg, flagd.WithKeepAlive(20*time.Millisecond)))
	lis, err := net.Listen("tcp", daemontest.Loopback)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := evalpb.NewServiceClient(conn).EventStream(context.Background(), &evalpb.EventStreamRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ev := recv(t, stream); ev.GetType() != flagd.EventProviderReady {
		t.Fatalf("first event %v", ev)
	}
	for range 3 {
		if ev := recv(t, stream); ev.GetType() != flagd.EventKeepAlive || ev.GetData() != nil {
			t.Fatalf("silent stream sent %v, want a bare %s", ev, flagd.EventKeepAlive)
		}
	}
	stop()
	for {
		_, err := stream.Recv()
		if err == nil {
			continue // a keep_alive sent before the stop
		}
		if status.Code(err) != codes.Unavailable {
			t.Errorf("after the service's life ended: %v, want Unavailable", err)
		}
		break
	}
}
