package sim

import (
	"slices"
	"testing"

	"github.com/abmesh/abmesh/subset"
)

func TestRandomGraph(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		edges, err := RandomGraph(seed, DefaultLayers)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := RandomGraph(seed, DefaultLayers)
		if !slices.Equal(edges, again) {
			t.Fatalf("seed %d: not deterministic", seed)
		}
		if n := countServices(edges); n != 30 {
			t.Errorf("seed %d: %d services, want 30", seed, n)
		}
		layerOf := map[string]int{}
		for l, n := range DefaultLayers {
			for i := range n {
				layerOf[ServiceName(l, i)] = l
			}
		}
		called := map[string]bool{}
		calls := map[string]int{}
		for _, e := range edges {
			lc, okc := layerOf[e.Caller]
			le, oke := layerOf[e.Callee]
			if !okc || !oke {
				t.Fatalf("seed %d: unknown service in %v", seed, e)
			}
			if le <= lc || le > lc+2 {
				t.Errorf("seed %d: edge %s → %s does not go one or two layers down", seed, e.Caller, e.Callee)
			}
			if e.Calls < 50 || e.Calls > 5000 {
				t.Errorf("seed %d: count %d out of [50, 5000]", seed, e.Calls)
			}
			called[e.Callee] = true
			calls[e.Caller]++
		}
		for s, l := range layerOf {
			if l > 0 && !called[s] {
				t.Errorf("seed %d: %s has no caller", seed, s)
			}
			if l < len(DefaultLayers)-1 && calls[s] == 0 {
				t.Errorf("seed %d: %s calls nothing", seed, s)
			}
		}
		if _, err := subset.NewGraph(edges); err != nil {
			t.Errorf("seed %d: %v", seed, err)
		}
	}
	if _, err := RandomGraph(1, []int{1, 0}); err == nil {
		t.Error("an empty layer is not an error")
	}
	if _, err := RandomGraph(1, nil); err == nil {
		t.Error("no layers is not an error")
	}
}

func TestServiceName(t *testing.T) {
	for _, tt := range []struct {
		l, i int
		want string
	}{{0, 0, "edge-0"}, {2, 5, "logic-5"}, {4, 3, "db-3"}, {6, 1, "tier6-1"}} {
		if got := ServiceName(tt.l, tt.i); got != tt.want {
			t.Errorf("ServiceName(%d, %d) = %q, want %q", tt.l, tt.i, got, tt.want)
		}
	}
}
