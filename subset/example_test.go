package subset_test

import (
	"fmt"
	"os"

	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// The worked example: a front end Svc1 calls Svc2→Svc3 and Svc4→Svc5. The
// test on Svc2 is susceptible to latency from what Svc2 calls; the tests
// on Svc3 and Svc5 slow down their callers. Only Svc3's test reaches Svc2.
func ExampleCompute() {
	g, err := subset.NewGraph([]tracing.Edge{
		{Caller: "Svc1", Callee: "Svc2", Calls: 100},
		{Caller: "Svc2", Callee: "Svc3", Calls: 80},
		{Caller: "Svc1", Callee: "Svc4", Calls: 50},
		{Caller: "Svc4", Callee: "Svc5", Calls: 30},
	})
	if err != nil {
		panic(err)
	}
	latency := func(scope subset.Scope) []subset.Interference {
		return []subset.Interference{{Kind: subset.KindLatency, Scope: scope}}
	}
	tests := []subset.Test{
		{ID: "checkout-v2", ChangeService: "Svc2", MeasureService: "Svc2", Susceptible: latency(subset.ScopeChangeDownstream)},
		{ID: "new-index", ChangeService: "Svc3", MeasureService: "Svc3", Emits: latency(subset.ScopeChangeUpstream)},
		{ID: "img-resize", ChangeService: "Svc5", MeasureService: "Svc5", Emits: latency(subset.ScopeChangeUpstream)},
	}
	subs, err := subset.Compute(tests, g)
	if err != nil {
		panic(err)
	}
	fmt.Println(subs[0].Tests())
	if err := subset.WriteTable(os.Stdout, subs); err != nil {
		panic(err)
	}
	// Output:
	// [checkout-v2 new-index]
	// VIEWPOINT    TEST         ROLE       KIND     EMITS OVER       SUSCEPTIBLE OVER   SHARED     VOLUME
	// checkout-v2  checkout-v2  viewpoint  -        -                -                  -          -
	// checkout-v2  new-index    member     latency  change_upstream  change_downstream  Svc2,Svc3  180
	// new-index    new-index    viewpoint  -        -                -                  -          -
	// img-resize   img-resize   viewpoint  -        -                -                  -          -
}
