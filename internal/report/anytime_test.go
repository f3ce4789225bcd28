package report

import (
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/subset"
)

// TestBuildAnytime: the report carries the anytime-valid results of its
// table with the mixture tuned to the plan's horizon (from the plan's SD,
// not the observed one), and a large effect read before the horizon makes
// it DECIDED while an A/A window stays COLLECTING.
func TestBuildAnytime(t *testing.T) {
	plan := experiments["vp"].Plan
	horizon := neededPerCell(t, 1, 4, plan, plan.SD)
	n := int(horizon / 2)
	for _, tc := range []struct {
		name   string
		m      truth
		status Status
	}{
		{"large effect", truth{Mu: 100, A: 40, SD: 10}, Decided},
		{"A/A", truth{Mu: 100, SD: 10}, Collecting},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Cells with SD 20 (not the plan's 10): the mixture must not move.
			m := tc.m
			m.SD = 20
			r := build(t, simulate(rand.New(rand.NewPCG(3, 4)), m, balanced(n)))
			if r.Anytime == nil {
				t.Fatalf("no anytime-valid results; notes %q", r.Notes)
			}
			want, err := analysis.AnytimeValid(r.Table, analysis.AnytimeOptions{Alpha: 0.05, Phi: analysis.MixturePhi(0.05, float64(horizon))})
			if err != nil {
				t.Fatal(err)
			}
			if r.Anytime.Phi != want.Phi || r.Anytime.Term("vp").LogE != want.Term("vp").LogE || r.Anytime.Method != analysis.AnytimeT {
				t.Errorf("anytime phi %v logE %v method %q, want phi %v logE %v", r.Anytime.Phi, r.Anytime.Term("vp").LogE, r.Anytime.Method,
					want.Phi, want.Term("vp").LogE)
			}
			if r.Status != tc.status {
				t.Fatalf("status %v, want %v; decision %+v", r.Status, tc.status, r.Decision)
			}
			if len(r.Decision.Terms) != 1 || r.Decision.Terms[0].Term != "vp" {
				t.Errorf("decision terms %+v, want vp only", r.Decision.Terms)
			}
			line := r.StatusLine()
			if !strings.HasPrefix(line, tc.status.String()) || !strings.Contains(line, "valid only at") {
				t.Errorf("status line %q", line)
			}
		})
	}
}

// TestBuildAnytimeBinaryIsRobust: an any (binary) metric gets the robust
// z version scaled by the plan's SD; a plan without SD gets none, with a
// note.
func TestBuildAnytimeBinaryIsRobust(t *testing.T) {
	w := window(func(i, j int) analysis.CellStats { return exact(40, 0.3, 0.46) })
	w.Aggregate = assign.AggregateAny
	r := build(t, w)
	if r.Anytime == nil || r.Anytime.Method != analysis.AnytimeZ {
		t.Fatalf("anytime %+v, want the z version; notes %q", r.Anytime, r.Notes)
	}
	vp := *experiments["vp"]
	vp.Plan.SD = 0
	r = Build(w, lookupIn(map[string]*assign.Experiment{"vp": &vp, "mem": experiments["mem"]}), Options{Now: now})
	if r.Anytime != nil || !strings.Contains(strings.Join(r.Notes, "\n"), "plan.sd") || r.Status == Decided {
		t.Errorf("anytime %v, status %v, notes %q; want none and a note naming plan.sd", r.Anytime != nil, r.Status, r.Notes)
	}
}

