package tracing

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrFull is returned by Assembler.Add when accepting the batch would
// exceed Config.MaxTraces or Config.MaxSpans. Nothing of the batch was
// accepted or counted (except in AssemblyStats.SpansRejectedFull), so the
// sender may retry it whole later: an OTLP receiver answers
// ResourceExhausted.
var ErrFull = errors.New("tracing: assembler full")

// ErrTooLarge is returned by Assembler.Add for a batch whose valid spans
// exceed Config.MaxSpans, or whose new traces exceed Config.MaxTraces, on
// their own: it could never be accepted, so retrying is useless. Nothing
// of it is accepted; its spans are counted in AssemblyStats.SpansRejectedTooLarge.
var ErrTooLarge = errors.New("tracing: batch larger than the assembler's limits")

// ErrClosed is returned by Assembler.Add after Close.
var ErrClosed = errors.New("tracing: assembler closed")

// Assembler groups spans into traces and, when a trace is complete (no span
// for Config.IdleTimeout, or older than Config.MaxTraceAge), builds its
// Observation and hands it to the Consumer. Memory is bounded by the
// Config limits; every span offered is counted in AssemblyStats under exactly
// one outcome. An Assembler is safe for concurrent use.
type Assembler struct {
	cfg      Config
	consumer Consumer

	mu      sync.Mutex
	closed  bool
	traces  map[TraceID]*pending
	idle    plist // by last arrival, oldest first
	age     plist // by first arrival, oldest first
	spans   int   // spans in flight
	recent  recentSet
	free    []*pending
	bytes   int // bytes charged to the traces in flight (summary.bytes)
	newIDs  map[TraceID]int32
	verdict []int8
	scratch sync.Pool // *Batch, for summarizing Batch.Spans
	c       counters
	j       journal
	claims  claims

	emitMu  sync.Mutex // serializes building and consuming
	builder builder

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

type pending struct {
	id          TraceID
	sum         summary
	ids         map[SpanID]struct{} // built when the trace outgrows linear search
	first, last time.Time           // arrival of the first and latest span
	seqLo       uint64              // lowest and highest Batch.Seq of its spans (0: none)
	seqHi       uint64
	idlePrev    *pending
	idleNext    *pending
	agePrev     *pending
	ageNext     *pending
}

// NewAssembler returns an Assembler that sends observations to consumer
// (which may be nil to only count). Unless cfg.TickInterval is negative it
// starts a goroutine that completes traces; Close stops it.
func NewAssembler(cfg Config, consumer Consumer) (*Assembler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	a := &Assembler{
		cfg:      cfg,
		consumer: consumer,
		traces:   make(map[TraceID]*pending),
		recent:   newRecentSet(cfg.RecentTraces),
		newIDs:   make(map[TraceID]int32),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	a.idle.next = func(p *pending) **pending { return &p.idleNext }
	a.idle.prev = func(p *pending) **pending { return &p.idlePrev }
	a.age.next = func(p *pending) **pending { return &p.ageNext }
	a.age.prev = func(p *pending) **pending { return &p.agePrev }
	if cfg.TickInterval > 0 {
		go a.run()
	} else {
		close(a.done)
	}
	return a, nil
}

// Config returns the configuration in force, defaults applied.
func (a *Assembler) Config() Config { return a.cfg }

const (
	verdictAccept  int8 = -1
	verdictLate    int8 = -2
	verdictClaimed int8 = -3 // late: another replica claimed the trace
)

// Add offers a batch of spans (Spans, Summaries or both). Malformed
// spans (and b.Malformed, the converter's rejections) are counted by
// reason and reported in the result; spans of traces completed recently
// are counted late; the rest join their traces, of which the Assembler
// keeps only a summary (see SpanSummary): Add never retains b's slices,
// and b may be reused once Add returns.
//
// Errors: ErrFull when the batch's valid spans would exceed MaxSpans or
// MaxBytes or open more traces than MaxTraces allows — then nothing of
// the batch is accepted or counted, so a retry does not duplicate;
// ErrTooLarge when the batch alone exceeds those limits (never
// acceptable; counted); ErrClosed after Close.
func (a *Assembler) Add(b *Batch) (AddResult, error) {
	sb := b
	if len(b.Spans) > 0 {
		sb = a.summarize(b)
		defer a.putScratch(sb)
	}
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return AddResult{}, ErrClosed
	}
	res := AddResult{Rejected: b.Malformed, Detail: b.Detail}

	// Pass 1: validate, and count the capacity the batch needs.
	sums := sb.Summaries
	a.verdict = slices.Grow(a.verdict[:0], len(sums))[:len(sums)]
	clear(a.newIDs)
	valid := 0
	for i := range sums {
		s := &sums[i]
		if r, bad := a.check(s, now); bad {
			a.verdict[i] = int8(r)
			if res.Detail == "" {
				res.Detail = fmt.Sprintf("span %s of trace %s: %s", s.SpanID, s.TraceID, r)
			}
			continue
		}
		if _, ok := a.traces[s.TraceID]; !ok {
			if a.recent.has(s.TraceID) || a.j.counted(s.TraceID) {
				a.verdict[i] = verdictLate
				continue
			}
			if a.claims.excluded(s.TraceID, now) {
				a.verdict[i] = verdictClaimed
				continue
			}
			a.newIDs[s.TraceID]++
		}
		a.verdict[i] = verdictAccept
		valid++
	}
	need := a.need(valid, len(a.newIDs), len(sb.Flags)+len(sb.Metrics))
	if valid > a.cfg.MaxSpans || len(a.newIDs) > a.cfg.MaxTraces || need > a.cfg.MaxBytes {
		a.c.spansRejectedTooLarge += uint64(b.Len())
		return AddResult{}, ErrTooLarge
	}
	if a.spans+valid > a.cfg.MaxSpans || len(a.traces)+len(a.newIDs) > a.cfg.MaxTraces || a.bytes+need > a.cfg.MaxBytes {
		a.c.spansRejectedFull += uint64(b.Len())
		a.c.batchesRejectedFull++
		return AddResult{}, ErrFull
	}

	// Pass 2: join traces.
	for i := range sums {
		s := &sums[i]
		switch v := a.verdict[i]; v {
		case verdictLate, verdictClaimed:
			res.Late++
			if v == verdictClaimed {
				a.c.spansClaimed++
			}
			a.j.late(s.TraceID, b.Seq)
			continue
		case verdictAccept:
		default:
			res.Rejected[Reason(v)]++
			continue
		}
		p := a.traces[s.TraceID]
		if p == nil {
			p = a.newPending(s.TraceID, now, int(a.newIDs[s.TraceID]))
		}
		if len(p.sum.spans) >= a.cfg.MaxSpansPerTrace {
			res.Rejected[ReasonTraceTooLarge]++
			continue
		}
		if p.has(s.SpanID) {
			res.Rejected[ReasonDuplicateSpanID]++
			if res.Detail == "" {
				res.Detail = fmt.Sprintf("span %s of trace %s: %s", s.SpanID, s.TraceID, ReasonDuplicateSpanID)
			}
			continue
		}
		before := p.sum.bytes()
		p.add(s, sb.Flags[s.FlagLo:s.FlagHi], sb.Metrics[s.MetricLo:s.MetricHi], a.cfg.KeepMetric)
		a.bytes += p.sum.bytes() - before
		p.join(b.Seq)
		a.spans++
		res.Accepted++
		if p.last != now {
			p.last = now
			a.idle.moveToBack(p)
		}
	}

	a.countAdded(b.Len(), res, sb.Trimmed)
	return res, nil
}

// countAdded adds an added batch of spans spans, its result and what its
// summaries trimmed to the counters. Called with a.mu held.
func (a *Assembler) countAdded(spans int, res AddResult, trimmed Trimmed) {
	a.c.spansReceived += uint64(spans)
	a.c.spansAccepted += uint64(res.Accepted)
	a.c.spansLate += uint64(res.Late)
	for r, n := range res.Rejected {
		a.c.malformed[r] += uint64(n)
	}
	a.c.valuesTruncated += uint64(trimmed.ValuesTruncated)
	a.c.attrsDropped += uint64(trimmed.AttrsDropped)
	a.c.eventsDropped += uint64(trimmed.EventsDropped)
}

// need estimates the bytes a batch adds to the traces in flight: spans
// valid spans opening traces new traces, with records flag events and
// attributes. It errs high (a string per span, eight per new trace).
func (a *Assembler) need(spans, traces, records int) int {
	return spans*(spanRecBytes+strHeaderBytes) + traces*(traceBytes+8*strHeaderBytes) + records*flagRecBytes
}

// CheckRoom tells, before a batch of spans spans is decoded, whether Add
// would refuse it for lack of room: it returns ErrFull (counting the
// refusal as Add does) when the traces in flight have no room for that
// many more spans by MaxSpans or MaxBytes (counting their records, not
// what new traces add: a batch joining traces in flight may still fit
// when MaxTraces is reached); ErrClosed after Close; nil
// otherwise. With spans 0 it asks whether there is room at all. A nil
// result does not promise that Add will accept the batch.
func (a *Assembler) CheckRoom(spans int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.closed:
		return ErrClosed
	case a.spans+max(spans, 1) > a.cfg.MaxSpans || a.bytes+a.need(max(spans, 1), 0, 0) > a.cfg.MaxBytes:
		a.c.spansRejectedFull += uint64(spans)
		a.c.batchesRejectedFull++
		return ErrFull
	}
	return nil
}

