package daemon

import (
	"iter"
	"maps"
	"slices"

	"github.com/abmesh/abmesh/subset"
)

// Counts yields every counter of the trace consumer by name: the
// receiver's requests, the assembler's spans and traces (malformed spans
// by reason), the cells' data-quality totals over all windows
// ("cells." and the subset.Quality name), and the units the windows hold
// in memory with their bytes.
func (d *Daemon) Counts() iter.Seq2[string, int64] {
	return func(yield func(string, int64) bool) {
		stopped := false
		d.eachCount(func(name string, v int64) {
			stopped = stopped || !yield(name, v)
		})
	}
}

// eachCount calls add with every counter, in order.
func (d *Daemon) eachCount(add func(name string, v int64)) {
	if d.receiver != nil {
		st := d.receiver.Stats()
		add("otlp.requests", int64(st.Requests))
		add("otlp.requests_refused", int64(st.Refused))
		add("otlp.requests_refused_inflight", int64(st.RefusedInflight))
		add("otlp.requests_refused_full", int64(st.RefusedFull))
		add("otlp.requests_refused_wal", int64(st.RefusedJournal))
		add("otlp.spans", int64(st.Spans))
	}
	if d.wal != nil {
		w := d.wal.Stats()
		add("wal.bytes", w.Bytes)
		add("wal.segments", int64(w.Segments))
		add("wal.unflushed_records", int64(w.Lag()))
		add("wal.syncs", int64(w.Syncs))
	}
	if d.pg != nil {
		add("claims.traces_claimed", d.claimed.Load())
		add("claims.traces_held_elsewhere", d.heldElsewhere.Load())
		add("claims.answered", d.claimsAnswered.Load())
	}
	if d.jaeger != nil {
		t := d.jaeger.Totals()
		add("jaeger.traces_read", int64(t.Traces))
		add("jaeger.spans_read", int64(t.Spans))
		add("jaeger.spans_rejected", int64(t.Rejected))
		add("jaeger.traces_duplicate", int64(t.Duplicates))
		add("jaeger.traces_refused_full", int64(t.Refused))
		add("jaeger.dependency_links", int64(t.Links))
	}
	c := d.assembler.Stats()
	add("spans.received", int64(c.SpansReceived))
	add("spans.accepted", int64(c.SpansAccepted))
	add("spans.late", int64(c.SpansLate))
	add("spans.claimed", int64(c.SpansClaimed))
	add("spans.rejected_full", int64(c.SpansRejectedFull))
	add("batches.rejected_full", int64(c.BatchesRejectedFull))
	add("spans.rejected_too_large", int64(c.SpansRejectedTooLarge))
	for _, k := range slices.Sorted(maps.Keys(c.Malformed)) {
		add("spans.malformed."+k, int64(c.Malformed[k]))
	}
	add("spans.values_truncated", int64(c.ValuesTruncated))
	add("spans.attrs_dropped", int64(c.AttrsDropped))
	add("spans.events_dropped", int64(c.EventsDropped))
	add("spans.in_cycles", int64(c.SpansInCycles))
	add("spans.orphans", int64(c.OrphanSpans))
	add("spans.bad_flag_events", int64(c.BadFlagEvents))
	add("traces.completed", int64(c.TracesCompleted))
	add("traces.timed_out", int64(c.TracesTimedOut))
	add("traces.without_unit", int64(c.TracesWithoutUnit))
	add("traces.many_units", int64(c.TracesManyUnits))
	add("traces.with_conflicts", int64(c.TracesWithConflicts))
	add("traces.in_flight", int64(c.TracesInFlight))
	add("spans.in_flight", int64(c.SpansInFlight))
	add("observations.emitted", int64(c.ObservationsEmitted))
	var q subset.Quality
	for _, w := range d.windows.All() {
		q.Add(w.Quality)
	}
	for name, v := range q.Counts() {
		add("cells."+name, v)
	}
	units, bytes := d.windows.UnitMemory()
	add("units.held", units)
	add("units.bytes", bytes)
}
