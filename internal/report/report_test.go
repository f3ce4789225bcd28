package report

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/subset"
)

// now is the fixed report time of every test.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// truth is a 2×2 model of the outcome: viewpoint "vp" (control, treat)
// and one member "mem" (control, alt), with i, j the variant indices,
//
//	y = Mu + A·i + B·j + AB·i·j + SD·ε,  ε ~ N(0, 1)
type truth struct{ Mu, A, B, AB, SD float64 }

// vpEffect, memEffect and interaction are what the report estimates: the
// difference of the unweighted marginal means, and the difference of
// differences.
func (m truth) vpEffect() float64    { return m.A + m.AB/2 }
func (m truth) memEffect() float64   { return m.B + m.AB/2 }
func (m truth) interaction() float64 { return m.AB }
func (m truth) mean(i, j int) float64 {
	return m.Mu + m.A*float64(i) + m.B*float64(j) + m.AB*float64(i*j)
}

var experiments = map[string]*assign.Experiment{
	"vp": {
		ID: "vp", ChangeService: "a", MeasureService: "m",
		Metric:   assign.Metric{Kind: assign.MetricAttribute, Attribute: "order.value", HigherIsBetter: true},
		Variants: []assign.Variant{{Name: "control", Weight: 50}, {Name: "treat", Weight: 50}},
		Plan:     assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 5, SD: 10},
		Status:   assign.StatusRunning, Phase: 1,
	},
	"mem": {
		ID: "mem", ChangeService: "b", MeasureService: "m",
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "alt", Weight: 1}},
		Plan:     assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 5, SD: 10},
		Status:   assign.StatusRunning, Phase: 1,
	},
}

func lookupIn(m map[string]*assign.Experiment) Lookup {
	return func(id string) (*assign.Experiment, bool) {
		x, ok := m[id]
		return x, ok
	}
}

var lookup = lookupIn(experiments)

// window returns a 2×2 window of vp and mem that opened an hour before
// now, with cell (i, j) from cell(i, j); cells with N == 0 are left out as
// the subset package leaves them out.
func window(cell func(i, j int) analysis.CellStats) subset.WindowCells {
	w := subset.WindowCells{
		Viewpoint: "vp", Seq: 1, Start: now.Add(-time.Hour),
		MeasureService: "m", Metric: "attribute:order.value",
		Members: []subset.WindowMember{
			{Test: "vp", Phase: 1, Variants: []string{"control", "treat"}},
			{Test: "mem", Phase: 1, Variants: []string{"control", "alt"},
				Reasons: []subset.Reason{{Kind: "latency", EmitScope: "change", SusceptibleScope: "measure", Shared: []string{"m"}}}},
		},
	}
	for i := range 2 {
		for j := range 2 {
			if s := cell(i, j); s.N > 0 {
				w.Cells = append(w.Cells, subset.Cell{Variants: []int{i, j}, Stats: s})
				w.Quality.Counted += s.N
			}
		}
	}
	w.Quality.Seen = w.Quality.Counted
	return w
}

// simulate fills cell (i, j) with n(i, j) draws of m, as the trace
// consumer does: one Add per request.
func simulate(rng *rand.Rand, m truth, n func(i, j int) int) subset.WindowCells {
	return window(func(i, j int) analysis.CellStats {
		var s analysis.CellStats
		for range n(i, j) {
			s.Add(m.mean(i, j) + m.SD*rng.NormFloat64())
		}
		return s
	})
}

func balanced(n int) func(i, j int) int { return func(int, int) int { return n } }

// exact returns a cell with n observations, the given mean and sample SD
// sd, without drawing them.
func exact(n int64, mean, sd float64) analysis.CellStats {
	return analysis.CellStats{N: n, Mean: mean, M2: sd * sd * float64(n-1)}
}

func build(t *testing.T, w subset.WindowCells) *Report {
	t.Helper()
	r := Build(w, lookup, Options{Now: now})
	if r == nil {
		t.Fatal("Build returned nil")
	}
	return r
}

func within(got, want, tol float64) bool { return scalar.EqualWithinAbsOrRel(got, want, tol, tol) }

