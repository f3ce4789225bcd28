package openfeature_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/abmesh/abmesh/assign"
	abmeshof "github.com/abmesh/abmesh/assign/openfeature"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

// handlers collects the events the OpenFeature API delivers to its
// handlers (which it runs in goroutines, so in no guaranteed order).
type handlers struct {
	mu     sync.Mutex
	events []of.EventDetails
	types  []of.EventType
}

// listen registers API handlers for every provider event type; the OpenFeature API is reset when t ends.
func listen(t *testing.T) *handlers {
	h := &handlers{}
	for _, typ := range []of.EventType{of.ProviderReady, of.ProviderConfigChange, of.ProviderStale, of.ProviderError} {
		cb := func(d of.EventDetails) {
			h.mu.Lock()
			h.events = append(h.events, d)
			h.types = append(h.types, typ)
			h.mu.Unlock()
		}
		of.AddHandler(typ, &cb)
	}
	t.Cleanup(of.Shutdown)
	return h
}

// count returns how many events of typ arrived, and the last of them.
func (h *handlers) count(typ of.EventType) (n int, last of.EventDetails) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.types {
		if x == typ {
			n++
			last = h.events[i]
		}
	}
	return n, last
}

// wait waits until n events of typ have arrived, the last of them
// satisfying ok (nil: any), and returns that last one.
func (h *handlers) wait(t *testing.T, typ of.EventType, n int, ok func(of.EventDetails) bool) of.EventDetails {
	t.Helper()
	var last of.EventDetails
	eventually(t, string(typ), func() bool {
		var seen int
		seen, last = h.count(typ)
		return seen >= n && (ok == nil || ok(last))
	})
	return last
}

func (h *handlers) snapshot() []of.EventType {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.types)
}

// TestEvents: READY on the first configuration, CONFIGURATION_CHANGED
// with the changed tests on a change, STALE while abmeshd is down (the
// provider keeps answering from its last configuration), READY and
// CONFIGURATION_CHANGED when it is back with a new test.
func TestEvents(t *testing.T) {
	dir := t.TempDir()
	d := daemontest.Start(t, daemontest.DataDir(dir))
	addr := d.Addr()
	reg := d.Registry()
	daemontest.CreateStarted(t, reg, exp("rec-model", "v1", "v2"))
	daemontest.CreateStarted(t, reg, exp("other"))
	h := listen(t)
	p := newProvider(t, addr)
	flags := install(t, p)
	h.wait(t, of.ProviderReady, 1, nil)
	ctx := context.Background()
	unit := of.NewEvaluationContext("user-3", nil)
	before, _ := flags.StringValueDetails(ctx, "rec-model", "", unit)

	// A weight change: one new version, one changed test.
	x := exp("rec-model", "v1", "v2")
	x.Variants[1].Weight = 3
	if _, err := reg.Update(ctx, x); err != nil {
		t.Fatal(err)
	}
	ev := h.wait(t, of.ProviderConfigChange, 1, nil)
	if !slices.Equal(ev.FlagChanges, []string{"rec-model"}) || ev.EventMetadata[abmeshof.ConfigVersionKey] != int64(reg.Version()) {
		t.Errorf("CONFIGURATION_CHANGED %+v, want rec-model at version %d", ev, reg.Version())
	}
	if got, _ := flags.StringValueDetails(ctx, "rec-model", "", unit); got.FlagMetadata[abmeshof.PhaseKey] != 2 {
		t.Errorf("after the weight change: %+v", got)
	}
	before, _ = flags.StringValueDetails(ctx, "rec-model", "", unit)

	// abmeshd stops: STALE, and the last configuration is still served.
	d.Stop()
	h.wait(t, of.ProviderStale, 1, nil)
	if s := flags.State(); s != of.StaleState {
		t.Errorf("client state while abmeshd is down: %s", s)
	}
	eventually(t, "failed reconnects", func() bool { return p.Client().Stats().Reconnects >= 3 })
	if got, err := flags.StringValueDetails(ctx, "rec-model", "", unit); err != nil || got.Value != before.Value || got.Reason != of.SplitReason {
		t.Errorf("while abmeshd is down: %+v, %v; want %q (SPLIT)", got, err, before.Value)
	}
	if n, _ := h.count(of.ProviderStale); n != 1 {
		t.Errorf("%d STALE events for one outage", n)
	}

	// abmeshd is back on the same address and data, and gets a new test.
	d2 := daemontest.Start(t, daemontest.Listen(addr), daemontest.DataDir(dir))
	h.wait(t, of.ProviderReady, 2, nil)
	daemontest.CreateStarted(t, d2.Registry(), exp("new-test"))
	h.wait(t, of.ProviderConfigChange, 2, func(e of.EventDetails) bool { return slices.Contains(e.FlagChanges, "new-test") })
	if s := flags.State(); s != of.ReadyState {
		t.Errorf("client state after the restart: %s", s)
	}
	eventually(t, "the started test", func() bool { return p.Client().Stats().ConfigVersion == d2.Registry().Version() })
	if got, err := flags.StringValueDetails(ctx, "new-test", "", unit); err != nil || got.Reason != of.SplitReason {
		t.Errorf("new test: %+v, %v", got, err)
	}
	nReady, _ := h.count(of.ProviderReady)
	nStale, _ := h.count(of.ProviderStale)
	if got := h.snapshot(); slices.Contains(got, of.ProviderError) || nReady != 2 || nStale != 1 {
		t.Errorf("events %v", got)
	}
}

