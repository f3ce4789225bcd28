package tracing

import (
	"testing"
	"time"
)

// countingConsumer counts observations by their trace's first span id.
type countingConsumer struct{ n int }

func (c *countingConsumer) ConsumeObservation(*Observation) { c.n++ }

func journalSpan(trace, span byte, at time.Time) Span {
	return Span{TraceID: TraceID{trace}, SpanID: SpanID{span}, Service: "web", Name: "GET /", Start: at, End: at.Add(time.Millisecond)}
}

// TestCheckpointResume: a checkpoint's mark is held by the oldest record
// of a trace in flight, its counted list names the counted traces above
// the mark, and replaying the records from the mark after Resume counts
// only the traces the checkpoint had not counted.
func TestCheckpointResume(t *testing.T) {
	now := time.Now()
	cfg := Config{TickInterval: -1, IdleTimeout: time.Second, Now: func() time.Time { return now }}
	var c countingConsumer
	a, err := NewAssembler(cfg, &c)
	if err != nil {
		t.Fatal(err)
	}
	// Records 1..4: trace 1 in records 1 and 3, trace 2 in record 2,
	// trace 3 in record 4.
	records := map[uint64][]Span{
		1: {journalSpan(1, 1, now)},
		2: {journalSpan(2, 1, now)},
		3: {journalSpan(1, 2, now)},
		4: {journalSpan(3, 1, now)},
	}
	add := func(a *Assembler, seq uint64) {
		t.Helper()
		b := &Batch{Spans: append([]Span(nil), records[seq]...), Seq: seq}
		if _, err := a.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	add(a, 1)
	add(a, 2)
	now = now.Add(2 * time.Second)
	add(a, 3) // trace 1 stays in flight; trace 2 completes below
	a.Expire()
	add(a, 4)
	if c.n != 1 {
		t.Fatalf("counted %d traces, want 1 (trace 2)", c.n)
	}
	var low uint64
	var counted []CountedTrace
	a.Checkpoint(5, func(l uint64, ct []CountedTrace) { low, counted = l, ct })
	if low != 1 || len(counted) != 1 || counted[0] != (CountedTrace{ID: TraceID{2}, Seq: 2}) {
		t.Fatalf("checkpoint low %d counted %v, want 1 and trace 2 at record 2", low, counted)
	}

	// Crash: a new assembler replays records ≥ low after Resume.
	var c2 countingConsumer
	b, _ := NewAssembler(cfg, &c2)
	b.Resume(counted)
	for seq := low; seq <= 4; seq++ {
		add(b, seq)
	}
	b.Flush()
	if c.n+c2.n != 3 || c2.n != 2 {
		t.Errorf("counted %d before the crash and %d on replay, want 1 + 2 = 3 traces", c.n, c2.n)
	}
	if st := b.Stats(); st.SpansLate != 1 {
		t.Errorf("replay: %d late spans, want 1 (trace 2's)", st.SpansLate)
	}

	// Once everything is counted the mark passes every record and the
	// counted list empties.
	a.Flush()
	a.Checkpoint(5, func(l uint64, ct []CountedTrace) { low, counted = l, ct })
	if low != 5 || len(counted) != 0 {
		t.Errorf("after flushing: low %d counted %v, want 5 and none", low, counted)
	}
}