// TestBuildPlannedInteractions: plan.interactions powers the interaction
// too (SampleSizeTerm at half the difference of differences, the F test's
// scale for a 2×2 term), progress counts toward the larger need, and a
// named test outside the subset is a note, not an error.
func TestBuildPlannedInteractions(t *testing.T) {
	vp := *experiments["vp"]
	vp.Plan.Interactions = []assign.PlannedInteraction{{With: "mem", MDE: 6}, {With: "elsewhere", MDE: 1}}
	exps := lookupIn(map[string]*assign.Experiment{"vp": &vp, "mem": experiments["mem"]})
	main := neededPerCell(t, 1, 4, vp.Plan, 10)
	inter := neededPerCell(t, 1, 4, assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 3}, 10)
	if inter <= main {
		t.Fatalf("interaction needs %d ≤ main %d: test assumptions broken", inter, main)
	}
	w := window(func(i, j int) analysis.CellStats { return exact(main, 100, 10) })
	r := Build(w, exps, Options{Now: now})
	p := r.Progress
	if len(p.Needs) != 2 || p.Needs[0].Name != "vp" || p.Needs[0].NeededPerCell != main ||
		p.Needs[1].Name != "vp:mem" || p.Needs[1].NeededPerCell != inter || p.Needs[1].MDE != 6 {
		t.Fatalf("needs %+v, want vp %d and vp:mem %d", p.Needs, main, inter)
	}
	if p.NeededPerCell != inter || r.Status == Complete || p.CellsReady != 0 {
		t.Errorf("progress %+v status %v: want the interaction's %d per cell, not complete at the main effect's", p, r.Status, inter)
	}
	notes := strings.Join(r.Notes, "\n")
	if !strings.Contains(notes, `plan.interactions[1]: test "elsewhere" is not in this subset`) {
		t.Errorf("notes %q: want a warning about elsewhere", notes)
	}
	if len(r.Decision.Terms) != 2 || r.Decision.Terms[1].Term != "vp:mem" {
		t.Errorf("decision %+v: want vp and vp:mem", r.Decision)
	}
	// At the interaction's need, COMPLETE.
	r = Build(window(func(i, j int) analysis.CellStats { return exact(inter, 100, 10) }), exps, Options{Now: now})
	if r.Status != Complete {
		t.Errorf("status %v at %d per cell, want COMPLETE", r.Status, inter)
	}
}

// TestDecide: the rule on hand-made results.
func TestDecide(t *testing.T) {
	cs := func(lo, hi float64) analysis.AnytimeEstimate {
		return analysis.AnytimeEstimate{Factor: "vp", Variant: "treat", Factors: []int{0}, CS: analysis.Interval{Lo: lo, Hi: hi}, Bounded: true}
	}
	av := func(pMain, pInter float64, eff analysis.AnytimeEstimate, inter *analysis.AnytimeEstimate) *analysis.AnytimeResults {
		r := &analysis.AnytimeResults{Alpha: 0.05,
			Terms:   []analysis.AnytimeTerm{{Name: "vp", P: pMain, Tested: true}, {Name: "mem", P: 1, Tested: true}, {Name: "vp:mem", P: pInter, Tested: true}},
			Effects: []analysis.AnytimeEstimate{eff, {Factor: "mem", Variant: "alt", Factors: []int{1}, CS: analysis.Interval{Lo: -100, Hi: 100}, Bounded: true}}}
		if inter != nil {
			r.Interactions = []analysis.AnytimeEstimate{*inter}
		}
		return r
	}
	interCS := analysis.AnytimeEstimate{Term: "vp:mem", Factors: []int{0, 1}, CS: analysis.Interval{Lo: -1, Hi: 2}, Bounded: true}
	terms := []PlannedTerm{{Name: "vp", Factors: []int{0}, MDE: 5}, {Name: "vp:mem", Factors: []int{0, 1}, MDE: 3}}
	for _, tc := range []struct {
		name     string
		av       *analysis.AnytimeResults
		verdicts [2]string
	}{
		{"both significant", av(0.01, 0.04, cs(1, 9), &interCS), [2]string{Significant, Significant}},
		{"main futile, interaction futile", av(0.5, 0.5, cs(-4.9, 4.9), &interCS), [2]string{Futile, Futile}},
		{"main open: sequence reaches past the MDE", av(0.5, 0.01, cs(-2, 5.1), &interCS), [2]string{Open, Significant}},
		{"unbounded is open", av(0.5, 0.5, analysis.AnytimeEstimate{Factors: []int{0}}, &interCS), [2]string{Open, Futile}},
		{"no contrast: only significance decides", av(0.01, 0.5, cs(1, 9), nil), [2]string{Significant, Open}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.av, terms)
			if len(d.Terms) != 2 || d.Terms[0].Verdict != tc.verdicts[0] || d.Terms[1].Verdict != tc.verdicts[1] {
				t.Fatalf("decision %+v, want verdicts %v", d, tc.verdicts)
			}
			if want := tc.verdicts[0] != Open && tc.verdicts[1] != Open; d.Decided != want {
				t.Errorf("decided %v, want %v", d.Decided, want)
			}
		})
	}
}