func TestBuildRecoversKnownEffects(t *testing.T) {
	tests := []struct {
		name string
		m    truth
		n    int
	}{
		{"main effects and interaction", truth{Mu: 100, A: 5, B: -6, AB: 4, SD: 10}, 800},
		{"no interaction", truth{Mu: 50, A: -2, B: 6, AB: 0, SD: 5}, 600},
		{"interaction only", truth{Mu: 20, A: 0, B: 0, AB: 3, SD: 4}, 500},
	}
	for k, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(k+1), 42))
			w := simulate(rng, tt.m, balanced(tt.n))
			r := build(t, w)
			if r.Table == nil || r.Anova == nil || r.Estimates == nil {
				t.Fatalf("report incomplete: table %v, anova %v, estimates %v; notes %q", r.Table != nil, r.Anova != nil, r.Estimates != nil, r.Notes)
			}
			if got := r.Table.N(); got != int64(4*tt.n) {
				t.Errorf("table N = %d, want %d", got, 4*tt.n)
			}

			// Estimates cover the truth and equal the cell-mean arithmetic.
			m := cellMeans(w)
			for _, c := range []struct {
				what        string
				est         float64
				ci          analysis.Interval
				truth, calc float64
			}{
				{"vp effect", effect(t, r, "vp", "treat").Diff, effect(t, r, "vp", "treat").DiffCI,
					tt.m.vpEffect(), (m[1][0]+m[1][1])/2 - (m[0][0]+m[0][1])/2},
				{"mem effect", effect(t, r, "mem", "alt").Diff, effect(t, r, "mem", "alt").DiffCI,
					tt.m.memEffect(), (m[0][1]+m[1][1])/2 - (m[0][0]+m[1][0])/2},
				{"vp:mem interaction", interaction(t, r).Estimate, interaction(t, r).CI,
					tt.m.interaction(), (m[1][1] - m[0][1]) - (m[1][0] - m[0][0])},
			} {
				if !within(c.est, c.calc, 1e-9) {
					t.Errorf("%s = %v, want %v from the cell means", c.what, c.est, c.calc)
				}
				if !(c.ci.Lo <= c.truth && c.truth <= c.ci.Hi) {
					t.Errorf("%s CI [%v, %v] misses the truth %v", c.what, c.ci.Lo, c.ci.Hi, c.truth)
				}
			}

			// ANOVA: every term, with the balanced-design sums of squares.
			checkBalancedAnova(t, r.Anova, w, tt.n)
			for _, term := range []struct {
				name   string
				effect float64
			}{{"vp", tt.m.vpEffect()}, {"mem", tt.m.memEffect()}, {"vp:mem", tt.m.interaction()}} {
				a := r.Anova.Term(term.name)
				if a == nil {
					t.Fatalf("ANOVA has no term %q", term.name)
				}
				// Every true effect here is at least 0.3 SD, over 8 SE at
				// these n; a null one is not flagged at p < 0.001.
				if term.effect != 0 && a.P > 1e-6 {
					t.Errorf("term %s: p = %v for a true effect of %v", term.name, a.P, term.effect)
				}
				if term.effect == 0 && a.P < 1e-3 {
					t.Errorf("term %s: p = %v for a null effect", term.name, a.P)
				}
			}

			if r.Status != Complete || r.Progress.CellsReady != 4 || r.Progress.Fraction != 1 || r.Progress.ETA != 0 {
				t.Errorf("status %v, progress %+v; want COMPLETE with 4 cells ready, fraction 1, ETA 0", r.Status, r.Progress)
			}
			if r.SRMFlagged {
				t.Errorf("SRM flagged for a balanced window: %+v", r.SRM)
			}
			if len(r.Notes) != 0 {
				t.Errorf("notes %q, want none", r.Notes)
			}
			if r.Test != "vp" || r.Metric != "attribute:order.value" || !r.HigherIsBetter || !r.Generated.Equal(now) {
				t.Errorf("header: test %q metric %q higher %v generated %v", r.Test, r.Metric, r.HigherIsBetter, r.Generated)
			}
		})
	}
}

func effect(t *testing.T, r *Report, factor, variant string) *analysis.Effect {
	t.Helper()
	e := r.Estimates.Effect(factor, variant)
	if e == nil {
		t.Fatalf("no effect %s=%s in %+v", factor, variant, r.Estimates.Effects)
	}
	return e
}

func interaction(t *testing.T, r *Report) *analysis.Contrast {
	t.Helper()
	c := r.Estimates.Interaction("vp:mem")
	if c == nil {
		t.Fatalf("no vp:mem contrast in %+v", r.Estimates.Interactions)
	}
	return c
}

func cellMeans(w subset.WindowCells) (m [2][2]float64) {
	for _, c := range w.Cells {
		m[c.Variants[0]][c.Variants[1]] = c.Stats.Mean
	}
	return m
}

