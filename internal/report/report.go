// Package report builds a viewpoint test's factorial report from one
// analysis window: the subset and why each member is in it, the cell
// table, the ANOVA table, effect estimates, the sample-ratio check, the
// data-quality counters and the status (COLLECTING with progress and ETA,
// or COMPLETE). It only combines: the statistics are analysis's, the
// windows subset's, the plans assign's.
package report

import (
	"fmt"
	"math"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/subset"
)

// Status says whether every cell has the samples the viewpoint's plan
// needs.
type Status int

// Report statuses.
const (
	Collecting Status = iota + 1
	Complete
)

// String returns "COLLECTING" or "COMPLETE".
func (s Status) String() string {
	if s == Complete {
		return "COMPLETE"
	}
	return "COLLECTING"
}

// Progress is how far the window is from the per-cell sample size.
type Progress struct {
	// NeededPerCell is the per-cell n the plan's power needs for the
	// viewpoint's main effect; 0 when it cannot be computed (Notes says
	// why).
	NeededPerCell int64
	MinCellN      int64
	CellsReady    int
	CellsTotal    int
	// Fraction is Σ min(n_c, needed) / (cells · needed), in [0, 1].
	Fraction float64
	// ETA is the time until the slowest cell reaches NeededPerCell at the
	// rate observed so far; negative when unknown or when the window is
	// closed (it collects no more requests).
	ETA time.Duration
	// SD is the standard deviation used: the observed pooled one when the
	// window has at least MinResidualDF residual df, else the plan's.
	SD float64
}

// MinResidualDF is the residual df from which the observed pooled SD
// replaces the plan's assumed SD in the sample size.
const MinResidualDF = 30

// SRMCheck is one member test's sample-ratio check over the window.
//
// Observed counts requests (counted traces), not units. The chi-square
// treats each as an independent draw at the weights, which holds when a
// unit makes at most one counted request; when units make several, the
// counts are clustered by unit and the check flags far more often than
// its threshold says (with about 5 requests per unit, geometric, a 50/50
// split is flagged in roughly a quarter of windows at p < 0.001). For a
// member other than the viewpoint, a mismatch can also be a real effect
// of that member on whether the viewpoint is served or its metric
// observed on the path (a selection the cells then carry), not an
// assignment fault.
type SRMCheck struct {
	Test     string
	Variants []string
	Observed []int64
	Weights  []float64
	Result   analysis.SRMResult
	Note     string // set when the check could not be run
}

// Report is a viewpoint test's factorial analysis of one window.
type Report struct {
	Test   string
	Metric string
	// HigherIsBetter is the metric's direction.
	HigherIsBetter bool
	Window         subset.WindowCells
	Table          *analysis.CellTable
	Anova          *analysis.AnovaTable // nil when it could not be computed
	Estimates      *analysis.Estimates  // nil when they could not be computed
	SRM            []SRMCheck
	SRMFlagged     bool
	Status         Status
	Progress       Progress
	Generated      time.Time
	Notes          []string
}

// Options tune Build.
type Options struct {
	// Type is the ANOVA sums-of-squares type; 0 means Type III.
	Type analysis.SSType
	// Level is the confidence level; 0 means 0.95.
	Level float64
	// Now is the report time; zero means time.Now().
	Now time.Time
}

// Lookup returns an experiment by id (an *assign.Engine's Experiment).
type Lookup func(id string) (*assign.Experiment, bool)

