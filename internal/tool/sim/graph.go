package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/abmesh/abmesh/tracing"
)

// DefaultLayers are the layer sizes of the large scenario's graph: one
// edge gateway, 4 API services, 8 logic services, 10 stores and 7
// databases (30 services). It must not be modified.
var DefaultLayers = []int{1, 4, 8, 10, 7}

// layerRoles name the services of the layers of RandomGraph.
var layerRoles = []string{"edge", "api", "logic", "store", "db"}

// ServiceName returns the name RandomGraph gives service i of layer l:
// "edge-0", "api-2", "logic-5", "store-1", "db-3", then "tier5-0", ….
func ServiceName(l, i int) string {
	if l < len(layerRoles) {
		return fmt.Sprintf("%s-%d", layerRoles[l], i)
	}
	return fmt.Sprintf("tier%d-%d", l, i)
}

// RandomGraph returns a random layered DAG of services, the same for the
// same seed and layers: layer l has layers[l] services named by
// ServiceName. Every service calls 1–3 distinct services of the next layer
// and, with probability 1/4, one of the layer after; every service below
// the first layer has at least one caller in the layer above. Call counts
// are uniform in [50, 5000]. Calls only go down, so the graph is acyclic.
// Layers with no services are an error.
func RandomGraph(seed uint64, layers []int) ([]tracing.Edge, error) {
	if len(layers) == 0 {
		return nil, fmt.Errorf("random graph: no layers")
	}
	for l, n := range layers {
		if n < 1 {
			return nil, fmt.Errorf("random graph: layer %d has %d services (want ≥ 1)", l, n)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed6a11))
	type pair struct{ a, b string }
	seen := map[pair]bool{}
	var edges []tracing.Edge
	add := func(a, b string) {
		if seen[pair{a, b}] {
			return
		}
		seen[pair{a, b}] = true
		edges = append(edges, tracing.Edge{Caller: a, Callee: b, Calls: uint64(50 + rng.IntN(4951))})
	}
	called := map[string]bool{}
	for l := 0; l+1 < len(layers); l++ {
		for i := range layers[l] {
			from := ServiceName(l, i)
			next := layers[l+1]
			k := min(next, 1+rng.IntN(3))
			for _, j := range rng.Perm(next)[:k] {
				to := ServiceName(l+1, j)
				add(from, to)
				called[to] = true
			}
			if l+2 < len(layers) && rng.IntN(4) == 0 {
				to := ServiceName(l+2, rng.IntN(layers[l+2]))
				add(from, to)
				called[to] = true
			}
		}
		for j := range layers[l+1] {
			if to := ServiceName(l+1, j); !called[to] {
				add(ServiceName(l, rng.IntN(layers[l])), to)
				called[to] = true
			}
		}
	}
	slices.SortFunc(edges, func(x, y tracing.Edge) int {
		if x.Caller != y.Caller {
			return strings.Compare(x.Caller, y.Caller)
		}
		return strings.Compare(x.Callee, y.Callee)
	})
	return edges, nil
}
