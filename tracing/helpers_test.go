package tracing

import (
	"encoding/binary"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func traceID(n uint64) TraceID {
	var t TraceID
	t[0] = 0xab
	binary.BigEndian.PutUint64(t[8:], n)
	return t
}

func spanID(n uint64) SpanID {
	var s SpanID
	binary.BigEndian.PutUint64(s[:], n)
	return s
}

// span returns a span of trace tr with id n, parent p (0: root), service,
// kind, starting at ms after t0 and lasting dur ms.
func span(tr, n, p uint64, service string, kind SpanKind, ms, dur float64) Span {
	s := Span{
		TraceID: traceID(tr),
		SpanID:  spanID(n),
		Service: service,
		Name:    service + "-op",
		Kind:    kind,
		Start:   t0.Add(time.Duration(ms * float64(time.Millisecond))),
	}
	if p != 0 {
		s.ParentID = spanID(p)
	}
	s.End = s.Start.Add(time.Duration(dur * float64(time.Millisecond)))
	return s
}

func flagEvent(test, variant, unit string) Event {
	return Event{Name: EventFlagEvaluation, Time: t0, Attrs: []Attr{
		StringAttr(AttrFlagKey, test),
		StringAttr(AttrFlagVariant, variant),
		StringAttr(AttrFlagContextID, unit),
		StringAttr(AttrFlagProvider, "abmesh"),
		IntAttr(AttrFlagVersion, 2),
		StringAttr(AttrFlagResultReason, "SPLIT"),
	}}
}

// shopTrace is a realistic 10-span trace: frontend → checkout → {cart,
// payment → fraud}, with client spans, two flag evaluations and numeric
// attributes.
func shopTrace(tr uint64, unit string) []Span {
	base := tr * 100
	id := func(i uint64) uint64 { return base + i }
	spans := []Span{
		span(tr, id(1), 0, "frontend", KindServer, 0, 120),
		span(tr, id(2), id(1), "frontend", KindInternal, 1, 3),
		span(tr, id(3), id(1), "frontend", KindClient, 5, 110),
		span(tr, id(4), id(3), "checkout", KindServer, 6, 100),
		span(tr, id(5), id(4), "checkout", KindClient, 10, 20),
		span(tr, id(6), id(5), "cart", KindServer, 11, 18),
		span(tr, id(7), id(4), "checkout", KindClient, 35, 60),
		span(tr, id(8), id(7), "payment", KindServer, 36, 58),
		span(tr, id(9), id(8), "payment", KindClient, 40, 30),
		span(tr, id(10), id(9), "fraud", KindServer, 41, 28),
	}
	spans[0].Attrs = []Attr{StringAttr(UnitAttribute, unit), IntAttr("http.status_code", 200)}
	spans[0].Events = []Event{flagEvent("new-home", "treatment", unit)}
	spans[3].Attrs = []Attr{FloatAttr("shop.order.value", 42.5), IntAttr("rpc.grpc.status_code", 0)}
	spans[3].Events = []Event{flagEvent("fast-checkout", "control", unit)}
	spans[7].Attrs = []Attr{IntAttr("rpc.grpc.status_code", 0), BoolAttr("payment.retried", false)}
	spans[9].Error = true
	return spans
}
