package report

import (
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/subset"
)

// unitWindow is the 2×2 window of vp and mem with units[i][j] units and
// requests[i][j] counted requests in cell (i, j), each unit's value 10
// (SD 1 over units), as the per-unit counter leaves them.
func unitWindow(units, requests [2][2]int64) subset.WindowCells {
	w := window(func(i, j int) analysis.CellStats { return exact(units[i][j], 10, 1) })
	for k, c := range w.Cells {
		w.Cells[k].Requests = requests[c.Variants[0]][c.Variants[1]]
	}
	return w
}

// TestBuildSRMCountsUnits: the sample-ratio flag reads distinct units per
// variant; request counts are shown beside them and never flag.
func TestBuildSRMCountsUnits(t *testing.T) {
	tests := []struct {
		name     string
		units    [2][2]int64
		requests [2][2]int64
		flagged  bool
		obs      []int64 // vp's units per variant
		reqs     []int64 // vp's requests per variant
	}{
		{
			// vp's treatment units make twice the requests (an effect on
			// engagement, or heavy users): the split of units is exact.
			name:     "requests 1:2, units 1:1",
			units:    [2][2]int64{{500, 500}, {500, 500}},
			requests: [2][2]int64{{2000, 2000}, {4000, 4000}},
			flagged:  false,
			obs:      []int64{1000, 1000}, reqs: []int64{4000, 8000},
		},
		{
			// 1200 vs 800 units (χ² = 80) making the same requests.
			name:     "requests 1:1, units 3:2",
			units:    [2][2]int64{{600, 600}, {400, 400}},
			requests: [2][2]int64{{3000, 3000}, {3000, 3000}},
			flagged:  true,
			obs:      []int64{1200, 800}, reqs: []int64{6000, 6000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := build(t, unitWindow(tt.units, tt.requests))
			vp := r.SRM[0]
			if !slices.Equal(vp.Observed, tt.obs) || !slices.Equal(vp.Requests, tt.reqs) {
				t.Errorf("vp observed %v requests %v, want units %v requests %v", vp.Observed, vp.Requests, tt.obs, tt.reqs)
			}
			// The check is Pearson's on the units, computed here.
			var chi2 float64
			for _, o := range tt.obs {
				e := float64(tt.obs[0]+tt.obs[1]) / 2
				chi2 += (float64(o) - e) * (float64(o) - e) / e
			}
			if !within(vp.Result.ChiSquare, chi2, 1e-12) || vp.Result.Flagged != tt.flagged {
				t.Errorf("vp χ² %v flagged %v, want %v, %v", vp.Result.ChiSquare, vp.Result.Flagged, chi2, tt.flagged)
			}
			if r.SRMFlagged != tt.flagged {
				t.Errorf("report flagged %v, want %v", r.SRMFlagged, tt.flagged)
			}
		})
	}
}

// TestBuildJointSRM: the joint check tests every cell's units against the
// product of the members' shares, computed here from the weights.
func TestBuildJointSRM(t *testing.T) {
	mem := *experiments["mem"]
	mem.Variants = []assign.Variant{{Name: "control", Weight: 3}, {Name: "alt", Weight: 1}}
	exps := lookupIn(map[string]*assign.Experiment{"vp": experiments["vp"], "mem": &mem})
	share := [2][2]float64{{0.5 * 0.75, 0.5 * 0.25}, {0.5 * 0.75, 0.5 * 0.25}}
	tests := []struct {
		name    string
		units   [2][2]int64
		members bool // a member's own check flags
		joint   bool
	}{
		{"independent 1:1 × 3:1 split", [2][2]int64{{750, 250}, {750, 250}}, false, false},
		// Both marginals are exact (1000/1000 and 1500/500), but mem's alt
		// went to vp's treatment twice as often as to its control: the
		// splits are not independent.
		{"right marginals, dependent splits", [2][2]int64{{833, 167}, {667, 333}}, false, true},
		{"a marginal off", [2][2]int64{{900, 100}, {900, 100}}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := unitWindow(tt.units, [2][2]int64{{7, 7}, {7, 7}})
			r := Build(w, exps, Options{Now: now})
			j := r.JointSRM
			if j == nil || j.Note != "" || len(j.Cells) != 4 {
				t.Fatalf("joint check %+v, want one over 4 cells", j)
			}
			var total int64
			for _, row := range tt.units {
				total += row[0] + row[1]
			}
			var chi2 float64
			for k, c := range j.Cells {
				vi := slices.Index(w.Members[0].Variants, c.Variants[0])
				mi := slices.Index(w.Members[1].Variants, c.Variants[1])
				if c.Units != tt.units[vi][mi] || c.Requests != 7 || !within(c.Share, share[vi][mi], 1e-12) {
					t.Errorf("cell %v: units %d requests %d share %v, want %d, 7, %v", c.Variants, c.Units, c.Requests, c.Share, tt.units[vi][mi], share[vi][mi])
				}
				e := float64(total) * share[vi][mi]
				if !within(j.Result.Expected[k], e, 1e-12) {
					t.Errorf("cell %v expected %v, want %v", c.Variants, j.Result.Expected[k], e)
				}
				chi2 += (float64(c.Units) - e) * (float64(c.Units) - e) / e
			}
			p := distuv.ChiSquared{K: 3}.Survival(chi2)
			if j.Result.DF != 3 || !within(j.Result.ChiSquare, chi2, 1e-12) || !within(j.Result.P, p, 1e-9) || j.Result.Flagged != tt.joint {
				t.Errorf("joint χ² %v df %d p %v flagged %v, want %v, 3, %v, %v", j.Result.ChiSquare, j.Result.DF, j.Result.P, j.Result.Flagged, chi2, p, tt.joint)
			}
			members := r.SRM[0].Result.Flagged || r.SRM[1].Result.Flagged
			if members != tt.members || r.SRMFlagged != (tt.members || tt.joint) {
				t.Errorf("members flagged %v (want %v), report flagged %v", members, tt.members, r.SRMFlagged)
			}
		})
	}
}

