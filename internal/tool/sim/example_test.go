package sim_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/tool/sim"
)

// A traffic driver gives a simulated user outcomes: assign the user with
// the scenario's engine, then read every metric's Truth for the variants
// served.
func Example() {
	sc := sim.Shop()
	eng, err := sc.Engine()
	if err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	attrs := sc.DrawAttributes(rng)
	as, err := eng.Evaluate("user-42", attrs, assign.Filter{})
	if err != nil {
		panic(err)
	}
	served := map[string]string{}
	for _, a := range as {
		served[a.Test] = a.Variant
	}
	for _, tr := range sc.Truths {
		// The value to put on the measure service's span, e.g. the
		// attribute shop.order.value on the frontend's span.
		value := tr.Outcome(rng, served)
		_ = value
		fmt.Printf("%s mean %.2f\n", tr.Key(), tr.Mean(served))
	}
	// Output:
	// frontend/attribute:shop.order.value mean 53.00
	// productcatalog/latency_ms mean 12.00
	// ad/attribute:ad.clicked mean 0.30
	// checkout/attribute:shop.order.value mean 67.00
}
