package sim_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/sim"
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

// The truth of the shop's frontend metric: rec-model's ml-v2 pays off only
// in ui-layout's two-column page.
func ExampleTruth_Mean() {
	tr := sim.Shop().TruthFor("rec-model")
	for _, ui := range []string{"control", "two-column"} {
		off := tr.Mean(map[string]string{"ui-layout": ui})
		on := tr.Mean(map[string]string{"ui-layout": ui, "rec-model": "ml-v2"})
		fmt.Printf("ui-layout=%s: rec-model effect %+.0f\n", ui, on-off)
	}
	// Output:
	// ui-layout=control: rec-model effect +1
	// ui-layout=two-column: rec-model effect +15
}
