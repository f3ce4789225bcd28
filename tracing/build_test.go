package tracing

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/testkit"
)

func TestBuildObservationShopTrace(t *testing.T) {
	spans := shopTrace(7, "user-42")
	o, st := BuildObservation(spans)

	if got, want := o.TraceID, traceID(7).String(); got != want {
		t.Errorf("TraceID = %s, want %s", got, want)
	}
	if o.Unit != "user-42" {
		t.Errorf("Unit = %q, want user-42", o.Unit)
	}
	if !o.Start.Equal(t0) {
		t.Errorf("Start = %v, want %v", o.Start, t0)
	}
	if want := []string{"cart", "checkout", "fraud", "frontend", "payment"}; !slices.Equal(o.Services, want) {
		t.Errorf("Services = %v, want %v", o.Services, want)
	}
	wantEdges := []Edge{
		{"checkout", "cart", 1}, {"checkout", "payment", 1}, {"frontend", "checkout", 1}, {"payment", "fraud", 1},
	}
	if !reflect.DeepEqual(o.Edges, wantEdges) {
		t.Errorf("Edges = %v, want %v", o.Edges, wantEdges)
	}
	wantExp := []Exposure{
		{Test: "fast-checkout", Variant: "control", Service: "checkout", Phase: 2, Reason: "split"},
		{Test: "new-home", Variant: "treatment", Service: "frontend", Phase: 2, Reason: "split"},
	}
	if !reflect.DeepEqual(o.Exposures, wantExp) {
		t.Errorf("Exposures = %+v, want %+v", o.Exposures, wantExp)
	}
	if len(o.Conflicts) != 0 {
		t.Errorf("Conflicts = %v, want none", o.Conflicts)
	}
	if st.SameServiceCalls != 5 || st.OrphanSpans != 0 || st.SpansInCycles != 0 || st.ManyUnits {
		t.Errorf("stats = %+v", st)
	}

	for _, tc := range []struct {
		service, key string
		want         float64
		ok           bool
	}{
		{"checkout", "latency_ms", 100, true},
		{"frontend", "latency_ms", 120, true},
		{"fraud", "error", 1, true},
		{"payment", "error", 0, true},
		{"checkout", "attribute:shop.order.value", 42.5, true},
		{"frontend", "attribute:http.status_code", 200, true},
		{"payment", "attribute:payment.retried", 0, true},
		{"checkout", "attribute:missing", 0, false},
		{"nowhere", "latency_ms", 0, false},
		{"checkout", "bogus", 0, false},
	} {
		v, ok := o.Metric(tc.service, tc.key)
		if ok != tc.ok || math.Abs(v-tc.want) > 1e-9 {
			t.Errorf("Metric(%s, %s) = %v, %v; want %v, %v", tc.service, tc.key, v, ok, tc.want, tc.ok)
		}
	}

	// The result does not depend on the order spans arrive in.
	r := rand.New(rand.NewPCG(1, 2))
	for range 5 {
		sh := slices.Clone(spans)
		r.Shuffle(len(sh), func(i, j int) { sh[i], sh[j] = sh[j], sh[i] })
		o2, _ := BuildObservation(sh)
		if !reflect.DeepEqual(o, o2) {
			t.Fatalf("shuffled spans give a different observation:\n%+v\n%+v", o, o2)
		}
	}
}