// TestBuildJointSRMSkipped: no joint check for the viewpoint alone, and a
// note instead of a result when a member's weights are not known.
func TestBuildJointSRMSkipped(t *testing.T) {
	w := unitWindow([2][2]int64{{10, 10}, {10, 10}}, [2][2]int64{{10, 10}, {10, 10}})
	alone := w
	alone.Members = w.Members[:1]
	alone.Cells = []subset.Cell{{Variants: []int{0}, Stats: exact(10, 1, 1)}, {Variants: []int{1}, Stats: exact(10, 2, 1)}}
	if r := build(t, alone); r.JointSRM != nil {
		t.Errorf("viewpoint alone: joint check %+v, want none", r.JointSRM)
	}
	r := Build(w, lookupIn(map[string]*assign.Experiment{"vp": experiments["vp"]}), Options{Now: now})
	if j := r.JointSRM; j == nil || j.Note == "" || j.Result.Flagged {
		t.Errorf("member deleted: joint check %+v, want skipped with a note", j)
	}
}

// TestBuildProgressCountsUnits: the power plan's per-cell n and the
// COMPLETE rule count units, however many requests they made.
func TestBuildProgressCountsUnits(t *testing.T) {
	needed := neededPerCell(t, 1, 4, experiments["vp"].Plan, 10)
	// Units of SD 10 (not unitWindow's 1), so the plan's SD and the
	// observed one agree.
	w := func(units, requests int64) subset.WindowCells {
		w := window(func(int, int) analysis.CellStats { return exact(units, 100, 10) })
		for k := range w.Cells {
			w.Cells[k].Requests = requests
		}
		return w
	}
	short := build(t, w(needed-1, 10*needed))
	if short.Status != Collecting || short.Progress.MinCellN != needed-1 || short.Progress.CellsReady != 0 {
		t.Errorf("%d units (%d requests) per cell of %d needed: %v %+v, want COLLECTING at min n %d", needed-1, 10*needed, needed, short.Status, short.Progress, needed-1)
	}
	done := build(t, w(needed, needed))
	if done.Status != Complete || done.Progress.NeededPerCell != needed || math.Abs(done.Progress.Fraction-1) > 1e-12 {
		t.Errorf("%d units per cell: %v %+v, want COMPLETE", needed, done.Status, done.Progress)
	}
}

// TestBuildAggregate: the report carries the window's aggregate.
func TestBuildAggregate(t *testing.T) {
	for _, a := range []assign.Aggregate{assign.AggregateMean, assign.AggregateSum, assign.AggregateAny, assign.AggregateCount} {
		w := unitWindow([2][2]int64{{10, 10}, {10, 10}}, [2][2]int64{{20, 20}, {20, 20}})
		w.Aggregate = a
		if r := build(t, w); r.Aggregate != a {
			t.Errorf("report aggregate %v, want %v", r.Aggregate, a)
		}
	}
}

// TestBuildSRMFamilyThreshold: the checks of one report share the flag's
// false-alarm budget. A 2×2 window has three checks (two members, the
// joint one), each at 0.001/3: vp's 1077/923 split (χ² = 11.86, p ≈
// 0.00057) would flag alone at 0.001, and does not here.
func TestBuildSRMFamilyThreshold(t *testing.T) {
	r := build(t, unitWindow([2][2]int64{{538, 539}, {462, 461}}, [2][2]int64{{538, 539}, {462, 461}}))
	vp := r.SRM[0].Result
	p := distuv.ChiSquared{K: 1}.Survival(4 * 77 * 77 / 2000.0)
	if !within(vp.P, p, 1e-9) || p < analysis.DefaultSRMThreshold/3 || p > analysis.DefaultSRMThreshold {
		t.Fatalf("vp p = %v (want %v, between 0.001/3 and 0.001)", vp.P, p)
	}
	for _, chk := range append(r.SRM, SRMCheck{Result: r.JointSRM.Result}) {
		if !within(chk.Result.Threshold, analysis.DefaultSRMThreshold/3, 1e-15) {
			t.Errorf("%s threshold %v, want 0.001/3", chk.Test, chk.Result.Threshold)
		}
	}
	if vp.Flagged || r.SRMFlagged {
		t.Errorf("flagged: vp %v, report %v; want neither", vp.Flagged, r.SRMFlagged)
	}
	if got := analysis.SRMFamilyThreshold(1); got != analysis.DefaultSRMThreshold {
		t.Errorf("one check's threshold %v", got)
	}
}
