package subset

import (
	"maps"
	"slices"
	"time"
)

// WindowPlan is what one Windows (a leader's, driven by its Subsetter)
// says of its windows so that other Windows (followers') open the same
// ones: each running viewpoint's active window, and the highest Seq given
// per viewpoint. It round-trips through encoding/json.
type WindowPlan struct {
	// Active are the active windows, sorted by viewpoint, without counts:
	// what a follower needs to open the same window (viewpoint, Seq, Start,
	// Opened, measurement, members, not-modelled tests; no Cells, zero
	// Quality).
	Active []WindowCells `json:"active"`
	// LastSeq is, per viewpoint, the highest Seq the leader has given a
	// window (also of viewpoints not running now): a follower that becomes
	// leader numbers its next window after it.
	LastSeq map[string]int `json:"last_seq,omitempty"`
}

// Plan returns the active windows and the highest Seq given per viewpoint.
func (ws *Windows) Plan() WindowPlan {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	p := WindowPlan{Active: make([]WindowCells, 0, len(ws.active)), LastSeq: maps.Clone(ws.lastSeq)}
	for _, vp := range slices.Sorted(maps.Keys(ws.active)) {
		p.Active = append(p.Active, ws.active[vp].identity())
	}
	return p
}

// Adopt makes the active windows those of plan, at now: per planned
// viewpoint, the active window is kept when it has the planned Seq and
// membership (taking the plan's reasons and not-modelled tests); else it
// is closed, and a closed window of that Seq and membership still
// counting is reopened, or a new window opens with exactly the planned
// Seq, Start, Opened and members. A window of the planned Seq that is
// final (its units gone) or has other members is replaced: dropped with
// its counts (only a leader deposed before publishing its last window can
// hold one of other members). The active window of a viewpoint not
// in plan is closed. Adopting only the latest of several plans ends in
// the same active windows as adopting each in turn. Windows opened by
// Adopt keep their Seq through Restore (which resumes only the stored
// window of that Seq); a later SetViews keeps them while the views'
// memberships are theirs and numbers new windows after plan.LastSeq.
func (ws *Windows) Adopt(now time.Time, plan WindowPlan) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	active := make(map[string]*window, len(plan.Active))
	for _, p := range plan.Active {
		active[p.Viewpoint] = ws.adopt(p)
	}
	for vp, w := range ws.active {
		if active[vp] != w {
			w.close(now)
		}
	}
	ws.active = active
	for vp, seq := range plan.LastSeq {
		ws.lastSeq[vp] = max(ws.lastSeq[vp], seq)
	}
	ws.prune(now)
	ws.publish()
}

// adopt returns the window of p (see Adopt). Called with ws.mu held.
func (ws *Windows) adopt(p WindowCells) *window {
	sig := signature(p.key(), p.Members)
	list := ws.windows[p.Viewpoint]
	i := slices.IndexFunc(list, func(w *window) bool { return w.seq == p.Seq })
	if i >= 0 && list[i].sig == sig && list[i].reopen() {
		list[i].takeReasons(p.Members, p.NotModelled)
		return list[i]
	}
	members := make([]WindowMember, len(p.Members))
	for j, m := range p.Members {
		members[j] = m.clone()
	}
	nw := newWindow(p.Viewpoint, p.key(), members)
	nw.seq, nw.start, nw.opened, nw.notModelled, nw.adopted = p.Seq, p.Start, p.Opened, p.NotModelled, true
	if i >= 0 {
		// Another membership (or final): replaced under its Seq.
		list = slices.Delete(list, i, i+1)
	}
	j, _ := slices.BinarySearchFunc(list, p.Seq, func(w *window, seq int) int { return w.seq - seq })
	ws.windows[p.Viewpoint] = slices.Insert(list, j, nw)
	ws.lastSeq[p.Viewpoint] = max(ws.lastSeq[p.Viewpoint], p.Seq)
	return nw
}
