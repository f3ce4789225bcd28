package testkit

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)

func TestClock(t *testing.T) {
	c := NewClock(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now = %v, want the start %v", got, t0)
	}
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("a clock without a step moved by itself to %v", got)
	}
	c.Advance(90 * time.Second)
	if got, want := c.Now(), t0.Add(90*time.Second); !got.Equal(want) {
		t.Fatalf("after Advance(90s) Now = %v, want %v", got, want)
	}
	c.Advance(-30 * time.Second)
	if got, want := c.Now(), t0.Add(time.Minute); !got.Equal(want) {
		t.Fatalf("after Advance(-30s) Now = %v, want %v", got, want)
	}
	later := t0.Add(5 * time.Hour)
	c.Set(later)
	if got := c.Now(); !got.Equal(later) {
		t.Fatalf("after Set Now = %v, want %v", got, later)
	}
}

func TestClockStep(t *testing.T) {
	c := NewClock(t0)
	c.Step(time.Second)
	for i := range 3 {
		if got, want := c.Now(), t0.Add(time.Duration(i)*time.Second); !got.Equal(want) {
			t.Fatalf("call %d: Now = %v, want %v", i, got, want)
		}
	}
	c.Step(0)
	if a, b := c.Now(), c.Now(); !a.Equal(b) || !a.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("after Step(0) Now = %v then %v, want %v twice", a, b, t0.Add(3*time.Second))
	}
}

// TestClockConcurrent is for the race detector; with a step, concurrent
// callers still each get a distinct time.
func TestClockConcurrent(t *testing.T) {
	c := NewClock(t0)
	c.Step(time.Nanosecond)
	const workers, calls = 4, 500
	seen := make(chan time.Time, workers*calls)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range calls {
				seen <- c.Now()
				c.Advance(0)
			}
		})
	}
	wg.Wait()
	close(seen)
	distinct := map[time.Time]bool{}
	for tm := range seen {
		distinct[tm] = true
	}
	if len(distinct) != workers*calls {
		t.Fatalf("%d distinct times from %d calls", len(distinct), workers*calls)
	}
}
