package testkit

import (
	"testing"
	"time"
)

// Eventually polls cond every 10 ms until it holds, and ends the test
// with "timed out waiting for <what>" when it still does not after 10 s:
// for conditions another goroutine or process makes true (a stream
// reconnecting, a span exported).
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
