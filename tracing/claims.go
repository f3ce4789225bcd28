package tracing

import "time"

// Claims: when a replica that shares its analysis state with others
// restarts and replays its write-ahead log, the log may hold requests it
// never acknowledged, which the exporter has re-sent to another replica
// meanwhile. Before replaying, the restarting replica claims the trace
// ids of its log's tail; every other replica answers with Claim, which
// tells which of those traces it holds (so the claimant leaves them to
// it) and makes it drop, from then on, spans of the others (so a re-sent
// copy arriving later is not counted a second time).

// claims are the trace ids an Assembler excludes because another replica
// claimed them, guarded by Assembler.mu. Every exclusion lasts as long,
// so order (each exclusion as given, a renewed id again) is expiry order.
type claims struct {
	until map[TraceID]time.Time
	order []exclusion
}

type exclusion struct {
	id    TraceID
	until time.Time
}

// excluded reports whether id is claimed by another replica at now.
func (c *claims) excluded(id TraceID, now time.Time) bool {
	if len(c.until) == 0 {
		return false
	}
	u, ok := c.until[id]
	return ok && now.Before(u)
}

// add excludes id until u (renewing an exclusion of id).
func (c *claims) add(id TraceID, u time.Time) {
	if c.until == nil {
		c.until = map[TraceID]time.Time{}
	}
	c.order = append(c.order, exclusion{id, u})
	c.until[id] = u
}

// expire forgets the exclusions ended at now.
func (c *claims) expire(now time.Time) {
	n := 0
	for ; n < len(c.order) && !now.Before(c.order[n].until); n++ {
		if e := c.order[n]; c.until[e.id].Equal(e.until) { // not renewed
			delete(c.until, e.id)
		}
	}
	if n > 0 {
		c.order = append(c.order[:0], c.order[n:]...)
	}
}

// Claim answers another replica's claim on ids. It returns the ids this
// Assembler holds — in flight, completed recently (Config.RecentTraces),
// or counted and still in its journal — which the claimant must not
// count; every other id is excluded for exclusion: spans of it offered to
// Add meanwhile are late (AssemblyStats.SpansClaimed), so a copy of a
// request the claimant counts is not counted here too. An id excluded
// already (claimed before: the claimant restarted again) is not held, and
// its exclusion is renewed: the copies dropped meanwhile are in the
// journal as late spans, not counts. The check and the exclusion are
// atomic with respect to Add.
func (a *Assembler) Claim(ids []TraceID, exclusion time.Duration) (held []TraceID) {
	now := a.cfg.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.claims.expire(now)
	for _, id := range ids {
		if a.holds(id, now) {
			held = append(held, id)
			continue
		}
		a.claims.add(id, now.Add(exclusion))
	}
	return held
}

// holds reports whether a holds trace id at now (see Claim); a.mu is
// held.
func (a *Assembler) holds(id TraceID, now time.Time) bool {
	if a.claims.excluded(id, now) {
		return false // every span of it since was dropped
	}
	_, ok := a.traces[id]
	return ok || a.recent.has(id) || a.j.counted(id)
}