// TestNotReady: with no abmeshd, Init gives up with PROVIDER_NOT_READY,
// evaluations answer ERROR / PROVIDER_NOT_READY with the default value,
// and the provider emits READY when abmeshd comes up.
func TestNotReady(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()

	h := listen(t)
	p := newProvider(t, addr, abmeshof.WithInitTimeout(200*time.Millisecond))
	err = of.SetProviderAndWait(p)
	var initErr *of.ProviderInitError
	if !errors.As(err, &initErr) || initErr.ErrorCode != of.ProviderNotReadyCode {
		t.Fatalf("SetProviderAndWait = %v, want a PROVIDER_NOT_READY init error", err)
	}
	flags := of.NewDefaultClient()
	h.wait(t, of.ProviderError, 1, nil)
	if s := flags.State(); s != of.ErrorState {
		t.Errorf("state %s", s)
	}
	rec := newRecorder(t)
	ctx := of.NewEvaluationContext("user-1", nil)
	var got of.StringEvaluationDetails
	events := rec.events(func(c context.Context) { got, err = flags.StringValueDetails(c, "rec-model", "dflt", ctx) })
	if err == nil || got.ErrorCode != of.ProviderNotReadyCode || got.Reason != of.ErrorReason || got.Value != "dflt" {
		t.Errorf("before any configuration: %+v, %v", got, err)
	}
	if want := withErr(wantEvent("user-1", assign.Assignment{Test: "rec-model", Reason: assign.ReasonFallback}), "provider_not_ready"); !sameEvents(events, want) {
		t.Errorf("recorded %v, want %v", events, want)
	}
	if b, err := flags.BooleanValueDetails(context.Background(), "rec-model", true, ctx); err == nil || b.ErrorCode != of.ProviderNotReadyCode || !b.Value {
		t.Errorf("boolean before any configuration: %+v", b)
	}
	if i, err := flags.IntValueDetails(context.Background(), "rec-model", 3, ctx); err == nil || i.ErrorCode != of.ProviderNotReadyCode || i.Value != 3 {
		t.Errorf("int before any configuration: %+v", i)
	}

	d := daemontest.Start(t, daemontest.Listen(addr))
	daemontest.CreateStarted(t, d.Registry(), exp("rec-model", "v1", "v2"))
	h.wait(t, of.ProviderReady, 1, nil)
	eventually(t, "the test", func() bool {
		got, err = flags.StringValueDetails(context.Background(), "rec-model", "dflt", ctx)
		return err == nil
	})
	want, _ := d.Registry().Snapshot().EvaluateTest("rec-model", "user-1", nil)
	if got.Value != want.Variant || flags.State() != of.ReadyState {
		t.Errorf("after abmeshd came up: %+v (state %s), want %s", got, flags.State(), want.Variant)
	}
}
