package subset

import (
	"sync"
	"time"

	"github.com/abmesh/abmesh/tracing"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

var t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(d time.Duration) {
	c.mu.Lock()
	c.now = t0.Add(d)
	c.mu.Unlock()
}

// hashTable is a HashAssigner backed by a map "test/unit" → variant.
type hashTable map[string]string

func (h hashTable) HashVariant(test, unit string) (string, bool) {
	v, ok := h[test+"/"+unit]
	return v, ok
}

// obs builds an observation: exposures as test=variant (reason "hash",
// phase 0) and latency metrics per service.
type obsBuilder struct{ o tracing.Observation }

func newObs(unit string, start time.Duration) *obsBuilder {
	return &obsBuilder{o: tracing.Observation{Unit: unit, Start: t0.Add(start)}}
}

func (b *obsBuilder) serve(test, variant, service string) *obsBuilder {
	b.o.Exposures = append(b.o.Exposures, tracing.Exposure{Test: test, Variant: variant, Service: service, Reason: "hash"})
	return b
}

func (b *obsBuilder) reason(r string) *obsBuilder {
	b.o.Exposures[len(b.o.Exposures)-1].Reason = r
	return b
}

func (b *obsBuilder) phase(p int) *obsBuilder {
	b.o.Exposures[len(b.o.Exposures)-1].Phase = p
	return b
}

func (b *obsBuilder) latency(service string, ms float64) *obsBuilder {
	b.o.Metrics = append(b.o.Metrics, tracing.ServiceMetrics{Service: service, LatencyMS: ms})
	return b
}

func (b *obsBuilder) failed(service string) *obsBuilder {
	b.o.Metrics = append(b.o.Metrics, tracing.ServiceMetrics{Service: service, Error: true})
	return b
}

func (b *obsBuilder) conflict(test string, variants ...string) *obsBuilder {
	b.o.Conflicts = append(b.o.Conflicts, tracing.Conflict{Test: test, Variants: variants})
	return b
}

func (b *obsBuilder) build() *tracing.Observation { o := b.o; return &o }

// stack is a Subsetter feeding a Windows, wired as the daemon wires them,
// so a test reads subsets and windows through one value.
type stack struct {
	*Subsetter
	*Windows
}

// newStack returns a stack whose Subsetter and Windows share opts.
func newStack(opts ...Option) stack {
	ws := NewWindows(opts...)
	return stack{NewSubsetter(ws, opts...), ws}
}
