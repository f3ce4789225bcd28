package tracing

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"
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
	newIDs  map[TraceID]struct{}
	verdict []int8
	c       counters
	j       journal

	emitMu  sync.Mutex // serializes building and consuming
	builder builder

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

type pending struct {
	id          TraceID
	spans       []Span
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
		newIDs:   make(map[TraceID]struct{}),
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
	verdictAccept int8 = -1
	verdictLate   int8 = -2
)

// Add offers a batch of spans. Malformed spans (and b.Malformed, the
// converter's rejections) are counted by reason and reported in the
// result; spans of traces completed recently are counted late; the rest
// join their traces. Add takes ownership of the spans' Attrs and Events
// slices (it may truncate values in place); b itself may be reused once
// Add returns.
//
// Errors: ErrFull when the batch's valid spans would exceed MaxSpans or
// open more traces than MaxTraces allows — then nothing of the batch is
// accepted or counted, so a retry does not duplicate; ErrTooLarge when the
// batch alone exceeds those limits (never acceptable; counted); ErrClosed
// after Close.
func (a *Assembler) Add(b *Batch) (AddResult, error) {
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return AddResult{}, ErrClosed
	}
	res := AddResult{Rejected: b.Malformed, Detail: b.Detail}

	// Pass 1: validate, and count the capacity the batch needs.
	a.verdict = slices.Grow(a.verdict[:0], len(b.Spans))[:len(b.Spans)]
	clear(a.newIDs)
	valid := 0
	var lastNew TraceID
	for i := range b.Spans {
		s := &b.Spans[i]
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
			if s.TraceID != lastNew {
				a.newIDs[s.TraceID] = struct{}{}
				lastNew = s.TraceID
			}
		}
		a.verdict[i] = verdictAccept
		valid++
	}
	if valid > a.cfg.MaxSpans || len(a.newIDs) > a.cfg.MaxTraces {
		a.c.spansRejectedTooLarge += uint64(b.Len())
		return AddResult{}, ErrTooLarge
	}
	if a.spans+valid > a.cfg.MaxSpans || len(a.traces)+len(a.newIDs) > a.cfg.MaxTraces {
		a.c.spansRejectedFull += uint64(b.Len())
		a.c.batchesRejectedFull++
		return AddResult{}, ErrFull
	}

	// Pass 2: join traces.
	for i := range b.Spans {
		s := &b.Spans[i]
		switch v := a.verdict[i]; v {
		case verdictLate:
			res.Late++
			a.j.late(s.TraceID, b.Seq)
			continue
		case verdictAccept:
		default:
			res.Rejected[Reason(v)]++
			continue
		}
		p := a.traces[s.TraceID]
		if p == nil {
			p = a.newPending(s.TraceID, now)
		}
		if len(p.spans) >= a.cfg.MaxSpansPerTrace {
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
		a.sanitize(s)
		p.add(s)
		p.join(b.Seq)
		a.spans++
		res.Accepted++
		if p.last != now {
			p.last = now
			a.idle.moveToBack(p)
		}
	}

	a.c.spansReceived += uint64(b.Len())
	a.c.spansAccepted += uint64(res.Accepted)
	a.c.spansLate += uint64(res.Late)
	for r, n := range res.Rejected {
		a.c.malformed[r] += uint64(n)
	}
	return res, nil
}

// check returns why s is malformed, if it is.
func (a *Assembler) check(s *Span, now time.Time) (Reason, bool) {
	switch {
	case s.TraceID.IsZero():
		return ReasonInvalidTraceID, true
	case s.SpanID.IsZero():
		return ReasonInvalidSpanID, true
	case s.Service == "":
		return ReasonMissingService, true
	case s.Start.IsZero() || s.Start.UnixNano() <= 0:
		return ReasonMissingStart, true
	case s.End.Before(s.Start):
		return ReasonEndBeforeStart, true
	case s.Start.Sub(now) > a.cfg.MaxClockSkew:
		return ReasonFutureStart, true
	case s.End.Sub(s.Start) > a.cfg.MaxSpanDuration:
		return ReasonTooLong, true
	}
	return 0, false
}

// sanitize truncates over-long values and drops attributes and events over
// the limits, counting both.
func (a *Assembler) sanitize(s *Span) {
	max := a.cfg.MaxValueLen
	s.Service = a.truncate(s.Service, max)
	s.Name = a.truncate(s.Name, max)
	if len(s.Attrs) > a.cfg.MaxAttrsPerSpan {
		a.c.attrsDropped += uint64(len(s.Attrs) - a.cfg.MaxAttrsPerSpan)
		s.Attrs = s.Attrs[:a.cfg.MaxAttrsPerSpan]
	}
	for i := range s.Attrs {
		s.Attrs[i].Str = a.truncate(s.Attrs[i].Str, max)
	}
	if len(s.Events) > a.cfg.MaxEventsPerSpan {
		a.c.eventsDropped += uint64(len(s.Events) - a.cfg.MaxEventsPerSpan)
		s.Events = s.Events[:a.cfg.MaxEventsPerSpan]
	}
	for e := range s.Events {
		ev := &s.Events[e]
		ev.Name = a.truncate(ev.Name, max)
		if len(ev.Attrs) > a.cfg.MaxAttrsPerSpan {
			a.c.attrsDropped += uint64(len(ev.Attrs) - a.cfg.MaxAttrsPerSpan)
			ev.Attrs = ev.Attrs[:a.cfg.MaxAttrsPerSpan]
		}
		for i := range ev.Attrs {
			ev.Attrs[i].Str = a.truncate(ev.Attrs[i].Str, max)
		}
	}
}

// truncate cuts s to at most max bytes on a rune boundary, copying so that
// the long original can be freed.
func (a *Assembler) truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	a.c.valuesTruncated++
	cut := max
	for cut > 0 && cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return string([]byte(s[:cut]))
}

func (a *Assembler) newPending(id TraceID, now time.Time) *pending {
	var p *pending
	if n := len(a.free); n > 0 {
		p = a.free[n-1]
		a.free = a.free[:n-1]
	} else {
		p = new(pending)
	}
	p.id, p.first, p.last = id, now, now
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
	for i := range p.spans {
		if p.spans[i].SpanID == id {
			return true
		}
	}
	return false
}

func (p *pending) add(s *Span) {
	p.spans = append(p.spans, *s)
	if p.ids != nil {
		p.ids[s.SpanID] = struct{}{}
	} else if len(p.spans) > linearLimit {
		p.ids = make(map[SpanID]struct{}, 2*len(p.spans))
		for i := range p.spans {
			p.ids[p.spans[i].SpanID] = struct{}{}
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
	a.spans -= len(p.spans)
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
		o, st := a.builder.build(p.spans)
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
		clear(p.spans)
		if cap(p.spans) > 1024 {
			p.spans = nil
		}
		*p = pending{spans: p.spans[:0]}
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
