package subset

import (
	"fmt"
	"slices"
)

// MergeWindows returns one window as a single node that counted every
// observation would have it, from the partial states of the same window
// counted by several replicas (each receiving whole traces for its share
// of trace ids): parts are the replicas' snapshots (same viewpoint, seq,
// measurement and members; their Cells are ignored) and units are every
// replica's units of the window. A unit whose requests reached several
// replicas appears once per replica; its partial totals are added (sum,
// requests, non-zero), which is exact because a unit's aggregate depends
// only on those totals. The cells are computed from the merged units and
// the quality counters are the parts' sums; Start, Opened and End are the
// first part's. A unit counted in different cells by two replicas (a
// single node would have excluded the later requests as CellChanged) keeps
// the cell of the first part that listed it.
func MergeWindows(parts []WindowCells, units []UnitState) (WindowCells, error) {
	if len(parts) == 0 {
		return WindowCells{}, fmt.Errorf("merge windows: no parts")
	}
	p0 := parts[0]
	sig := signature(p0.key(), p0.Members)
	w := newWindow(p0.Viewpoint, p0.key(), slices.Clone(p0.Members))
	w.seq, w.start, w.opened, w.end = p0.Seq, p0.Start, p0.Opened, p0.End
	w.notModelled = p0.NotModelled
	for _, p := range parts {
		if p.Viewpoint != p0.Viewpoint || p.Seq != p0.Seq || signature(p.key(), p.Members) != sig {
			return WindowCells{}, fmt.Errorf("merge windows: part %s#%d is not window %s#%d with the same members", p.Viewpoint, p.Seq, p0.Viewpoint, p0.Seq)
		}
		w.addCounters(p.Quality)
	}
	w.mu.Lock()
	for _, u := range units {
		w.loadUnit(u)
	}
	w.mu.Unlock()
	return w.snapshot(), nil
}