// SpanLimits returns the limits of what the Assembler keeps of a span,
// for decoders filling Batch.Summaries.
func (a *Assembler) SpanLimits() SpanLimits { return a.cfg.SpanLimits() }

// summarize returns a scratch batch holding b's Summaries and the
// summaries of b's Spans under the Assembler's limits.
func (a *Assembler) summarize(b *Batch) *Batch {
	sb, _ := a.scratch.Get().(*Batch)
	if sb == nil {
		sb = new(Batch)
	}
	sb.Summaries = append(sb.Summaries, b.Summaries...)
	sb.Flags = append(sb.Flags, b.Flags...)
	sb.Metrics = append(sb.Metrics, b.Metrics...)
	sb.Trimmed = b.Trimmed
	lim := a.cfg.SpanLimits()
	for i := range b.Spans {
		sb.Summarize(&b.Spans[i], lim)
	}
	return sb
}

func (a *Assembler) putScratch(sb *Batch) {
	if cap(sb.Summaries) > 8192 {
		return
	}
	sb.Reset()
	a.scratch.Put(sb)
}

// check returns why s is malformed, if it is.
func (a *Assembler) check(s *SpanSummary, now time.Time) (Reason, bool) {
	switch {
	case s.TraceID.IsZero():
		return ReasonInvalidTraceID, true
	case s.SpanID.IsZero():
		return ReasonInvalidSpanID, true
	case s.Service == "":
		return ReasonMissingService, true
	case s.Start <= 0:
		return ReasonMissingStart, true
	case s.End < s.Start:
		return ReasonEndBeforeStart, true
	case s.Start-now.UnixNano() > int64(a.cfg.MaxClockSkew):
		return ReasonFutureStart, true
	case s.End-s.Start > int64(a.cfg.MaxSpanDuration):
		return ReasonTooLong, true
	}
	return 0, false
}

