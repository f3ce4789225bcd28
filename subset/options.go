package subset

import "time"

// DefaultCap is the default largest subset size, the viewpoint included.
const DefaultCap = 6

// Option configures Compute and NewSubsetter.
type Option interface{ apply(*config) }

type config struct {
	cap   int
	clock func() time.Time
}

func newConfig(opts []Option) config {
	c := config{cap: DefaultCap, clock: time.Now}
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

// WithClock sets the Subsetter's clock (default time.Now); it dates
// window ends and the start of tests seen to start. Compute ignores it.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.clock = now })
}