// checkBalancedAnova compares the ANOVA with the textbook formulas of a
// balanced two-way design with n per cell (where Types I, II and III agree):
//
//	SS_A = 2n Σ_i (R_i − G)²,  SS_B = 2n Σ_j (C_j − G)²,
//	SS_AB = n Σ_ij (m_ij − R_i − C_j + G)²,  SS_res = Σ M2 on 4(n − 1) df
func checkBalancedAnova(t *testing.T, a *analysis.AnovaTable, w subset.WindowCells, n int) {
	t.Helper()
	m := cellMeans(w)
	var R, C [2]float64
	var G float64
	for i := range 2 {
		for j := range 2 {
			R[i] += m[i][j] / 2
			C[j] += m[i][j] / 2
			G += m[i][j] / 4
		}
	}
	var ssA, ssB, ssAB, ssRes float64
	for i := range 2 {
		ssA += 2 * float64(n) * (R[i] - G) * (R[i] - G)
		ssB += 2 * float64(n) * (C[i] - G) * (C[i] - G)
		for j := range 2 {
			d := m[i][j] - R[i] - C[j] + G
			ssAB += float64(n) * d * d
		}
	}
	for _, c := range w.Cells {
		ssRes += c.Stats.M2
	}
	df := int64(4 * (n - 1))
	if a.Residual.DF != df || !within(a.Residual.SS, ssRes, 1e-9) {
		t.Errorf("residual df %d SS %v, want %d, %v", a.Residual.DF, a.Residual.SS, df, ssRes)
	}
	if a.Type != analysis.TypeIII {
		t.Errorf("ANOVA type %v, want the default Type III", a.Type)
	}
	if len(a.Terms) != 3 {
		t.Errorf("ANOVA has %d terms, want vp, mem, vp:mem", len(a.Terms))
	}
	mse := ssRes / float64(df)
	for _, want := range []struct {
		name string
		ss   float64
	}{{"vp", ssA}, {"mem", ssB}, {"vp:mem", ssAB}} {
		term := a.Term(want.name)
		if term == nil {
			t.Errorf("no term %q", want.name)
			continue
		}
		f := want.ss / mse
		p := distuv.F{D1: 1, D2: float64(df)}.Survival(f)
		if !term.Estimable || !term.Tested || term.DF != 1 ||
			!within(term.SS, want.ss, 1e-7) || !within(term.F, f, 1e-7) || !within(term.P, p, 1e-6) {
			t.Errorf("term %s = %+v, want df 1, SS %v, F %v, p %v", want.name, *term, want.ss, f, p)
		}
	}
}

// TestBuildCoverage checks that the 95% intervals of the effects cover the
// truth about 95% of the time over independent simulated windows.
func TestBuildCoverage(t *testing.T) {
	const reps = 400
	m := truth{Mu: 10, A: 1, B: -0.5, AB: 0.8, SD: 2}
	rng := rand.New(rand.NewPCG(7, 7))
	var cover [3]int
	for range reps {
		r := Build(simulate(rng, m, func(i, j int) int { return 30 + 10*i + 5*j }), lookup, Options{Now: now})
		e1, e2, c := r.Estimates.Effect("vp", "treat"), r.Estimates.Effect("mem", "alt"), r.Estimates.Interaction("vp:mem")
		for k, x := range []struct {
			ci analysis.Interval
			v  float64
		}{{e1.DiffCI, m.vpEffect()}, {e2.DiffCI, m.memEffect()}, {c.CI, m.interaction()}} {
			if x.ci.Lo <= x.v && x.v <= x.ci.Hi {
				cover[k]++
			}
		}
	}
	// Binomial(400, 0.95): SD 0.011; accept about ±4 SD below, 4 above.
	for k, name := range []string{"vp", "mem", "vp:mem"} {
		t.Logf("%s coverage %.3f", name, float64(cover[k])/reps)
		if c := float64(cover[k]) / reps; c < 0.90 || c > 0.995 {
			t.Errorf("%s: coverage %.3f of the 95%% interval, want about 0.95", name, c)
		}
	}
}

func TestBuildOptions(t *testing.T) {
	w := simulate(rand.New(rand.NewPCG(3, 3)), truth{Mu: 1, A: 1, SD: 1}, func(i, j int) int { return 20 + 30*i + 7*j })
	r := Build(w, lookup, Options{Type: analysis.TypeII, Level: 0.9, Now: now})
	if r.Anova == nil || r.Anova.Type != analysis.TypeII {
		t.Fatalf("ANOVA %+v, want Type II", r.Anova)
	}
	if r.Estimates.Level != 0.9 {
		t.Errorf("estimates level %v, want 0.9", r.Estimates.Level)
	}
	// A 90% interval is narrower than the default 95% one.
	r95 := Build(w, lookup, Options{Now: now})
	e90, e95 := r.Estimates.Effect("vp", "treat"), r95.Estimates.Effect("vp", "treat")
	if !(e90.DiffCI.Hi-e90.DiffCI.Lo < e95.DiffCI.Hi-e95.DiffCI.Lo) {
		t.Errorf("90%% CI %v is not narrower than 95%% CI %v", e90.DiffCI, e95.DiffCI)
	}
	if r95.Anova.Type != analysis.TypeIII || r95.Estimates.Level != 0.95 {
		t.Errorf("defaults: type %v level %v, want III and 0.95", r95.Anova.Type, r95.Estimates.Level)
	}
	// Zero Now means the wall clock.
	before := time.Now()
	if g := Build(w, lookup, Options{}).Generated; g.Before(before) || g.After(time.Now()) {
		t.Errorf("Generated %v, want the current time", g)
	}
}