func (a *Assembler) newPending(id TraceID, now time.Time, spans int) *pending {
	var p *pending
	if n := len(a.free); n > 0 {
		p = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		p = new(pending)
	}
	p.id, p.first, p.last = id, now, now
	if spans > 0 {
		p.sum.spans = slices.Grow(p.sum.spans, spans)
	}
	a.bytes += p.sum.bytes()
	a.traces[id] = p
	a.idle.pushBack(p)
	a.age.pushBack(p)
	return p
}

func (p *pending) has(id SpanID) bool {
	if p.ids != nil {
		_, ok := p.ids[id]
		return ok
	}
	for i := range p.sum.spans {
		if p.sum.spans[i].id == id {
			return true
		}
	}
	return false
}

func (p *pending) add(s *SpanSummary, flags []FlagSummary, metrics []MetricSummary, keep func(string) bool) {
	p.sum.add(s, flags, metrics, keep)
	if p.ids != nil {
		p.ids[s.SpanID] = struct{}{}
	} else if len(p.sum.spans) > linearLimit {
		p.ids = make(map[SpanID]struct{}, 2*len(p.sum.spans))
		for i := range p.sum.spans {
			p.ids[p.sum.spans[i].id] = struct{}{}
		}
	}
}

// Expire completes the traces that are idle for Config.IdleTimeout or
// older than Config.MaxTraceAge by Config.Now, sends their observations
// to the consumer before returning, and returns how many it completed.
// The completion goroutine calls it every TickInterval.
func (a *Assembler) Expire() int {
	now := a.cfg.Now()
	a.mu.Lock()
	a.claims.expire(now)
	var out []*pending
	for p := a.idle.head; p != nil && now.Sub(p.last) >= a.cfg.IdleTimeout; p = a.idle.head {
		out = append(out, a.remove(p))
	}
	idle := len(out)
	for p := a.age.head; p != nil && now.Sub(p.first) >= a.cfg.MaxTraceAge; p = a.age.head {
		out = append(out, a.remove(p))
	}
	a.c.tracesTimedOut += uint64(len(out) - idle)
	a.mu.Unlock()
	a.emit(out)
	return len(out)
}

