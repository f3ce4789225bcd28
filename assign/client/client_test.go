package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

func newClient(t *testing.T, target string, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithService("recommendation"), client.WithBackoff(fastBackoff), client.WithLogger(quietLogger())}, opts...)
	c, err := client.New(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitReady(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
}

func waitVersion(t *testing.T, c *client.Client, v uint64) {
	t.Helper()
	eventually(t, "config version "+strconv.FormatUint(v, 10), func() bool { return c.Stats().ConfigVersion == v })
}

// serverAssign asks abmeshd's Assign RPC for unit's variant of test.
func serverAssign(t *testing.T, api pb.AssignmentServiceClient, unit, test string) assign.Assignment {
	t.Helper()
	resp, err := api.Assign(context.Background(), &pb.AssignRequest{UnitId: unit, TestIds: []string{test}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetAssignments()) != 1 {
		return assign.Assignment{}
	}
	a := resp.GetAssignments()[0]
	return assign.Assignment{Test: a.GetTestId(), Variant: a.GetVariant(), Reason: protoconv.ReasonFromProto(a.GetReason()), Phase: int(a.GetPhase())}
}

// checkAgainstServer compares local evaluation with abmeshd's Assign for
// n units.
func checkAgainstServer(t *testing.T, c *client.Client, api pb.AssignmentServiceClient, test string, n int) {
	t.Helper()
	for i := range n {
		unit := "user-" + strconv.Itoa(i)
		want := serverAssign(t, api, unit, test)
		got, err := c.Engine().EvaluateTest(test, unit, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("unit %s: local %+v, server %+v", unit, got, want)
		}
		if v := c.Variant(client.WithUnit(context.Background(), unit), test); v != want.Variant {
			t.Fatalf("unit %s: Variant %q, server %q", unit, v, want.Variant)
		}
	}
}

func TestWatchMatchesServerAndFollowsChanges(t *testing.T) {
	d := daemontest.Start(t)
	reg := d.Registry()
	createStarted(t, reg, newExp("rec-model", "recommendation"))
	api := pb.NewAssignmentServiceClient(daemontest.Dial(t, d.Addr()))

	c := newClient(t, d.Addr())
	waitReady(t, c)
	if s := c.Stats(); !s.Ready || !s.Connected || s.ConfigVersion != reg.Version() || s.SnapshotsReceived < 1 {
		t.Fatalf("stats after first snapshot: %+v (registry version %d)", s, reg.Version())
	}
	checkAgainstServer(t, c, api, "rec-model", 200)

	// A weight change opens phase 2 and arrives through Watch.
	x := newExp("rec-model", "recommendation", assign.Variant{Name: "control", Weight: 10}, assign.Variant{Name: "treatment", Weight: 90})
	if _, err := reg.Update(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	waitVersion(t, c, reg.Version())
	if got, _ := c.Engine().Experiment("rec-model"); got.Phase != 2 {
		t.Fatalf("phase after weight change = %d, want 2", got.Phase)
	}
	checkAgainstServer(t, c, api, "rec-model", 200)

	// Pausing serves the control.
	if _, err := reg.Pause(context.Background(), "rec-model"); err != nil {
		t.Fatal(err)
	}
	waitVersion(t, c, reg.Version())
	ctx := c.Evaluate(context.Background(), "user-1", nil)
	if as := c.Assignments(ctx); len(as) != 1 || as[0].Variant != "control" || as[0].Reason != assign.ReasonPaused {
		t.Fatalf("paused: assignments %+v", as)
	}
	if s := c.Stats(); s.Reconnects != 0 || s.SnapshotsRejected != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestKeepsServingWhileDownAndReconnects(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, daemontest.DataDir(dir))
	addr := d.Addr()
	createStarted(t, d.Registry(), newExp("rec-model", "recommendation"))
	c := newClient(t, addr)
	waitReady(t, c)
	v1 := c.Stats().ConfigVersion
	ctx := client.WithUnit(context.Background(), "user-7")
	want := c.Variant(ctx, "rec-model")

	d.Stop()
	eventually(t, "disconnect", func() bool { return !c.Stats().Connected })
	eventually(t, "a failed reconnect", func() bool { return c.Stats().Reconnects >= 2 })
	if got := c.Variant(ctx, "rec-model"); got != want {
		t.Fatalf("while abmeshd is down: Variant = %q, want last snapshot's %q", got, want)
	}
	if s := c.Stats(); s.ConfigVersion != v1 || !s.Ready {
		t.Fatalf("while down: %+v", s)
	}

	// Same port, same data directory: the client reconnects and gets the
	// state abmeshd persisted plus what changed since.
	d2 := daemontest.Start(t, daemontest.Listen(addr), daemontest.DataDir(dir))
	createStarted(t, d2.Registry(), newExp("rec-count", "recommendation"))
	waitVersion(t, c, d2.Registry().Version())
	if !c.Stats().Connected {
		t.Fatal("not connected after the restart")
	}
	if got := c.Variant(ctx, "rec-model"); got != want {
		t.Fatalf("after restart: Variant = %q, want %q", got, want)
	}
	if got := c.Variant(ctx, "rec-count"); got == "" {
		t.Fatal("the test created after the restart is unknown")
	}
}

func TestFallbackBeforeFirstSnapshot(t *testing.T) {
	// A free port that nothing listens on yet.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()

	c := newClient(t, addr)
	ctx := client.WithUnit(context.Background(), "user-1")
	if v := c.Variant(ctx, "rec-model"); v != "" {
		t.Fatalf("before any snapshot: Variant = %q, want \"\"", v)
	}
	ctx = c.Evaluate(ctx, "", nil)
	if as := c.Assignments(ctx); len(as) != 0 {
		t.Fatalf("before any snapshot: Assignments = %+v", as)
	}
	if c.Variant(ctx, "rec-model") != "" {
		t.Fatal("Variant after Evaluate before any snapshot")
	}
	if as := c.Assignments(ctx); len(as) != 1 || as[0].Reason != assign.ReasonFallback || as[0].Variant != "" {
		t.Fatalf("lazily evaluated: %+v", as)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.WaitReady(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReady before any snapshot = %v", err)
	}
	select {
	case <-c.Ready():
		t.Fatal("Ready closed before any snapshot")
	default:
	}

	// abmeshd comes up on that address: the client was retrying all along.
	d := daemontest.Start(t, daemontest.Listen(addr))
	createStarted(t, d.Registry(), newExp("rec-model", "recommendation"))
	waitVersion(t, c, d.Registry().Version())
	waitReady(t, c)
	want, _ := d.Registry().Snapshot().EvaluateTest("rec-model", "user-1", nil)
	if v := c.Variant(client.WithUnit(context.Background(), "user-1"), "rec-model"); v != want.Variant {
		t.Fatalf("after the first snapshot: Variant = %q, want %q", v, want.Variant)
	}
	if c.Stats().Reconnects == 0 {
		t.Fatal("no reconnect counted")
	}
}

func TestCloseIsIdempotentAndKeepsServing(t *testing.T) {
	d := daemontest.Start(t)
	createStarted(t, d.Registry(), newExp("rec-model", "recommendation"))
	c := newClient(t, d.Addr())
	waitReady(t, c)
	ctx := client.WithUnit(context.Background(), "user-3")
	want := c.Variant(ctx, "rec-model")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := c.Variant(ctx, "rec-model"); got != want || got == "" {
		t.Fatalf("after Close: %q, want %q", got, want)
	}
}

func TestNewOptionErrors(t *testing.T) {
	cases := []struct {
		name string
		opts []client.Option
		want error
	}{
		{"no service", nil, client.ErrNoService},
		{"zero backoff", []client.Option{client.WithService("s"), client.WithBackoff(client.Backoff{})}, client.ErrInvalidBackoff},
		{"max below initial", []client.Option{client.WithService("s"), client.WithBackoff(client.Backoff{Initial: time.Second, Max: time.Millisecond, Multiplier: 2})}, client.ErrInvalidBackoff},
		{"shrinking", []client.Option{client.WithService("s"), client.WithBackoff(client.Backoff{Initial: time.Second, Max: time.Second, Multiplier: 0.5})}, client.ErrInvalidBackoff},
		{"jitter over 1", []client.Option{client.WithService("s"), client.WithBackoff(client.Backoff{Initial: time.Second, Max: time.Second, Multiplier: 1, Jitter: 2})}, client.ErrInvalidBackoff},
		{"bad baggage key", []client.Option{client.WithService("s"), client.WithBaggageKey("a key")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New("127.0.0.1:1", tc.opts...)
			if err == nil {
				c.Close()
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := client.NewStatic(assign.Config{Experiments: []assign.Experiment{{ID: "Bad"}}}); !errors.Is(err, assign.ErrInvalid) {
		t.Fatalf("NewStatic with an invalid config: %v", err)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := client.Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.5}
	for n, base := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		base *= time.Millisecond
		for range 50 {
			d := b.Delay(n)
			if d < base/2 || d > base*3/2 {
				t.Fatalf("Delay(%d) = %v, want within ±50%% of %v", n, d, base)
			}
		}
	}
	if d := b.Delay(10000); d > 1500*time.Millisecond {
		t.Fatalf("Delay(10000) = %v over the cap", d)
	}
}

// hookLog collects the WatchEvents a WithWatchHook hook sees.
type hookLog struct {
	mu     sync.Mutex
	events []client.WatchEvent
}

func (h *hookLog) hook(ev client.WatchEvent) {
	h.mu.Lock()
	h.events = append(h.events, ev)
	h.mu.Unlock()
}

// kinds returns the kinds seen so far and the configuration version of
// the last event.
func (h *hookLog) kinds() ([]string, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, len(h.events))
	for i, ev := range h.events {
		out[i] = ev.Kind.String()
	}
	var v uint64
	if n := len(h.events); n > 0 {
		v = h.events[n-1].Engine.Version()
	}
	return out, v
}

// waitKinds waits until the hook has seen exactly want (in order) with
// the last event at version v.
func (h *hookLog) waitKinds(t *testing.T, want []string, v uint64) {
	t.Helper()
	eventually(t, fmt.Sprintf("watch events %v at version %d", want, v), func() bool {
		got, gv := h.kinds()
		return slices.Equal(got, want) && gv == v
	})
}

// TestWatchHook: the hook sees the first connection, every installed
// snapshot, a disconnection once however many attempts fail, and the
// reconnection; every hook given is called.
func TestWatchHook(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, daemontest.DataDir(dir))
	addr := d.Addr()
	createStarted(t, d.Registry(), newExp("rec-model", "recommendation"))
	var h, second hookLog
	c := newClient(t, addr, client.WithWatchHook(h.hook), client.WithWatchHook(nil), client.WithWatchHook(second.hook))
	h.waitKinds(t, []string{"CONNECTED", "INSTALLED"}, d.Registry().Version())

	if _, err := d.Registry().Pause(context.Background(), "rec-model"); err != nil { // one change, one version
		t.Fatal(err)
	}
	h.waitKinds(t, []string{"CONNECTED", "INSTALLED", "INSTALLED"}, d.Registry().Version())
	v := d.Registry().Version()

	d.Stop()
	eventually(t, "failed reconnects", func() bool { return c.Stats().Reconnects >= 3 })
	h.waitKinds(t, []string{"CONNECTED", "INSTALLED", "INSTALLED", "DISCONNECTED"}, v)
	h.mu.Lock()
	if last := h.events[len(h.events)-1]; last.Err == nil {
		t.Error("DISCONNECTED without the error that ended the stream")
	}
	h.mu.Unlock()

	d2 := daemontest.Start(t, daemontest.Listen(addr), daemontest.DataDir(dir))
	all := []string{"CONNECTED", "INSTALLED", "INSTALLED", "DISCONNECTED", "CONNECTED", "INSTALLED"}
	h.waitKinds(t, all, d2.Registry().Version())
	if got, _ := second.kinds(); !slices.Equal(got, all) {
		t.Errorf("second hook saw %v", got)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.kinds(); len(got) != len(all) {
		t.Errorf("Close reported %v", got[len(all):])
	}
	if s := client.WatchEventKind(0).String(); s != "WatchEventKind(0)" {
		t.Errorf("WatchEventKind(0) = %q", s)
	}
}