func TestBuildSRM(t *testing.T) {
	// Cell sizes give the marginal splits; the SRM check reads them.
	tests := []struct {
		name    string
		n       func(i, j int) int
		exps    map[string]*assign.Experiment
		flagged []bool // per member: vp, mem
		obs     [][]int64
		weights [][]float64
		chi2    []float64
	}{
		{
			name: "50/50 observed, 50/50 weights", n: balanced(500),
			flagged: []bool{false, false},
			obs:     [][]int64{{1000, 1000}, {1000, 1000}},
			weights: [][]float64{{50, 50}, {1, 1}},
			chi2:    []float64{0, 0},
		},
		{
			name: "60/40 observed on vp, 50/50 weights",
			n: func(i, j int) int {
				if i == 0 {
					return 600
				}
				return 400
			},
			flagged: []bool{true, false},
			obs:     [][]int64{{1200, 800}, {1000, 1000}},
			weights: [][]float64{{50, 50}, {1, 1}},
			// (1200−1000)²/1000 + (800−1000)²/1000
			chi2: []float64{80, 0},
		},
		{
			name: "small random imbalance is not flagged",
			n:    func(i, j int) int { return 500 + 7*i - 4*j },
			// vp: 996 vs 1010, mem: 1007 vs 999
			flagged: []bool{false, false},
			obs:     [][]int64{{1000 - 4, 1014 - 4}, {1007, 999}},
			weights: [][]float64{{50, 50}, {1, 1}},
			chi2:    []float64{float64(7*7*2) / 1003, float64(4*4*2) / 1003},
		},
		{
			name: "60/40 observed on mem against its phase's 60/40 weights",
			n: func(i, j int) int {
				if j == 0 {
					return 600
				}
				return 400
			},
			exps: func() map[string]*assign.Experiment {
				mem := *experiments["mem"]
				// Phase 1 (the window's) was 60/40; the current phase 2 is 50/50.
				mem.Phase = 2
				mem.Phases = []assign.Phase{{Number: 1, Weights: []uint32{60, 40}}, {Number: 2, Weights: []uint32{50, 50}}}
				mem.Variants = []assign.Variant{{Name: "control", Weight: 50}, {Name: "alt", Weight: 50}}
				return map[string]*assign.Experiment{"vp": experiments["vp"], "mem": &mem}
			}(),
			flagged: []bool{false, false},
			obs:     [][]int64{{1000, 1000}, {1200, 800}},
			weights: [][]float64{{50, 50}, {60, 40}},
			chi2:    []float64{0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := window(func(i, j int) analysis.CellStats { return exact(int64(tt.n(i, j)), 10, 1) })
			exps := experiments
			if tt.exps != nil {
				exps = tt.exps
			}
			r := Build(w, lookupIn(exps), Options{Now: now})
			if len(r.SRM) != 2 {
				t.Fatalf("%d SRM checks, want one per member", len(r.SRM))
			}
			anyFlagged := false
			for k, c := range r.SRM {
				if c.Test != w.Members[k].Test || !slices.Equal(c.Variants, w.Members[k].Variants) || c.Note != "" {
					t.Errorf("check %d: %+v", k, c)
				}
				if !slices.Equal(c.Observed, tt.obs[k]) || !slices.Equal(c.Weights, tt.weights[k]) {
					t.Errorf("%s: observed %v weights %v, want %v, %v", c.Test, c.Observed, c.Weights, tt.obs[k], tt.weights[k])
				}
				if c.Result.Flagged != tt.flagged[k] || !within(c.Result.ChiSquare, tt.chi2[k], 1e-9) {
					t.Errorf("%s: flagged %v χ² %v (p %v), want %v, %v", c.Test, c.Result.Flagged, c.Result.ChiSquare, c.Result.P, tt.flagged[k], tt.chi2[k])
				}
				anyFlagged = anyFlagged || tt.flagged[k]
			}
			if r.SRMFlagged != anyFlagged {
				t.Errorf("SRMFlagged = %v, want %v", r.SRMFlagged, anyFlagged)
			}
		})
	}
}

// neededPerCell is the per-cell n of the viewpoint's main effect, computed
// here from the plan (and the pooled SD when the window has 30 residual
// df), not by the package.
func neededPerCell(t *testing.T, u, cells int, plan assign.Plan, sd float64) int64 {
	t.Helper()
	n, err := analysis.SampleSizeTerm(u, cells, plan.MDE, sd, plan.Alpha, plan.Power)
	if err != nil {
		t.Fatal(err)
	}
	return int64(math.Ceil(n))
}