// Build computes the report of window w. exps gives the members'
// definitions (plans, weights); a member that no longer exists is
// analysed with what the window recorded, and its SRM check is skipped.
// Build never fails: what cannot be computed is left nil or zero and
// explained in Notes.
func Build(w subset.WindowCells, exps Lookup, opt Options) *Report {
	if opt.Type == 0 {
		opt.Type = analysis.TypeIII
	}
	if opt.Level == 0 {
		opt.Level = 0.95
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	r := &Report{Test: w.Viewpoint, Metric: w.Metric, Window: w, Generated: opt.Now, Status: Collecting}
	vp, vpOK := exps(w.Viewpoint)
	if vpOK {
		r.HigherIsBetter = vp.Metric.HigherIsBetter
	}

	factors := make([]analysis.Factor, len(w.Members))
	for i, m := range w.Members {
		factors[i] = analysis.Factor{Name: m.Test, Levels: m.Variants}
	}
	t, err := analysis.NewCellTable(factors)
	if err != nil {
		r.note("cell table: %v", err)
		return r
	}
	for _, c := range w.Cells {
		if !validCell(w, c) {
			r.note("cell %v: the variant indices do not match the window's members; left out", c.Variants)
			continue
		}
		if err := t.MergeCell(w.VariantNames(c), c.Stats); err != nil {
			r.note("cell %v: %v", w.VariantNames(c), err)
		}
	}
	r.Table = t

	if t.N() > 0 {
		if a, err := analysis.Anova(t, opt.Type); err != nil {
			r.note("ANOVA: %v", err)
		} else {
			r.Anova = a
		}
		if e, err := analysis.Estimate(t, opt.Level); err != nil {
			r.note("estimates: %v", err)
		} else {
			r.Estimates = e
		}
	} else {
		r.note("no request counted in this window yet")
	}

	r.srm(w, t, exps)
	r.progress(w, t, vp, vpOK, opt.Now)
	return r
}

// validCell reports whether c has one variant index per member, each in
// range, so that w.VariantNames(c) does not panic on a window read back
// from a store.
func validCell(w subset.WindowCells, c subset.Cell) bool {
	if len(c.Variants) != len(w.Members) {
		return false
	}
	for i, v := range c.Variants {
		if v < 0 || v >= len(w.Members[i].Variants) {
			return false
		}
	}
	return true
}

func (r *Report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// srm runs one goodness-of-fit test per member on the member's marginal
// counts, against the weights of the member's phase in the window.
func (r *Report) srm(w subset.WindowCells, t *analysis.CellTable, exps Lookup) {
	levels := make([]int, len(t.Factors))
	for f, m := range w.Members {
		chk := SRMCheck{Test: m.Test, Variants: m.Variants, Observed: make([]int64, len(m.Variants))}
		for i := range t.Cells {
			t.Levels(i, levels)
			chk.Observed[levels[f]] += t.Cells[i].N
		}
		x, ok := exps(m.Test)
		weights := phaseWeights(x, m.Phase)
		switch {
		case !ok:
			chk.Note = "experiment no longer exists"
		case len(weights) != len(m.Variants):
			chk.Note = "the phase's weights are not known"
		default:
			for _, wt := range weights {
				chk.Weights = append(chk.Weights, float64(wt))
			}
			res, err := analysis.SRM(chk.Observed, chk.Weights, analysis.DefaultSRMThreshold)
			if err != nil {
				chk.Note = err.Error()
			} else {
				chk.Result = res
				if res.Flagged {
					r.SRMFlagged = true
				}
			}
		}
		r.SRM = append(r.SRM, chk)
	}
}

// phaseWeights returns the weights of phase of x, falling back to the
// current weights when phase is x's current phase; nil when the phase is
// neither in x's history nor current (e.g. x was deleted and created
// again), since another phase's weights would test the wrong allocation.
func phaseWeights(x *assign.Experiment, phase int) []uint32 {
	if x == nil {
		return nil
	}
	for _, p := range x.Phases {
		if p.Number == phase && len(p.Weights) > 0 {
			return p.Weights
		}
	}
	if phase != x.Phase {
		return nil
	}
	out := make([]uint32, len(x.Variants))
	for i, v := range x.Variants {
		out[i] = v.Weight
	}
	return out
}

// progress computes the per-cell sample size of the viewpoint's main
// effect and how far the cells are from it.
func (r *Report) progress(w subset.WindowCells, t *analysis.CellTable, vp *assign.Experiment, vpOK bool, now time.Time) {
	p := &r.Progress
	p.CellsTotal = len(t.Cells)
	p.ETA = -1
	p.MinCellN = math.MaxInt64
	for _, c := range t.Cells {
		p.MinCellN = min(p.MinCellN, c.N)
	}
	if p.CellsTotal == 0 {
		p.MinCellN = 0
	}
	if !vpOK {
		r.note("sample size: the viewpoint experiment no longer exists")
		return
	}
	plan := vp.Plan
	plan.Defaults()
	p.SD = plan.SD
	if r.Anova != nil && r.Anova.Residual.DF >= MinResidualDF && r.Anova.Residual.MS > 0 {
		p.SD = math.Sqrt(r.Anova.Residual.MS)
	}
	u := len(w.Members[0].Variants) - 1
	if !(plan.MDE > 0) || !(p.SD > 0) {
		r.note("sample size: the plan needs a minimum detectable effect and a standard deviation (or %d residual df of data)", MinResidualDF)
		return
	}
	n, err := analysis.SampleSizeTerm(u, p.CellsTotal, plan.MDE, p.SD, plan.Alpha, plan.Power)
	if err != nil {
		r.note("sample size: %v", err)
		return
	}
	p.NeededPerCell = int64(math.Ceil(n))
	var have float64
	for _, c := range t.Cells {
		have += float64(min(c.N, p.NeededPerCell))
		if c.N >= p.NeededPerCell {
			p.CellsReady++
		}
	}
	p.Fraction = have / float64(int64(p.CellsTotal)*p.NeededPerCell)
	if p.CellsReady == p.CellsTotal {
		r.Status = Complete
		p.ETA = 0
		return
	}
	if !w.Open() {
		// A closed window collects nothing more: it never completes.
		r.note("the window closed on %s before every cell reached %d; it collects no more requests",
			w.End.UTC().Format(time.RFC3339), p.NeededPerCell)
		return
	}
	if elapsed := now.Sub(laterOf(w.Start, w.Opened)); elapsed > 0 && p.MinCellN > 0 && !w.Start.IsZero() {
		rate := float64(p.MinCellN) / elapsed.Seconds()
		p.ETA = time.Duration(float64(p.NeededPerCell-p.MinCellN) / rate * float64(time.Second))
	}
}

// laterOf returns the later of two times.
func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
