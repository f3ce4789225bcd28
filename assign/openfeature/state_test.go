package openfeature

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
)

func testExp(id string) *assign.Experiment {
	return &assign.Experiment{ID: id, Owner: "team", ChangeService: "shop", MeasureService: "shop", Plan: assign.Plan{MDE: 1},
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "treatment", Weight: 1}}}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// engines returns two configurations: e1 with running tests a, b, u and a
// draft d; e2 after a weight change of a, an override on b, a new test c
// and the deletion of d.
func engines(t *testing.T) (e1, e2 *assign.Engine) {
	ctx := context.Background()
	r := must(assign.NewRegistry(ctx, &assign.MemStore{}))
	for _, id := range []string{"a", "b", "u"} {
		must(r.Create(ctx, testExp(id)))
		must(r.Start(ctx, id))
	}
	must(r.Create(ctx, testExp("d")))
	e1 = r.Snapshot()
	a := testExp("a")
	a.Variants[1].Weight = 3
	must(r.Update(ctx, a))
	if err := r.SetOverride(ctx, assign.Override{Experiment: "b", Unit: "user-1", Variant: "treatment"}); err != nil {
		t.Fatal(err)
	}
	must(r.Create(ctx, testExp("c")))
	if err := r.Delete(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	return e1, r.Snapshot()
}

func TestFlagChanges(t *testing.T) {
	e1, e2 := engines(t)
	if got := flagChanges(e1, e2); !slices.Equal(got, []string{"a", "b", "c", "d"}) {
		t.Errorf("flagChanges = %v, want [a b c d]", got)
	}
	if got := flagChanges(e2, e2); len(got) != 0 {
		t.Errorf("no change: %v", got)
	}
	if got := flagChanges(nil, e1); !slices.Equal(got, []string{"a", "b", "d", "u"}) {
		t.Errorf("from nothing: %v", got)
	}
}

// step is one watch event and the provider events it must cause.
type step struct {
	kind client.WatchEventKind
	eng  *assign.Engine
	want []of.EventType
}

func run(t *testing.T, s *state, steps []step) {
	t.Helper()
	for i, st := range steps {
		var got []of.EventType
		for _, e := range s.next(client.WatchEvent{Kind: st.kind, Engine: st.eng, Err: errors.New("boom")}) {
			got = append(got, e.EventType)
			if e.ProviderName != Name || e.EventMetadata[ConfigVersionKey] != int64(st.eng.Version()) {
				t.Errorf("step %d: event %+v", i, e)
			}
		}
		if !slices.Equal(got, st.want) {
			t.Fatalf("step %d (%v): events %v, want %v", i, st.kind, got, st.want)
		}
	}
}

func TestStateMachine(t *testing.T) {
	e1, e2 := engines(t)
	const (
		ready   = of.ProviderReady
		changed = of.ProviderConfigChange
		stale   = of.ProviderStale
	)
	conn, inst, disc := client.WatchConnected, client.WatchInstalled, client.WatchDisconnected
	t.Run("init succeeds", func(t *testing.T) {
		s := &state{}
		// Before Init: nothing.
		run(t, s, []step{{conn, nil, nil}, {inst, e1, nil}, {disc, e1, nil}, {conn, e1, nil}})
		// Init returns nil: the SDK emits READY.
		s.initCalled = true
		run(t, s, []step{
			{inst, e1, nil}, // the same configuration again
			{inst, e2, []of.EventType{changed}},
			{disc, e2, []of.EventType{stale}},
			{disc, e2, nil}, // one outage, one STALE
			{conn, e2, []of.EventType{ready}},
			{inst, e2, nil},
			{inst, e1, []of.EventType{changed}},
		})
	})
	t.Run("init gives up", func(t *testing.T) {
		s := &state{initCalled: true, initFailed: true}
		run(t, s, []step{
			{conn, nil, nil},
			{disc, nil, nil}, // the first snapshot was rejected: nothing to be stale
			{conn, nil, nil},
			{inst, e1, []of.EventType{ready}},
			{inst, e2, []of.EventType{changed}},
		})
	})
}

func TestFromContext(t *testing.T) {
	when := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	type grade string
	unit, attrs := fromContext(of.FlattenedContext{
		of.TargetingKey: 42,
		"s":             "vip", "named": grade("gold"), "b": true, "i": -3, "u8": uint8(7), "f": 2.5, "big": 1e21, "f32": float32(0.1),
		"when": when, "m": map[string]any{"x": 1}, "l": []int{1}, "nil": nil,
	})
	want := map[string]string{"s": "vip", "named": "gold", "b": "true", "i": "-3", "u8": "7", "f": "2.5",
		"big": "1000000000000000000000", "f32": "0.1", "when": "2026-03-01T12:00:00.000000005Z"}
	if unit != "42" || !maps.Equal(attrs, want) {
		t.Errorf("unit %q, attributes %v\nwant 42, %v", unit, attrs, want)
	}
	if unit, attrs := fromContext(of.FlattenedContext{}); unit != "" || attrs != nil {
		t.Errorf("empty context: %q %v", unit, attrs)
	}
}