func TestBuildProgress(t *testing.T) {
	plan := experiments["vp"].Plan
	// Cells with exactly SD 10 make the pooled SD 10 too, so the needed n
	// is the same whether the plan's or the observed SD is used.
	needed := neededPerCell(t, 1, 4, plan, 10)
	if needed < 10 || needed > 100 {
		t.Fatalf("needed = %d per cell: test assumptions broken", needed)
	}
	tests := []struct {
		name   string
		n      [2][2]int64
		status Status
		ready  int
		minN   int64
	}{
		{"every cell at the needed n", [2][2]int64{{needed, needed}, {needed, needed}}, Complete, 4, needed},
		{"every cell above", [2][2]int64{{needed + 5, 3 * needed}, {2 * needed, needed + 1}}, Complete, 4, needed + 1},
		{"one cell one short", [2][2]int64{{needed, needed}, {needed, needed - 1}}, Collecting, 3, needed - 1},
		{"one cell far behind", [2][2]int64{{5 * needed, 5 * needed}, {3, 5 * needed}}, Collecting, 3, 3},
		{"all cells halfway", [2][2]int64{{needed / 2, needed / 2}, {needed / 2, needed / 2}}, Collecting, 0, needed / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := window(func(i, j int) analysis.CellStats { return exact(tt.n[i][j], 100, 10) })
			r := build(t, w)
			p := r.Progress
			if r.Status != tt.status || p.NeededPerCell != needed || p.CellsReady != tt.ready || p.CellsTotal != 4 || p.MinCellN != tt.minN {
				t.Fatalf("status %v, progress %+v; want %v, needed %d, %d/4 ready, min n %d", r.Status, p, tt.status, needed, tt.ready, tt.minN)
			}
			if r.Status.String() != map[Status]string{Complete: "COMPLETE", Collecting: "COLLECTING"}[tt.status] {
				t.Errorf("String() = %q", r.Status)
			}
			var have float64
			for _, row := range tt.n {
				for _, n := range row {
					have += float64(min(n, needed))
				}
			}
			if want := have / float64(4*needed); !within(p.Fraction, want, 1e-12) {
				t.Errorf("fraction %v, want %v", p.Fraction, want)
			}
			if !within(p.SD, 10, 1e-9) {
				t.Errorf("SD %v, want 10", p.SD)
			}
			if tt.status == Complete {
				if p.ETA != 0 {
					t.Errorf("ETA %v for a complete report, want 0", p.ETA)
				}
				return
			}
			// The slowest cell got minN requests in the window's hour: it
			// needs (needed − minN)/minN more hours at that rate.
			want := time.Duration(float64(time.Hour) * float64(needed-tt.minN) / float64(tt.minN))
			if p.ETA <= 0 || (p.ETA-want).Abs() > time.Second {
				t.Errorf("ETA %v, want %v", p.ETA, want)
			}
		})
	}
}

func TestBuildProgressSD(t *testing.T) {
	plan := experiments["vp"].Plan // SD 10
	tests := []struct {
		name   string
		n      int64 // per cell
		cellSD float64
		wantSD float64
	}{
		// 4·(5−1) = 16 residual df < MinResidualDF: the plan's SD.
		{"few data use the plan's SD", 5, 20, 10},
		// 4·(9−1) = 32 residual df: the observed pooled SD.
		{"enough data use the observed SD", 9, 20, 20},
		{"observed SD smaller than planned", 400, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := build(t, window(func(i, j int) analysis.CellStats { return exact(tt.n, 50, tt.cellSD) }))
			if !within(r.Progress.SD, tt.wantSD, 1e-9) {
				t.Errorf("SD %v, want %v", r.Progress.SD, tt.wantSD)
			}
			if want := neededPerCell(t, 1, 4, plan, tt.wantSD); r.Progress.NeededPerCell != want {
				t.Errorf("needed %d, want %d", r.Progress.NeededPerCell, want)
			}
		})
	}
}

// TestBuildProgressThreeVariants: a viewpoint with three variants has a
// two-df main effect over 6 cells.
func TestBuildProgressThreeVariants(t *testing.T) {
	vp := *experiments["vp"]
	vp.Variants = []assign.Variant{{Name: "control", Weight: 1}, {Name: "b", Weight: 1}, {Name: "c", Weight: 1}}
	exps := map[string]*assign.Experiment{"vp": &vp, "mem": experiments["mem"]}
	w := window(func(i, j int) analysis.CellStats { return exact(4, 1, 10) })
	w.Members[0].Variants = []string{"control", "b", "c"}
	w.Cells = append(w.Cells,
		subset.Cell{Variants: []int{2, 0}, Stats: exact(4, 1, 10)},
		subset.Cell{Variants: []int{2, 1}, Stats: exact(4, 1, 10)})
	r := Build(w, lookupIn(exps), Options{Now: now})
	if want := neededPerCell(t, 2, 6, vp.Plan, 10); r.Progress.NeededPerCell != want || r.Progress.CellsTotal != 6 {
		t.Errorf("progress %+v, want needed %d over 6 cells; notes %q", r.Progress, want, r.Notes)
	}
	if len(r.SRM) != 2 || len(r.SRM[0].Observed) != 3 || r.SRM[0].Observed[2] != 8 {
		t.Errorf("SRM %+v", r.SRM)
	}
}

