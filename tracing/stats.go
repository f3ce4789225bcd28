package tracing

// AssemblyStats are an Assembler's statistics since it was created: what
// became of every span offered, what the traces built from them looked
// like, and what is in flight.
//
// Every span offered to Add (including those a converter rejected) ends in
// exactly one of SpansAccepted, SpansLate and Malformed, so
//
//	SpansReceived = SpansAccepted + SpansLate + MalformedTotal()
//
// Batches refused with ErrFull or ErrTooLarge are not received; their
// spans are counted in SpansRejectedFull (each time they are offered: a
// retried batch counts again) or SpansRejectedTooLarge.
type AssemblyStats struct {
	SpansReceived         uint64            `json:"spans_received"`
	SpansAccepted         uint64            `json:"spans_accepted"`
	SpansLate             uint64            `json:"spans_late"`               // spans of traces already completed
	SpansClaimed          uint64            `json:"spans_claimed"`            // of SpansLate, spans of traces another replica claimed (Assembler.Claim)
	SpansRejectedFull     uint64            `json:"spans_rejected_full"`      // spans refused with ErrFull
	BatchesRejectedFull   uint64            `json:"batches_rejected_full"`    // Add calls refused with ErrFull
	SpansRejectedTooLarge uint64            `json:"spans_rejected_too_large"` // spans of batches refused with ErrTooLarge
	Malformed             map[string]uint64 `json:"malformed"`                // rejected spans by Reason.String(); only non-zero reasons
	ValuesTruncated       uint64            `json:"values_truncated"`         // strings cut to Config.MaxValueLen
	AttrsDropped          uint64            `json:"attrs_dropped"`            // attributes over Config.MaxAttrsPerSpan
	EventsDropped         uint64            `json:"events_dropped"`           // events over Config.MaxEventsPerSpan
	SpansInCycles         uint64            `json:"spans_in_cycles"`          // spans whose parent links looped (links ignored)
	OrphanSpans           uint64            `json:"orphan_spans"`             // spans whose parent was not in the trace
	SameServiceCalls      uint64            `json:"same_service_calls"`       // parent→child pairs inside one service (not edges)
	BadFlagEvents         uint64            `json:"bad_flag_events"`          // feature-flag events without key or variant
	TracesCompleted       uint64            `json:"traces_completed"`         // traces whose observation was built
	TracesTimedOut        uint64            `json:"traces_timed_out"`         // of those, completed by MaxTraceAge rather than idleness
	ObservationsEmitted   uint64            `json:"observations_emitted"`     // observations handed to the consumer
	TracesWithoutUnit     uint64            `json:"traces_without_unit"`      // observations with Unit ""
	TracesManyUnits       uint64            `json:"traces_many_units"`        // traces carrying more than one unit id
	TracesWithConflicts   uint64            `json:"traces_with_conflicts"`    // observations with a Conflict
	TracesInFlight        int               `json:"traces_in_flight"`         // gauge
	SpansInFlight         int               `json:"spans_in_flight"`          // gauge
	// BytesInFlight is what the traces in flight are charged against
	// Config.MaxBytes (gauge).
	BytesInFlight int `json:"bytes_in_flight"`
}

// MalformedTotal returns the sum of Malformed.
func (c *AssemblyStats) MalformedTotal() uint64 {
	var n uint64
	for _, v := range c.Malformed {
		n += v
	}
	return n
}

type counters struct {
	spansReceived, spansAccepted, spansLate      uint64
	spansClaimed                                 uint64
	spansRejectedFull, batchesRejectedFull       uint64
	spansRejectedTooLarge                        uint64
	malformed                                    [NumReasons]uint64
	valuesTruncated, attrsDropped, eventsDropped uint64
	spansInCycles, orphanSpans, sameServiceCalls uint64
	badFlagEvents                                uint64
	tracesCompleted, tracesTimedOut              uint64
	observationsEmitted, tracesWithoutUnit       uint64
	tracesManyUnits, tracesWithConflicts         uint64
}