// TestHistory: one look per change of units, one window per viewpoint,
// at most max looks thinned to every other, the first kept.
func TestHistory(t *testing.T) {
	h := newHistory(8)
	rep := func(seq int, units int64) *Report {
		r := build(t, window(func(i, j int) analysis.CellStats { return exact(units, 100, 10) }))
		r.Window.Seq = seq
		r.Generated = now.Add(time.Duration(units) * time.Second)
		return r
	}
	for u := int64(2); u <= 11; u++ {
		h.Record(rep(1, u))
		h.Record(rep(1, u)) // same units: no new look
	}
	got := h.Looks("vp", 1)
	var units []int64
	for _, l := range got {
		units = append(units, l.Units/4)
	}
	// 8 looks (2..9), thinned to 2,4,6,8, then 10 and 11.
	if want := []int64{2, 4, 6, 8, 10, 11}; !slices.Equal(units, want) {
		t.Fatalf("looks at %v units per cell, want %v", units, want)
	}
	if l := got[len(got)-1]; len(l.Intervals) != 3 || l.Intervals[0].Name != "vp=treat" || l.Intervals[2].Name != "vp:mem" || !l.Intervals[0].Bounded || got[0].Intervals[0].Bounded {
		t.Errorf("last look %+v (first %+v): want bounded, the first at 2 units per cell not", l, got[0])
	}
	r := rep(2, 3)
	h.Record(r)
	if len(r.Looks) != 1 || h.Looks("vp", 1) != nil {
		t.Errorf("new window: %d looks, old window kept %d", len(r.Looks), len(h.Looks("vp", 1)))
	}
	old := rep(1, 50)
	h.Record(old)
	if old.Looks != nil || len(h.Looks("vp", 2)) != 1 {
		t.Errorf("an older window's report recorded a look: %d, current %d", len(old.Looks), len(h.Looks("vp", 2)))
	}
}

// TestInteractionSampleSizeMatchesR: the per-cell units of a planned
// two-way interaction (an MDE given as a difference of differences) match
// R's, computed from a cell-means pattern with R's noncentral F
// (analysis/testdata/gen/interaction_power.R).
func TestInteractionSampleSizeMatchesR(t *testing.T) {
	f, err := os.Open("../../analysis/testdata/power/interaction.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 5 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	for _, row := range rows[1:] {
		var x [6]float64
		for i := range x {
			if x[i], err = strconv.ParseFloat(row[i], 64); err != nil {
				t.Fatal(err)
			}
		}
		cells, d, sd, alpha, power, want := int(x[0]), x[1], x[2], x[3], x[4], x[5]
		factors := make([]analysis.Factor, 0)
		for k := 0; 1<<k < cells; k++ {
			factors = append(factors, analysis.Factor{Name: "f" + strconv.Itoa(k), Levels: []string{"c", "t"}})
		}
		tab, err := analysis.NewCellTable(factors)
		if err != nil {
			t.Fatal(err)
		}
		got, err := termSampleSize(tab, PlannedTerm{Name: "f0:f1", Factors: []int{0, 1}, MDE: d}, sd, assign.Plan{Alpha: alpha, Power: power})
		if err != nil {
			t.Fatal(err)
		}
		if got != int64(math.Ceil(want)) {
			t.Errorf("%d cells, d %v, sd %v, α %v, power %v: %d per cell, R %v", cells, d, sd, alpha, power, got, want)
		}
		// Unrounded, to R's precision.
		n, _ := analysis.SampleSizeTerm(1, cells, d/2, sd, alpha, power)
		if math.Abs(n-want) > 1e-6*want {
			t.Errorf("%d cells: n %v, R %v", cells, n, want)
		}
	}
}