func TestBuildETAUnknown(t *testing.T) {
	tests := []struct {
		name  string
		start time.Time
		cells func(i, j int) analysis.CellStats
	}{
		{"window without a start", time.Time{}, func(int, int) analysis.CellStats { return exact(5, 1, 10) }},
		{"window starting after now", now.Add(time.Minute), func(int, int) analysis.CellStats { return exact(5, 1, 10) }},
		{"an empty cell", now.Add(-time.Hour), func(i, j int) analysis.CellStats {
			if i == 1 && j == 1 {
				return analysis.CellStats{}
			}
			return exact(5, 1, 10)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := window(tt.cells)
			w.Start = tt.start
			r := build(t, w)
			if r.Status != Collecting || r.Progress.ETA >= 0 {
				t.Errorf("status %v ETA %v, want COLLECTING with an unknown (negative) ETA", r.Status, r.Progress.ETA)
			}
		})
	}
}

// TestBuildClosedWindow: a closed window gets no more requests, so a
// report of it that is not complete has no ETA (and says why), however long
// after its close it is built.
func TestBuildClosedWindow(t *testing.T) {
	w := window(func(int, int) analysis.CellStats { return exact(5, 1, 10) })
	w.End = now.Add(-30 * time.Minute)
	r := build(t, w)
	if r.Status != Collecting || r.Progress.ETA >= 0 {
		t.Errorf("status %v ETA %v, want COLLECTING with an unknown (negative) ETA", r.Status, r.Progress.ETA)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "closed") {
		t.Errorf("notes %q do not say the window is closed", r.Notes)
	}
	// A closed window whose cells are full is still COMPLETE.
	needed := neededPerCell(t, 1, 4, experiments["vp"].Plan, 10)
	w = window(func(int, int) analysis.CellStats { return exact(needed, 1, 10) })
	w.End = now.Add(-30 * time.Minute)
	if r := build(t, w); r.Status != Complete || r.Progress.ETA != 0 {
		t.Errorf("full closed window: status %v ETA %v, want COMPLETE, 0", r.Status, r.Progress.ETA)
	}
}

// TestBuildSRMUnknownPhase: a member whose window phase is neither in its
// history nor current (deleted and created again since) is not checked
// against another phase's weights.
func TestBuildSRMUnknownPhase(t *testing.T) {
	mem := *experiments["mem"]
	mem.Phase = 1
	mem.Phases = []assign.Phase{{Number: 1, Weights: []uint32{90, 10}}}
	mem.Variants = []assign.Variant{{Name: "control", Weight: 90}, {Name: "alt", Weight: 10}}
	w := window(func(int, int) analysis.CellStats { return exact(500, 10, 1) })
	w.Members[1].Phase = 3 // the old incarnation's phase, split 50/50
	r := Build(w, lookupIn(map[string]*assign.Experiment{"vp": experiments["vp"], "mem": &mem}), Options{Now: now})
	if c := r.SRM[1]; c.Note == "" || c.Result.Flagged || c.Weights != nil {
		t.Errorf("member SRM %+v, want skipped with a note", c)
	}
	if r.SRMFlagged {
		t.Error("SRM flagged against another phase's weights")
	}
}

func TestBuildMissingExperiments(t *testing.T) {
	w := simulate(rand.New(rand.NewPCG(5, 5)), truth{Mu: 10, A: 1, SD: 2}, balanced(50))
	tests := []struct {
		name      string
		exps      map[string]*assign.Experiment
		srmNote   []bool // per member
		needed    bool
		noteWords string
	}{
		{"member deleted", map[string]*assign.Experiment{"vp": experiments["vp"]}, []bool{false, true}, true, ""},
		{"viewpoint deleted", map[string]*assign.Experiment{"mem": experiments["mem"]}, []bool{true, false}, false, "no longer exists"},
		{"both deleted", map[string]*assign.Experiment{}, []bool{true, true}, false, "no longer exists"},
		{"member's variants changed", map[string]*assign.Experiment{"vp": experiments["vp"], "mem": {
			ID: "mem", Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "alt", Weight: 1}, {Name: "new", Weight: 1}},
		}}, []bool{false, true}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(w, lookupIn(tt.exps), Options{Now: now})
			if r.Anova == nil || r.Estimates == nil {
				t.Fatalf("the window's data is still analysed: anova %v estimates %v", r.Anova, r.Estimates)
			}
			for k, c := range r.SRM {
				if (c.Note != "") != tt.srmNote[k] {
					t.Errorf("SRM %s note %q, want a note: %v", c.Test, c.Note, tt.srmNote[k])
				}
				if c.Note != "" && (c.Result.Flagged || c.Weights != nil) {
					t.Errorf("SRM %s skipped but has a result %+v", c.Test, c)
				}
			}
			if (r.Progress.NeededPerCell > 0) != tt.needed {
				t.Errorf("needed %d, want computed: %v", r.Progress.NeededPerCell, tt.needed)
			}
			if tt.noteWords != "" && !strings.Contains(strings.Join(r.Notes, "\n"), tt.noteWords) {
				t.Errorf("notes %q do not say %q", r.Notes, tt.noteWords)
			}
			if !tt.needed && r.Status != Collecting {
				t.Errorf("status %v without a plan, want COLLECTING", r.Status)
			}
		})
	}
}

