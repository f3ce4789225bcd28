package daemon

import (
	"runtime"
	"testing"
)

// TestMemoryReturner: a check after a collection does nothing; the next
// quiet check returns memory once; later quiet checks do not repeat it
// until a collection runs again. (A collection of the test process's own
// between two checks would make a check see activity: each step is tried
// a few times.)
func TestMemoryReturner(t *testing.T) {
	m := newMemoryReturner()
	quietReturn := func(what string) {
		t.Helper()
		for range 5 {
			runtime.GC()
			if m.check() {
				t.Fatalf("%s: returned memory right after a collection", what)
			}
			if m.check() {
				if m.check() {
					t.Fatalf("%s: returned memory twice in one quiet period", what)
				}
				return
			}
		}
		t.Fatalf("%s: never returned memory when quiet", what)
	}
	quietReturn("first quiet period")
	quietReturn("next quiet period")
}