// factorialWindow is a window of k two-level tests t0 (the viewpoint) …
// t(k−1), every cell with n units of mean 10 + cell-index noise and SD 3,
// and the experiments' lookup.
func factorialWindow(k int, n int64) (subset.WindowCells, Lookup) {
	exps := map[string]*assign.Experiment{}
	w := subset.WindowCells{Viewpoint: "t0", Seq: 1, Start: now.Add(-time.Hour), Metric: "latency_ms"}
	for f := range k {
		id := "t" + strconv.Itoa(f)
		exps[id] = &assign.Experiment{ID: id, Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "treat", Weight: 1}},
			Plan: assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 0.5, SD: 3}, Status: assign.StatusRunning, Phase: 1}
		w.Members = append(w.Members, subset.WindowMember{Test: id, Phase: 1, Variants: []string{"control", "treat"}})
	}
	exps["t0"].Plan.Interactions = []assign.PlannedInteraction{{With: "t1", MDE: 1}}
	for c := range 1 << k {
		v := make([]int, k)
		for f := range k {
			v[f] = c >> f & 1
		}
		w.Cells = append(w.Cells, subset.Cell{Variants: v, Stats: exact(n, 10+float64(c%7)/10, 3), Requests: n})
	}
	return w, lookupIn(exps)
}

// BenchmarkBuildAnytime: a report with its anytime-valid results (and
// everything else Build computes: Type III, estimates, sample-ratio
// checks, the sample sizes of the main effect and a planned interaction)
// for 64 and 1,024 cells.
func BenchmarkBuildAnytime(b *testing.B) {
	for _, k := range []int{6, 10} {
		w, exps := factorialWindow(k, 50)
		b.Run(strconv.Itoa(1<<k)+"cells", func(b *testing.B) {
			for b.Loop() {
				// New data every build: the observed SD changes, so the
				// progress's sample sizes are computed, not remembered.
				w.Cells[0].Stats.M2 *= 1.0001
				if r := Build(w, exps, Options{Now: now}); r.Anytime == nil {
					b.Fatalf("no anytime-valid results: %q", r.Notes)
				}
			}
		})
	}
}

// TestHistoryFirstDecided: the History remembers the first look at which
// the rule decided, and the status line says since when (or that it no
// longer decides).
func TestHistoryFirstDecided(t *testing.T) {
	h := NewHistory()
	at := func(n int64, effect float64, sec int) *Report {
		r := Build(window(func(i, j int) analysis.CellStats { return exact(n, 100+effect*float64(i), 10) }), lookup, Options{Now: now.Add(time.Duration(sec) * time.Second)})
		h.Record(r)
		return r
	}
	if r := at(5, 0, 1); r.Decision.Decided || !r.Decision.FirstTime.IsZero() {
		t.Fatalf("A/A at 5 per cell: decision %+v", r.Decision)
	}
	r := at(8, 30, 2)
	if r.Status != Decided || !r.Decision.FirstTime.Equal(now.Add(2*time.Second)) || r.Decision.FirstUnits != 32 {
		t.Fatalf("status %v decision %+v: want DECIDED first at +2s with 32 units", r.Status, r.Decision)
	}
	if l := r.StatusLine(); !strings.Contains(l, "since 2026-03-01 12:00:02 UTC at 32 units") {
		t.Errorf("status line %q", l)
	}
	r = at(9, 0, 3)
	if r.Status != Collecting || r.Decision.FirstUnits != 32 || !strings.Contains(r.StatusLine(), "the rule decided since 2026-03-01 12:00:02 UTC at 32 units but does not now") {
		t.Errorf("status %v, line %q", r.Status, r.StatusLine())
	}
}

// TestHistoryConcurrent: Record and Looks from several goroutines (run
// with -race).
func TestHistoryConcurrent(t *testing.T) {
	h := newHistory(16)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := int64(3); n < 40; n++ {
				r := Build(window(func(i, j int) analysis.CellStats { return exact(n+int64(g), 100, 10) }), lookup, Options{Now: now})
				h.Record(r)
				if len(r.Looks) > 16 || len(h.Looks("vp", 1)) > 16 {
					t.Errorf("more than 16 looks kept")
					return
				}
			}
		}()
	}
	wg.Wait()
}
