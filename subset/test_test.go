package subset

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/testkit"
)

func TestFromExperiment(t *testing.T) {
	start2 := t0.Add(48 * time.Hour)
	e := assign.Experiment{
		ID: "checkout-v2", ChangeService: "checkout", MeasureService: "frontend",
		Metric:      assign.Metric{Kind: assign.MetricAttribute, Attribute: "shop.order.value", HigherIsBetter: true},
		Variants:    []assign.Variant{{Name: "control", Weight: 50}, {Name: "one-click", Weight: 50}},
		Sticky:      true,
		Emits:       []assign.Interference{{Kind: "latency", Scope: "change_upstream"}},
		Susceptible: []assign.Interference{{Kind: "user_experience", Scope: "measure"}},
		Status:      assign.StatusRunning,
		Phase:       2,
		Phases:      []assign.Phase{{Number: 1, StartedAt: t0}, {Number: 2, StartedAt: start2}},
	}
	want := Test{
		ID: "checkout-v2", ChangeService: "checkout", MeasureService: "frontend",
		Emits:       []Interference{{KindLatency, ScopeChangeUpstream}},
		Susceptible: []Interference{{KindUserExperience, ScopeMeasure}},
		Variants:    []string{"control", "one-click"},
		Metric:      "attribute:shop.order.value",
		Sticky:      true, Running: true, Phase: 2, PhaseStart: start2,
	}
	got := FromExperiment(e)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FromExperiment\n got %+v\nwant %+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Error(err)
	}
	for kind, key := range map[assign.MetricKind]string{assign.MetricLatencyMS: "latency_ms", assign.MetricError: "error"} {
		e.Metric.Kind = kind
		if got := FromExperiment(e).Metric; got != key {
			t.Errorf("metric kind %d → %q, want %q", kind, got, key)
		}
	}
	e.Status = assign.StatusPaused
	if FromExperiment(e).Running {
		t.Error("paused experiment converted as running")
	}
}

func TestCounterTooManyCells(t *testing.T) {
	// 20 interfering tests with 10 variants each: 10²¹ cells overflow a
	// 64-bit key, so nothing is counted and the reason is visible.
	variants := []string{"v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9"}
	var tests []Test
	h := hashTable{}
	for i := range 20 {
		id := fmt.Sprintf("t%02d", i)
		tests = append(tests, Test{
			ID: id, ChangeService: "a", MeasureService: "a", Variants: variants, Metric: "latency_ms", Running: true,
			Emits: []Interference{{KindResource, ScopeAll}}, Susceptible: []Interference{{KindResource, ScopeAll}},
		})
		h[id+"/u"] = "v1"
	}
	s := newStack(WithCap(0), WithClock(testkit.NewClock(t0).Now))
	if err := s.SetTests(tests); err != nil {
		t.Fatal(err)
	}
	c := NewCellCounter(s.Windows, h)
	c.ConsumeObservation(newObs("u", time.Hour).serve("t00", "v1", "a").latency("a", 1).build())
	w, _ := s.Current("t00")
	if len(w.Members) != 20 || w.Quality.TooManyCells != 1 || w.Quality.Counted != 0 {
		t.Errorf("%d members, quality %+v; want 20 members and one too-many-cells exclusion", len(w.Members), w.Quality)
	}
	// With the default cap, 6 members of 10 variants fit.
	s = newStack(WithClock(testkit.NewClock(t0).Now))
	if err := s.SetTests(tests); err != nil {
		t.Fatal(err)
	}
	NewCellCounter(s.Windows, h).ConsumeObservation(newObs("u", time.Hour).serve("t00", "v1", "a").latency("a", 1).build())
	w, _ = s.Current("t00")
	if len(w.Members) != DefaultCap || w.Quality.Counted != 1 || len(w.NotModelled) != 14 {
		t.Errorf("%d members, %d not modelled, quality %+v", len(w.Members), len(w.NotModelled), w.Quality)
	}
	if got := w.VariantNames(w.Cells[0]); !reflect.DeepEqual(got, []string{"v1", "v1", "v1", "v1", "v1", "v1"}) {
		t.Errorf("cell variants %v", got)
	}
}

// The assign engine is the HashAssigner abmeshd wires in.
var (
	_ HashAssigner = (*assign.Engine)(nil)
	_ SliceChecker = (*assign.Engine)(nil)
)
