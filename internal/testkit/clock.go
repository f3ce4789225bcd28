package testkit

import (
	"sync"
	"time"
)

// Clock is a fake clock for code that takes a func() time.Time: pass
// c.Now. It stands still unless a test moves it with Advance or Set, or
// makes it tick with Step. A Clock is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

// NewClock returns a Clock that reads start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time; with a step set, the clock then moves on
// by the step, so successive calls return start, start+step, ...
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

// Advance moves the clock forward by d (back when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Step makes every later Now call move the clock on by d after reading it,
// for code that needs distinct, increasing timestamps; 0 stops the ticking.
func (c *Clock) Step(d time.Duration) {
	c.mu.Lock()
	c.step = d
	c.mu.Unlock()
}
