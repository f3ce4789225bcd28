package subset

import "time"

// DefaultCap is the default largest subset size, the viewpoint included.
const DefaultCap = 6

// Option configures Compute, NewSubsetter and NewWindows; each reads the
// options that concern it.
type Option interface{ apply(*config) }

// DefaultMinEdgeCalls is how many calls a traced edge must carry before
// ObserveEdges admits it into the graph by default.
const DefaultMinEdgeCalls = 5

type config struct {
	cap          int
	clock        func() time.Time
	minEdgeCalls int
}

func newConfig(opts []Option) config {
	c := config{cap: DefaultCap, clock: time.Now, minEdgeCalls: DefaultMinEdgeCalls}
	for _, o := range opts {
		o.apply(&c)
	}
	return c
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithCap sets the largest subset size, the viewpoint included (default
// DefaultCap). n ≤ 0 removes the cap: every interfering test is modelled.
func WithCap(n int) Option { return optionFunc(func(c *config) { c.cap = n }) }

// WithClock sets the clock of a Subsetter or Windows (default time.Now):
// it dates window ends and the start of tests seen to start. Compute
// ignores it.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.clock = now })
}

// WithMinEdgeCalls sets how many calls a traced edge must carry before a
// Subsetter's ObserveEdges admits it (default DefaultMinEdgeCalls); once
// admitted it stays while it carries any call. n ≤ 1 admits every edge
// with a call.
func WithMinEdgeCalls(n int) Option {
	return optionFunc(func(c *config) { c.minEdgeCalls = n })
}