func (c *counters) merge(d *counters) {
	c.spansInCycles += d.spansInCycles
	c.orphanSpans += d.orphanSpans
	c.sameServiceCalls += d.sameServiceCalls
	c.badFlagEvents += d.badFlagEvents
	c.tracesCompleted += d.tracesCompleted
	c.observationsEmitted += d.observationsEmitted
	c.tracesWithoutUnit += d.tracesWithoutUnit
	c.tracesManyUnits += d.tracesManyUnits
	c.tracesWithConflicts += d.tracesWithConflicts
}

// Stats returns a snapshot of the assembler's statistics.
func (a *Assembler) Stats() AssemblyStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := &a.c
	out := AssemblyStats{
		SpansReceived:         c.spansReceived,
		SpansAccepted:         c.spansAccepted,
		SpansLate:             c.spansLate,
		SpansClaimed:          c.spansClaimed,
		SpansRejectedFull:     c.spansRejectedFull,
		BatchesRejectedFull:   c.batchesRejectedFull,
		SpansRejectedTooLarge: c.spansRejectedTooLarge,
		Malformed:             map[string]uint64{},
		ValuesTruncated:       c.valuesTruncated,
		AttrsDropped:          c.attrsDropped,
		EventsDropped:         c.eventsDropped,
		SpansInCycles:         c.spansInCycles,
		OrphanSpans:           c.orphanSpans,
		SameServiceCalls:      c.sameServiceCalls,
		BadFlagEvents:         c.badFlagEvents,
		TracesCompleted:       c.tracesCompleted,
		TracesTimedOut:        c.tracesTimedOut,
		ObservationsEmitted:   c.observationsEmitted,
		TracesWithoutUnit:     c.tracesWithoutUnit,
		TracesManyUnits:       c.tracesManyUnits,
		TracesWithConflicts:   c.tracesWithConflicts,
		TracesInFlight:        len(a.traces),
		SpansInFlight:         a.spans,
		BytesInFlight:         a.bytes,
	}
	for r, n := range c.malformed {
		if n > 0 {
			out.Malformed[Reason(r).String()] = n
		}
	}
	return out
}

// Add adds o's counters and gauges to c: the stats of several assemblers
// (abmeshd replicas) as one.
func (c *AssemblyStats) Add(o AssemblyStats) {
	c.SpansReceived += o.SpansReceived
	c.SpansAccepted += o.SpansAccepted
	c.SpansLate += o.SpansLate
	c.SpansClaimed += o.SpansClaimed
	c.SpansRejectedFull += o.SpansRejectedFull
	c.BatchesRejectedFull += o.BatchesRejectedFull
	c.SpansRejectedTooLarge += o.SpansRejectedTooLarge
	for k, v := range o.Malformed {
		if c.Malformed == nil {
			c.Malformed = map[string]uint64{}
		}
		c.Malformed[k] += v
	}
	c.ValuesTruncated += o.ValuesTruncated
	c.AttrsDropped += o.AttrsDropped
	c.EventsDropped += o.EventsDropped
	c.SpansInCycles += o.SpansInCycles
	c.OrphanSpans += o.OrphanSpans
	c.SameServiceCalls += o.SameServiceCalls
	c.BadFlagEvents += o.BadFlagEvents
	c.TracesCompleted += o.TracesCompleted
	c.TracesTimedOut += o.TracesTimedOut
	c.ObservationsEmitted += o.ObservationsEmitted
	c.TracesWithoutUnit += o.TracesWithoutUnit
	c.TracesManyUnits += o.TracesManyUnits
	c.TracesWithConflicts += o.TracesWithConflicts
	c.TracesInFlight += o.TracesInFlight
	c.SpansInFlight += o.SpansInFlight
	c.BytesInFlight += o.BytesInFlight
}
