package tracing

import (
	"slices"
	"testing"
	"time"
)

// TestClaim: a claim is answered with the traces held (in flight,
// completed recently), and spans of the others are late until the
// exclusion ends, counted as claimed; nothing of them is counted.
func TestClaim(t *testing.T) {
	now := time.Now()
	var c countingConsumer
	a, err := NewAssembler(Config{TickInterval: -1, IdleTimeout: time.Second, Now: func() time.Time { return now }}, &c)
	if err != nil {
		t.Fatal(err)
	}
	add := func(trace, span byte) AddResult {
		t.Helper()
		res, err := a.Add(&Batch{Spans: []Span{journalSpan(trace, span, now)}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	add(2, 1)
	a.Flush() // trace 2 counted, remembered as recent
	add(1, 1) // trace 1 in flight
	held := a.Claim([]TraceID{{1}, {2}, {3}}, time.Minute)
	slices.SortFunc(held, func(x, y TraceID) int { return int(x[0]) - int(y[0]) })
	if !slices.Equal(held, []TraceID{{1}, {2}}) {
		t.Fatalf("Claim held %v, want traces 1 and 2", held)
	}
	if res := add(3, 1); res.Accepted != 0 || res.Late != 1 {
		t.Errorf("a span of claimed trace 3: %+v, want late", res)
	}
	if res := add(1, 2); res.Accepted != 1 {
		t.Errorf("a span of trace 1, held: %+v, want accepted", res)
	}
	a.Flush()
	if st := a.Stats(); c.n != 2 || st.SpansClaimed != 1 || st.SpansLate != 1 {
		t.Errorf("counted %d traces, %d spans claimed, %d late; want 2 (1 and 2), 1, 1", c.n, st.SpansClaimed, st.SpansLate)
	}
	now = now.Add(time.Minute)
	a.Expire()
	if res := add(3, 2); res.Accepted != 1 {
		t.Errorf("trace 3 after the exclusion: %+v, want accepted", res)
	}
	if len(a.claims.until) != 0 || len(a.claims.order) != 0 {
		t.Errorf("exclusions left after they ended: %v", a.claims.until)
	}
}

// A replica that answered a claim drops a re-sent copy of a trace it did
// not hold; logged, the copy leaves the trace in its journal as late.
// When the claimant restarts again (a crash before its replay's counts
// were flushed) and claims the trace a second time, the answer must still
// be "not held": this replica never counted it, and a "held" would make
// the claimant drop it too, losing an acknowledged trace.
func TestClaimAgainAfterDroppedCopy(t *testing.T) {
	now := time.Now()
	var c countingConsumer
	a, err := NewAssembler(Config{TickInterval: -1, IdleTimeout: time.Second, Now: func() time.Time { return now }}, &c)
	if err != nil {
		t.Fatal(err)
	}
	if held := a.Claim([]TraceID{{7}}, time.Minute); len(held) != 0 {
		t.Fatalf("first claim: held %v, want none", held)
	}
	res, err := a.Add(&Batch{Seq: 5, Spans: []Span{journalSpan(7, 1, now)}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Late != 1 {
		t.Fatalf("the re-sent copy: %+v, want late (claimed)", res)
	}
	now = now.Add(time.Second)
	if held := a.Claim([]TraceID{{7}}, time.Minute); len(held) != 0 {
		t.Errorf("second claim: held %v, want none (the copy was dropped, never counted)", held)
	}
	a.Flush()
	if c.n != 0 {
		t.Errorf("counted %d traces, want 0", c.n)
	}
	// The renewed exclusion outlives the first.
	now = now.Add(time.Minute - time.Second/2)
	a.Expire()
	if res, _ := a.Add(&Batch{Seq: 6, Spans: []Span{journalSpan(7, 2, now)}}); res.Late != 1 {
		t.Errorf("a copy after the first exclusion ended: %+v, want late (renewed)", res)
	}
	now = now.Add(time.Second)
	a.Expire()
	if len(a.claims.until) != 0 || len(a.claims.order) != 0 {
		t.Errorf("exclusions left after they ended: %v, %v", a.claims.until, a.claims.order)
	}
}
