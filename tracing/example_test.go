package tracing_test

import (
	"fmt"
	"time"

	"github.com/abmesh/abmesh/tracing"
)

// A two-service trace: the frontend calls checkout, which served variant
// "treatment" of test "fast-checkout" to unit user-1.
func ExampleBuildObservation() {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tid, _ := tracing.ParseTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	root, _ := tracing.ParseSpanID("1")
	call, _ := tracing.ParseSpanID("2")
	server, _ := tracing.ParseSpanID("3")
	spans := []tracing.Span{
		{TraceID: tid, SpanID: root, Service: "frontend", Kind: tracing.KindServer, Start: t0, End: t0.Add(80 * time.Millisecond),
			Attrs: []tracing.Attr{tracing.StringAttr(tracing.UnitAttribute, "user-1")}},
		{TraceID: tid, SpanID: call, ParentID: root, Service: "frontend", Kind: tracing.KindClient, Start: t0, End: t0.Add(70 * time.Millisecond)},
		{TraceID: tid, SpanID: server, ParentID: call, Service: "checkout", Kind: tracing.KindServer,
			Start: t0.Add(time.Millisecond), End: t0.Add(61 * time.Millisecond),
			Attrs: []tracing.Attr{tracing.FloatAttr("shop.order.value", 42.5)},
			Events: []tracing.Event{{Name: tracing.EventFlagEvaluation, Attrs: []tracing.Attr{
				tracing.StringAttr(tracing.AttrFlagKey, "fast-checkout"),
				tracing.StringAttr(tracing.AttrFlagVariant, "treatment"),
			}}}},
	}
	o, _ := tracing.BuildObservation(spans)
	fmt.Println(o.Unit, o.Services, o.Edges)
	for _, x := range o.Exposures {
		fmt.Println(x.Test, x.Variant, x.Service)
	}
	latency, _ := o.Metric("checkout", "latency_ms")
	value, _ := o.Metric("checkout", "attribute:shop.order.value")
	fmt.Println(latency, value)
	// Output:
	// user-1 [checkout frontend] [{frontend checkout 1}]
	// fast-checkout treatment checkout
	// 60 42.5
}