// Flush completes every trace in flight now, whatever its age, and sends
// the observations before returning; it returns how many it completed.
// For shutdown, tests and offline files.
func (a *Assembler) Flush() int {
	a.mu.Lock()
	out := make([]*pending, 0, len(a.traces))
	for p := a.age.head; p != nil; p = a.age.head {
		out = append(out, a.remove(p))
	}
	a.mu.Unlock()
	a.emit(out)
	return len(out)
}

// Close stops the completion goroutine and flushes the traces in flight.
// Add returns ErrClosed afterwards. Close is idempotent and returns nil.
func (a *Assembler) Close() error {
	a.stopOnce.Do(func() {
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		close(a.stop)
		<-a.done
		a.Flush()
	})
	return nil
}

func (a *Assembler) run() {
	defer close(a.done)
	t := time.NewTicker(a.cfg.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			a.Expire()
		}
	}
}

// remove takes p out of the traces in flight; a.mu is held.
func (a *Assembler) remove(p *pending) *pending {
	delete(a.traces, p.id)
	a.idle.remove(p)
	a.age.remove(p)
	a.spans -= len(p.sum.spans)
	a.bytes -= p.sum.bytes()
	a.recent.add(p.id)
	a.j.removed(p)
	return p
}

// emit builds and consumes the observations of completed traces.
func (a *Assembler) emit(done []*pending) {
	if len(done) == 0 {
		return
	}
	a.emitMu.Lock()
	var c counters
	for _, p := range done {
		o, st := a.builder.build(p.id, &p.sum)
		c.tracesCompleted++
		c.spansInCycles += uint64(st.SpansInCycles)
		c.orphanSpans += uint64(st.OrphanSpans)
		c.sameServiceCalls += uint64(st.SameServiceCalls)
		c.badFlagEvents += uint64(st.BadFlagEvents)
		if st.ManyUnits {
			c.tracesManyUnits++
		}
		if o != nil {
			if o.Unit == "" {
				c.tracesWithoutUnit++
			}
			if len(o.Conflicts) > 0 {
				c.tracesWithConflicts++
			}
			if a.consumer != nil {
				a.consumer.ConsumeObservation(o)
				c.observationsEmitted++
			}
		}
	}

	// emitMu is held until done are counted in the journal (Checkpoint).
	a.mu.Lock()
	a.c.merge(&c)
	for _, p := range done {
		a.j.consumed(p)
		p.sum.reset()
		*p = pending{sum: p.sum}
		if len(a.free) < 1024 {
			a.free = append(a.free, p)
		}
	}
	a.mu.Unlock()
	a.emitMu.Unlock()
}

// plist is an intrusive doubly linked list of pending traces.
type plist struct {
	head, tail *pending
	next, prev func(*pending) **pending
}

func (l *plist) pushBack(p *pending) {
	*l.prev(p), *l.next(p) = l.tail, nil
	if l.tail != nil {
		*l.next(l.tail) = p
	} else {
		l.head = p
	}
	l.tail = p
}

func (l *plist) remove(p *pending) {
	prev, next := *l.prev(p), *l.next(p)
	if prev != nil {
		*l.next(prev) = next
	} else {
		l.head = next
	}
	if next != nil {
		*l.prev(next) = prev
	} else {
		l.tail = prev
	}
	*l.prev(p), *l.next(p) = nil, nil
}

func (l *plist) moveToBack(p *pending) {
	if l.tail == p {
		return
	}
	l.remove(p)
	l.pushBack(p)
}

// recentSet remembers the last n completed trace ids. It grows as ids
// come, so a large n costs nothing until used.
type recentSet struct {
	n    int
	ring []TraceID
	next int
	set  map[TraceID]struct{}
}

func newRecentSet(n int) recentSet {
	return recentSet{n: n, set: make(map[TraceID]struct{})}
}

func (r *recentSet) has(id TraceID) bool {
	_, ok := r.set[id]
	return ok
}

func (r *recentSet) add(id TraceID) {
	if r.n == 0 {
		return
	}
	if len(r.ring) < r.n {
		r.ring = append(r.ring, id)
	} else {
		delete(r.set, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % len(r.ring)
	}
	r.set[id] = struct{}{}
}