func TestBuildObservationCases(t *testing.T) {
	legacy := func(test, variant string) Event {
		return Event{Name: EventFlagLegacy, Attrs: []Attr{
			StringAttr(AttrFlagKey, test), StringAttr(AttrFlagVariantOld, variant),
			StringAttr(AttrFlagProviderOld, "flagd"),
		}}
	}
	tests := []struct {
		name  string
		spans func() []Span
		check func(t *testing.T, o *Observation, st BuildStats)
	}{
		{
			name: "legacy event and baggage unit",
			spans: func() []Span {
				s := []Span{span(1, 1, 0, "web", KindServer, 0, 10)}
				s[0].Attrs = []Attr{StringAttr(BaggageUnitAttribute, "u-1")}
				s[0].Events = []Event{legacy("banner", "blue")}
				return s
			},
			check: func(t *testing.T, o *Observation, st BuildStats) {
				want := []Exposure{{Test: "banner", Variant: "blue", Service: "web"}}
				if !reflect.DeepEqual(o.Exposures, want) || o.Unit != "u-1" {
					t.Errorf("got unit %q exposures %+v", o.Unit, o.Exposures)
				}
			},
		},
		{
			name: "conflict and duplicate exposures",
			spans: func() []Span {
				s := []Span{
					span(1, 1, 0, "web", KindServer, 0, 10),
					span(1, 2, 1, "api", KindServer, 1, 5),
					span(1, 3, 1, "api", KindServer, 2, 5),
				}
				s[0].Events = []Event{flagEvent("t1", "a", "u"), flagEvent("t1", "a", "u")}
				s[1].Events = []Event{flagEvent("t1", "b", "u")}
				s[2].Events = []Event{flagEvent("t1", "b", "u"), flagEvent("t2", "x", "u")}
				return s
			},
			check: func(t *testing.T, o *Observation, st BuildStats) {
				if len(o.Exposures) != 3 {
					t.Errorf("Exposures = %+v, want 3 distinct", o.Exposures)
				}
				want := []Conflict{{Test: "t1", Variants: []string{"a", "b"}}}
				if !reflect.DeepEqual(o.Conflicts, want) {
					t.Errorf("Conflicts = %+v, want %+v", o.Conflicts, want)
				}
				if want := []Edge{{"web", "api", 2}}; !reflect.DeepEqual(o.Edges, want) {
					t.Errorf("Edges = %v, want %v", o.Edges, want)
				}
			},
		},
		{
			name: "unit from first event beats attribute; many units flagged",
			spans: func() []Span {
				s := []Span{span(1, 1, 0, "web", KindServer, 0, 10), span(1, 2, 1, "api", KindServer, 1, 5)}
				s[0].Attrs = []Attr{StringAttr(UnitAttribute, "attr-unit")}
				s[1].Events = []Event{flagEvent("t", "a", "event-unit")}
				return s
			},
			check: func(t *testing.T, o *Observation, st BuildStats) {
				if o.Unit != "event-unit" || !st.ManyUnits {
					t.Errorf("Unit = %q ManyUnits = %v", o.Unit, st.ManyUnits)
				}
			},
		},
		{
			name: "parent cycle and self parent",
			spans: func() []Span {
				return []Span{
					span(1, 1, 2, "a", KindServer, 0, 10),
					span(1, 2, 1, "b", KindServer, 1, 5),
					span(1, 3, 3, "c", KindServer, 2, 5),
					span(1, 4, 2, "d", KindServer, 3, 1), // points into the cycle
				}
			},
			check: func(t *testing.T, o *Observation, st BuildStats) {
				if st.SpansInCycles != 3 {
					t.Errorf("SpansInCycles = %d, want 3", st.SpansInCycles)
				}
				if want := []Edge{{"b", "d", 1}}; !reflect.DeepEqual(o.Edges, want) {
					t.Errorf("Edges = %v, want %v", o.Edges, want)
				}
			},
		},
		{
			name: "orphan, no server span, string phase, bad flag event",
			spans: func() []Span {
				s := []Span{
					span(1, 1, 99, "worker", KindConsumer, 5, 7),
					span(1, 2, 0, "worker", KindInternal, 9, 1),
				}
				s[0].Events = []Event{
					{Name: EventFlagEvaluation, Attrs: []Attr{StringAttr(AttrFlagKey, "t"), StringAttr(AttrFlagVariant, "v"), StringAttr(AttrFlagVersion, "3")}},
					{Name: EventFlagEvaluation, Attrs: []Attr{StringAttr(AttrFlagKey, "no-variant")}},
					{Name: "exception"},
				}
				return s
			},
			check: func(t *testing.T, o *Observation, st BuildStats) {
				if st.OrphanSpans != 1 || st.BadFlagEvents != 1 {
					t.Errorf("stats = %+v", st)
				}
				if v, _ := o.Metric("worker", "latency_ms"); v != 7 {
					t.Errorf("latency = %v, want 7 (first span)", v)
				}
				if len(o.Exposures) != 1 || o.Exposures[0].Phase != 3 || o.Unit != "" {
					t.Errorf("exposures %+v unit %q", o.Exposures, o.Unit)
				}
			},
		},
		{
			name: "large trace uses the index",
			spans: func() []Span {
				var s []Span
				s = append(s, span(1, 1, 0, "root", KindServer, 0, 100))
				for i := uint64(2); i <= 100; i++ {
					s = append(s, span(1, i, i-1, []string{"x", "y"}[i%2], KindServer, float64(i), 1))
				}
				return s
			},
			check: func(t *testing.T, o *Observation, st BuildStats) {
				want := []Edge{{"root", "x", 1}, {"x", "y", 49}, {"y", "x", 49}}
				if !reflect.DeepEqual(o.Edges, want) || st.OrphanSpans != 0 {
					t.Errorf("Edges = %v stats %+v", o.Edges, st)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, st := BuildObservation(tc.spans())
			tc.check(t, o, st)
		})
	}
	if o, _ := BuildObservation(nil); o != nil {
		t.Errorf("BuildObservation(nil) = %+v, want nil", o)
	}
}

// FuzzSpanToObservation builds observations from arbitrary span shapes:
// ids drawn from a small space (so links, duplicates and cycles happen),
// random services, kinds, times and flag events. It must never panic and
// the observation must be consistent.
func FuzzSpanToObservation(f *testing.F) {
	f.Add([]byte{1, 0, 1, 2, 1, 1, 3, 2, 2})
	f.Add([]byte{5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5})
	f.Add([]byte{1, 2, 3, 2, 1, 3, 3, 3, 0, 9, 9, 9, 200, 201, 202})
	f.Fuzz(func(t *testing.T, data []byte) {
		spans := fuzzSpans(data)
		o, st := BuildObservation(spans)
		if len(spans) == 0 {
			if o != nil {
				t.Fatal("observation from no spans")
			}
			return
		}
		if !slices.IsSorted(o.Services) || len(o.Services) != len(o.Metrics) {
			t.Fatalf("services %v metrics %d", o.Services, len(o.Metrics))
		}
		for _, e := range o.Edges {
			if e.Caller == e.Callee || e.Calls < 1 {
				t.Fatalf("bad edge %+v", e)
			}
		}
		if st.SpansInCycles > len(spans) {
			t.Fatalf("cycles %d > spans %d", st.SpansInCycles, len(spans))
		}
		// Feed the same spans through an Assembler: counts must balance.
		a, err := NewAssembler(Config{TickInterval: -1, Now: testkit.NewClock(t0).Now}, nil)
		if err != nil {
			t.Fatal(err)
		}
		b := &Batch{Spans: slices.Clone(spans)}
		if _, err := a.Add(b); err != nil {
			t.Fatal(err)
		}
		a.Flush()
		c := a.Stats()
		if c.SpansReceived != c.SpansAccepted+c.SpansLate+c.MalformedTotal() {
			t.Fatalf("counters do not balance: %+v", c)
		}
	})
}

func fuzzSpans(data []byte) []Span {
	services := []string{"a", "b", "c", "", "d\x00"}
	var spans []Span
	for len(data) >= 3 && len(spans) < 64 {
		id, parent, x := data[0], data[1], data[2]
		data = data[3:]
		s := span(uint64(1+x%2), uint64(id%16), uint64(parent%17), services[int(x)%len(services)],
			SpanKind(x%6), float64(int(x)-128), float64(id)-8)
		if x%3 == 0 {
			s.Events = []Event{flagEvent("t"+string(rune('a'+x%3)), string(rune('a'+id%3)), string(rune('u'+parent%2)))}
		}
		if x%5 == 0 {
			s.Attrs = []Attr{FloatAttr("v", float64(id)), StringAttr(UnitAttribute, string(rune('u'+x%3)))}
		}
		s.TraceID = traceID(1)
		spans = append(spans, s)
	}
	return spans
}

// The helpers below build the spans of this package's tests; t0 is when
// their traces start.
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
