package tracing

import (
	"encoding/json"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/testkit"
)

func TestGraphWindowAndMerge(t *testing.T) {
	clk := testkit.NewClock(t0)
	g, err := NewGraph(GraphConfig{Window: 5 * time.Minute, Bucket: time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	o, _ := BuildObservation(shopTrace(1, "u"))
	g.ConsumeObservation(o)
	clk.Advance(2 * time.Minute)
	g.ConsumeObservation(o)
	g.Merge(clk.Now(), []Edge{
		{Caller: "frontend", Callee: "checkout", Calls: 5}, // more than observed: wins
		{Caller: "checkout", Callee: "cart", Calls: 1},     // fewer: observed wins
		{Caller: "batch", Callee: "payment", Calls: 3},     // only external
		{Caller: "x", Callee: "x", Calls: 9},               // self link ignored
	})
	g.AddCalls(clk.Now().Add(-time.Hour), nil, []Edge{{"old", "gone", 1}}) // outside window

	snap := g.Snapshot()
	wantEdges := []Edge{
		{"batch", "payment", 3}, {"checkout", "cart", 2}, {"checkout", "payment", 2},
		{"frontend", "checkout", 5}, {"payment", "fraud", 2},
	}
	if !reflect.DeepEqual(snap.Edges, wantEdges) {
		t.Errorf("Edges = %v, want %v", snap.Edges, wantEdges)
	}
	if want := []string{"batch", "cart", "checkout", "fraud", "frontend", "payment"}; !slices.Equal(snap.Services, want) {
		t.Errorf("Services = %v, want %v", snap.Services, want)
	}

	// Persist and restore.
	data, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	g2, _ := NewGraph(GraphConfig{Window: 5 * time.Minute, Bucket: time.Minute, Now: clk.Now})
	if err := json.Unmarshal(data, g2); err != nil {
		t.Fatal(err)
	}
	if s2 := g2.Snapshot(); !reflect.DeepEqual(s2, snap) {
		t.Errorf("restored snapshot differs:\n%+v\n%+v", s2, snap)
	}

	// The first observation's bucket leaves the window after 5 minutes.
	clk.Advance(4 * time.Minute)
	snap = g.Snapshot()
	if i := slices.IndexFunc(snap.Edges, func(e Edge) bool { return e.Caller == "payment" }); i < 0 || snap.Edges[i].Calls != 1 {
		t.Errorf("after 6 minutes: %v", snap.Edges)
	}
	clk.Advance(10 * time.Minute)
	if snap = g.Snapshot(); len(snap.Edges) != 0 || len(snap.Services) != 0 {
		t.Errorf("after the window: %+v", snap)
	}
}

func TestGraphUnboundedAndConcurrent(t *testing.T) {
	g, err := NewGraph(GraphConfig{Window: -1})
	if err != nil {
		t.Fatal(err)
	}
	o, _ := BuildObservation(shopTrace(1, "u"))
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				g.AddCalls(time.Unix(0, 0), o.Services, o.Edges)
				_ = g.Snapshot()
			}
		}()
	}
	wg.Wait()
	snap := g.Snapshot()
	if len(snap.Edges) != 4 || snap.Edges[0].Calls != 400 {
		t.Errorf("snapshot = %+v", snap)
	}
	if _, err := NewGraph(GraphConfig{Window: time.Second, Bucket: time.Minute}); err == nil {
		t.Error("NewGraph accepted a window shorter than a bucket")
	}
	if err := new(Graph).UnmarshalJSON([]byte(`{"buckets":[]}`)); err == nil {
		t.Error("UnmarshalJSON on a zero Graph succeeded")
	}
	if err := g.UnmarshalJSON([]byte(`{`)); err == nil {
		t.Error("UnmarshalJSON accepted bad JSON")
	}
}

func TestTee(t *testing.T) {
	var a, b int
	c := Tee(ConsumerFunc(func(*Observation) { a++ }), nil, ConsumerFunc(func(*Observation) { b++ }))
	c.ConsumeObservation(&Observation{})
	if a != 1 || b != 1 {
		t.Errorf("a=%d b=%d", a, b)
	}
}
