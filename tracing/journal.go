package tracing

// Journal positions: when batches come from a write-ahead log
// (Batch.Seq ≠ 0), the Assembler tracks which log records the traces in
// flight hold, so that the caller can tell which records are fully
// counted (Checkpoint) and, after a crash, replay the others without
// counting any trace twice (Resume).
//
// A trace in flight holds the records its spans came from, seq lo..hi.
// A completed trace is kept in done (by id) from its removal until the
// caller's low-water mark passes its hi: first as not yet counted (being
// built and consumed), then as counted. A span of a counted trace in done
// is late, as for a recently completed trace, and raises its hi.

// CountedTrace is a trace the consumer has counted and the highest log
// record that carried a span of it (one of its spans, or a late one).
// After a crash, the spans of such a trace in records up to Seq are not
// counted again (see Resume).
type CountedTrace struct {
	ID  TraceID
	Seq uint64
}

type doneTrace struct {
	lo, hi  uint64
	counted bool
}

// journal is the Assembler's journal state, guarded by Assembler.mu.
type journal struct {
	done map[TraceID]doneTrace
}

// join records that p takes a span of record seq.
func (p *pending) join(seq uint64) {
	if seq == 0 {
		return
	}
	if p.seqLo == 0 || seq < p.seqLo {
		p.seqLo = seq
	}
	p.seqHi = max(p.seqHi, seq)
}

// counted reports whether id is a counted trace still remembered.
func (j *journal) counted(id TraceID) bool {
	if len(j.done) == 0 {
		return false
	}
	d, ok := j.done[id]
	return ok && d.counted
}

// removed remembers p, completed, as not yet counted.
func (j *journal) removed(p *pending) {
	if p.seqHi == 0 {
		return
	}
	if j.done == nil {
		j.done = map[TraceID]doneTrace{}
	}
	d, ok := j.done[p.id]
	if ok {
		d.lo, d.hi, d.counted = min(d.lo, p.seqLo), max(d.hi, p.seqHi), false
	} else {
		d = doneTrace{lo: p.seqLo, hi: p.seqHi}
	}
	j.done[p.id] = d
}

// consumed marks p, removed earlier, as counted.
func (j *journal) consumed(p *pending) {
	if p.seqHi == 0 {
		return
	}
	if d, ok := j.done[p.id]; ok {
		d.counted = true
		j.done[p.id] = d
	}
}

// late records a late span of trace id in record seq.
func (j *journal) late(id TraceID, seq uint64) {
	if seq == 0 {
		return
	}
	if j.done == nil {
		j.done = map[TraceID]doneTrace{}
	}
	d, ok := j.done[id]
	if !ok {
		// Forgotten since: it was counted.
		d = doneTrace{lo: seq, counted: true}
	}
	d.hi = max(d.hi, seq)
	j.done[id] = d
}

// Checkpoint computes the low-water mark of the log records behind the
// Assembler's state and calls f with it while no observation is being
// built or consumed, so that what f saves of the consumers' state is
// exactly the traces it is told are counted.
//
// floor is the lowest record the caller has appended but not yet handed
// to Add (the log's next seq when none); read it before calling. low is
// the smallest of floor and every record held by a trace in flight or
// completed but not yet counted: every record below low is either
// counted in full or holds nothing. counted lists the counted traces
// that a record at or above low carries a span of: after a crash, replay
// the records from low and pass counted to Resume. Counted traces below
// low are forgotten; call Checkpoint with non-decreasing floors.
//
// f must not call Add or Flush.
func (a *Assembler) Checkpoint(floor uint64, f func(low uint64, counted []CountedTrace)) {
	a.emitMu.Lock()
	defer a.emitMu.Unlock()
	a.mu.Lock()
	low := floor
	for _, p := range a.traces {
		if p.seqLo != 0 {
			low = min(low, p.seqLo)
		}
	}
	for _, d := range a.j.done {
		if !d.counted {
			low = min(low, d.lo)
		}
	}
	var counted []CountedTrace
	for id, d := range a.j.done {
		switch {
		case !d.counted:
		case d.hi < low:
			delete(a.j.done, id)
		default:
			counted = append(counted, CountedTrace{ID: id, Seq: d.hi})
		}
	}
	a.mu.Unlock()
	f(low, counted)
}

// Resume takes the counted traces of the checkpoint a replay starts from:
// their spans are late from now on (until a Checkpoint's mark passes
// them), so replaying the records that carry them does not count them
// again. Call it before replaying.
func (a *Assembler) Resume(counted []CountedTrace) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range counted {
		a.j.late(c.ID, c.Seq)
	}
}