func TestBuildPlanWithoutSD(t *testing.T) {
	vp := *experiments["vp"]
	vp.Plan.SD = 0
	exps := lookupIn(map[string]*assign.Experiment{"vp": &vp, "mem": experiments["mem"]})
	// 16 residual df: no observed SD yet either.
	r := Build(window(func(int, int) analysis.CellStats { return exact(5, 1, 3) }), exps, Options{Now: now})
	if r.Progress.NeededPerCell != 0 || r.Status != Collecting || !strings.Contains(strings.Join(r.Notes, "\n"), "standard deviation") {
		t.Errorf("progress %+v notes %q; want no sample size and a note", r.Progress, r.Notes)
	}
	// With 32 residual df the observed SD takes over.
	r = Build(window(func(int, int) analysis.CellStats { return exact(9, 1, 3) }), exps, Options{Now: now})
	if want := neededPerCell(t, 1, 4, vp.Plan, 3); r.Progress.NeededPerCell != want {
		t.Errorf("needed %d, want %d from the observed SD; notes %q", r.Progress.NeededPerCell, want, r.Notes)
	}
}

func TestBuildDegenerateWindows(t *testing.T) {
	twoByTwo := window(func(int, int) analysis.CellStats { return analysis.CellStats{} })
	oneCell := window(func(i, j int) analysis.CellStats {
		if i == 0 && j == 0 {
			return exact(10, 3, 1)
		}
		return analysis.CellStats{}
	})
	viewpointOnly := twoByTwo
	viewpointOnly.Members = viewpointOnly.Members[:1]
	viewpointOnly.Cells = []subset.Cell{{Variants: []int{0}, Stats: exact(40, 1, 1)}, {Variants: []int{1}, Stats: exact(40, 2, 1)}}
	oneVariant := twoByTwo
	oneVariant.Members = []subset.WindowMember{{Test: "vp", Variants: []string{"control"}}}
	oneVariant.Cells = []subset.Cell{{Variants: []int{0}, Stats: exact(40, 1, 1)}}
	badIndex := oneCell
	badIndex.Cells = append(slices.Clone(oneCell.Cells),
		subset.Cell{Variants: []int{0, 7}, Stats: exact(3, 1, 1)},
		subset.Cell{Variants: []int{1}, Stats: exact(3, 1, 1)})

	tests := []struct {
		name      string
		w         subset.WindowCells
		table     bool
		anova     bool
		status    Status
		flagged   bool
		noteWords string
	}{
		{"zero window", subset.WindowCells{}, false, false, Collecting, false, "cell table"},
		{"members but no cells", twoByTwo, true, false, Collecting, false, "no unit counted"},
		// 10 units all in one of four equally likely cells: the joint
		// check flags it (exact probability 4·0.25¹⁰ ≈ 4e-6), though
		// neither member's 10/0 split does (p ≈ 0.0016).
		{"one non-empty cell", oneCell, true, true, Collecting, true, ""},
		// 78 residual df of SD 1 against an MDE of 5: a few per cell do.
		{"viewpoint alone", viewpointOnly, true, true, Complete, false, ""},
		{"viewpoint with one variant", oneVariant, true, false, Collecting, false, "ANOVA"},
		{"cell indices that match no member", badIndex, true, true, Collecting, true, "do not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Build(tt.w, lookup, Options{Now: now})
			if r == nil {
				t.Fatal("nil report")
			}
			if (r.Table != nil) != tt.table || (r.Anova != nil) != tt.anova {
				t.Errorf("table %v anova %v, want %v, %v; notes %q", r.Table != nil, r.Anova != nil, tt.table, tt.anova, r.Notes)
			}
			if tt.noteWords != "" && !strings.Contains(strings.Join(r.Notes, "\n"), tt.noteWords) {
				t.Errorf("notes %q do not mention %q", r.Notes, tt.noteWords)
			}
			if r.Status != tt.status || r.SRMFlagged != tt.flagged {
				t.Errorf("status %v flagged %v, want %v and flagged %v", r.Status, r.SRMFlagged, tt.status, tt.flagged)
			}
			for _, c := range r.SRM {
				if c.Result.Flagged {
					t.Errorf("member check %s flagged: %+v", c.Test, c.Result)
				}
			}
			if r.Progress.Fraction < 0 || r.Progress.Fraction > 1 || math.IsNaN(r.Progress.Fraction) {
				t.Errorf("fraction %v", r.Progress.Fraction)
			}
			// A report is what the API and pages serialise.
			if _, err := json.Marshal(r); err != nil {
				t.Errorf("json: %v", err)
			}
		})
	}
}

// TestBuildStoredWindow builds from a window that went through JSON, as
// one read back from the store.
func TestBuildStoredWindow(t *testing.T) {
	w := simulate(rand.New(rand.NewPCG(9, 9)), truth{Mu: 100, A: 5, B: -3, AB: 4, SD: 10}, balanced(200))
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	var back subset.WindowCells
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	r1, r2 := build(t, w), build(t, back)
	e1, e2 := r1.Estimates.Effect("vp", "treat"), r2.Estimates.Effect("vp", "treat")
	if !within(e1.Diff, e2.Diff, 1e-12) || !within(r1.Anova.Term("vp:mem").SS, r2.Anova.Term("vp:mem").SS, 1e-12) {
		t.Errorf("estimates differ after a JSON round trip: %v vs %v", e1.Diff, e2.Diff)
	}
}

func BenchmarkBuild(b *testing.B) {
	w := simulate(rand.New(rand.NewPCG(1, 1)), truth{Mu: 100, A: 5, B: -3, AB: 4, SD: 10}, balanced(100))
	for b.Loop() {
		Build(w, lookup, Options{Now: now})
	}
}

// TestBuildETAFromOpening: a window opened (by a graph change) long after
// its members started counts requests only since it opened, so the rate
// is measured from the opening, not from Start.
func TestBuildETAFromOpening(t *testing.T) {
	needed := neededPerCell(t, 1, 4, experiments["vp"].Plan, 10)
	minN := needed / 2
	w := window(func(i, j int) analysis.CellStats { return exact(minN, 100, 10) })
	w.Start, w.Opened = now.Add(-10*time.Hour), now.Add(-10*time.Minute)
	r := build(t, w)
	want := time.Duration(float64(10*time.Minute) * float64(needed-minN) / float64(minN))
	if r.Progress.ETA <= 0 || (r.Progress.ETA-want).Abs() > time.Second {
		t.Errorf("ETA %v, want %v (rate since the window opened)", r.Progress.ETA, want)
	}
}

// TestBuildRatio: a ratio window is analysed by the delta method: its
// cells' RatioStats make a ratio table, the ANOVA is the Type III Wald
// chi-square, the estimates are z intervals, and the viewpoint's effect
// is the difference of the marginal request-level ratios.
func TestBuildRatio(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var ratios [2][2]analysis.RatioStats
	w := window(func(i, j int) analysis.CellStats {
		var unitMeans analysis.CellStats
		for range 200 {
			n := 1 + rng.IntN(6)
			s := float64(n)*(10+2*float64(i)) + 3*rng.NormFloat64()
			ratios[i][j].Add(s, float64(n))
			unitMeans.Add(s / float64(n))
		}
		return unitMeans
	})
	w.Aggregate = assign.AggregateRatio
	for k := range w.Cells {
		v := w.Cells[k].Variants
		w.Cells[k].Ratio = &ratios[v[0]][v[1]]
	}
	r := build(t, w)
	if r.Anova == nil || r.Estimates == nil {
		t.Fatalf("no analysis: %v", r.Notes)
	}
	if r.Anova.Test != analysis.TestWald || r.Estimates.Test != analysis.TestZ || r.Table.Ratios == nil {
		t.Errorf("tests %q and %q", r.Anova.Test, r.Estimates.Test)
	}
	want := (ratios[1][0].Ratio()+ratios[1][1].Ratio())/2 - (ratios[0][0].Ratio()+ratios[0][1].Ratio())/2
	if ef := r.Estimates.Effect("vp", "treat"); ef == nil || !within(ef.Diff, want, 1e-12) || !(ef.DiffCI.Lo < 2 && 2 < ef.DiffCI.Hi) {
		t.Errorf("vp effect %+v, want %v (truth 2 inside the interval)", ef, want)
	}
	if units, _ := r.CellCounts([]string{"treat", "alt"}); units != 200 {
		t.Errorf("units of (treat, alt) = %d", units)
	}
	if rr := Build(w, lookup, Options{Now: now, Type: analysis.TypeII}); rr.Anova != nil || !strings.Contains(strings.Join(rr.Notes, "\n"), "only Type III") {
		t.Errorf("Type II on a ratio window: anova %v, notes %v", rr.Anova, rr.Notes)
	}
}
