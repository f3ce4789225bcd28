// Package report builds a viewpoint test's factorial report from one
// analysis window: the subset and why each member is in it, the cell
// table, the ANOVA table and effect estimates (fixed-horizon: valid only
// at the planned sample size), the anytime-valid tests and confidence
// sequences (valid whenever read) with their history of looks, the
// sample-ratio check, the data-quality counters and the status
// (COLLECTING with progress and ETA, DECIDED by the anytime-valid
// stopping rule, or COMPLETE at the fixed horizon). It only combines: the
// statistics are analysis's, the windows subset's, the plans assign's.
package report

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/subset"
)

// Status says whether every cell has the samples the viewpoint's plan
// needs (COMPLETE, the fixed-horizon rule), or the anytime-valid stopping
// rule has decided every planned term before that (DECIDED).
type Status int

// Report statuses.
const (
	Collecting Status = iota + 1
	Complete
	// Decided: not Complete, but every planned term (Report.Decision) is
	// anytime-valid significant or futile.
	Decided
)

// String returns "COLLECTING", "COMPLETE" or "DECIDED".
func (s Status) String() string {
	switch s {
	case Complete:
		return "COMPLETE"
	case Decided:
		return "DECIDED"
	}
	return "COLLECTING"
}

// Progress is how far the window is from the per-cell sample size. Every
// n counts units (the unit of analysis), not requests.
type Progress struct {
	// NeededPerCell is the per-cell units the plan's power needs: the
	// largest of Needs; 0 when it cannot be computed (Notes says why).
	NeededPerCell int64
	// Needs are the planned terms (the viewpoint's main effect, then each
	// plan.interactions term in the subset) with each one's per-cell units.
	Needs []PlannedTerm
	// MinCellN is the units of the smallest cell.
	MinCellN   int64
	CellsReady int
	CellsTotal int
	// Fraction is Σ min(n_c, needed) / (cells · needed), in [0, 1].
	Fraction float64
	// ETA is the time until the smallest cell reaches NeededPerCell units
	// at the rate observed so far; negative when unknown or when the window is
	// closed (it collects no more requests).
	ETA time.Duration
	// SD is the standard deviation of one unit's aggregated value used:
	// the observed pooled one when the window has at least MinResidualDF
	// residual df, else the plan's.
	SD float64
}

// MinResidualDF is the residual df from which the observed pooled SD
// replaces the plan's assumed SD in the sample size.
const MinResidualDF = 30

// SRMCheck is one member test's (or layer factor's, Test being its name)
// sample-ratio check over the window.
//
// Observed counts distinct units (the unit of randomization) per variant:
// the chi-square treats each as an independent draw at the weights, which
// is what the hash makes them. Requests counts the units' counted requests
// per variant: a diagnostic only, never the flag, since a unit's requests
// are not independent draws (with about 5 requests per unit a correct
// 50/50 split of requests is flagged in roughly a quarter of windows at
// p < 0.001). For a member other than the viewpoint, a mismatch can also
// be a real effect of that member on whether the viewpoint is served or
// its metric observed on the path (a selection the cells then carry), not
// an assignment fault.
type SRMCheck struct {
	Test     string
	Variants []string
	Observed []int64 // distinct units per variant
	Requests []int64 // counted requests per variant (diagnostic)
	Weights  []float64
	Result   analysis.SRMResult
	Note     string // set when the check could not be run
}

// JointSRMCheck is the subset's sample-ratio check over its factorial
// cells: the units of every cell against the product of the members'
// variant shares (each test's split is independent of the others', so a
// cell's expected share is the product of its variants' shares). It also
// catches splits that are right per test but not independent across
// tests. Result.Expected has one expected unit count per cell.
type JointSRMCheck struct {
	Cells  []JointSRMCell // every cell of the subset, empty ones included, in CellTable order
	Result analysis.SRMResult
	Note   string // set when the check could not be run
}

// JointSRMCell is one cell of the joint check.
type JointSRMCell struct {
	Variants []string // one per member
	Units    int64
	Requests int64   // diagnostic only
	Share    float64 // expected share of the units
}

// Report is a viewpoint test's factorial analysis of one window.
type Report struct {
	Test   string
	Metric string
	// Aggregate is how the window aggregates the metric per unit.
	Aggregate assign.Aggregate
	// HigherIsBetter is the metric's direction.
	HigherIsBetter bool
	Window         subset.WindowCells
	Table          *analysis.CellTable
	// Anova and Estimates are the fixed-horizon results: valid when read
	// once, at the planned sample size (Progress.NeededPerCell); nil when
	// they could not be computed.
	Anova     *analysis.AnovaTable
	Estimates *analysis.Estimates
	// Anytime are the anytime-valid results, valid whenever read; nil when
	// they could not be computed (Notes says why).
	Anytime *analysis.AnytimeResults
	// Decision is the stopping rule over the planned terms (zero when
	// Anytime is nil).
	Decision Decision
	// Looks are earlier readings of this window's confidence sequences,
	// oldest first, as a Reader's History keeps them; nil from Build.
	Looks []Look
	SRM   []SRMCheck
	// JointSRM is nil when the subset is the viewpoint alone (its check is
	// then SRM[0]).
	JointSRM *JointSRMCheck
	// SRMFlagged is set when a member's check or the joint check flags.
	SRMFlagged bool
	Status     Status
	Progress   Progress
	Generated  time.Time
	Notes      []string

	counts cellCounts // per CellTable index; nil slices when Table is nil
}

// CellCounts returns the units and counted requests of the cell with the
// given variant names (one per member, in Window.Members order); zeros
// when there is no such cell.
func (r *Report) CellCounts(variants []string) (units, requests int64) {
	if r.Table == nil || len(variants) != len(r.Table.Factors) {
		return 0, 0
	}
	idx := make([]int, len(variants))
	for f, name := range variants {
		l := slices.Index(r.Table.Factors[f].Levels, name)
		if l < 0 {
			return 0, 0
		}
		idx[f] = l
	}
	i := r.Table.Index(idx...)
	return r.counts.units[i], r.counts.requests[i]
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
	r := &Report{Test: w.Viewpoint, Metric: w.Metric, Aggregate: w.Aggregate, Window: w, Generated: opt.Now, Status: Collecting}
	vp, vpOK := exps(w.Viewpoint)
	if vpOK {
		r.HigherIsBetter = vp.Metric.HigherIsBetter
	}

	factors := make([]analysis.Factor, len(w.Members))
	for i, m := range w.Members {
		factors[i] = analysis.Factor{Name: m.Test, Levels: m.Variants, Reference: m.Reference()}
	}
	t, err := analysis.NewCellTable(factors)
	if err != nil {
		r.note("cell table: %v", err)
		return r
	}
	counts := r.fill(w, t)
	r.Table, r.counts = t, counts
	r.analyse(t, counts, opt)
	r.srm(w, counts, exps)
	r.progress(w, counts, vp, vpOK, opt.Now)
	if r.Status != Complete && r.Decision.Decided {
		r.Status = Decided
	}
	return r
}

// cellCounts are the window's units and counted requests per cell,
// indexed like CellTable.Cells.
type cellCounts struct {
	units, requests []int64
}

func (c cellCounts) totalUnits() int64 {
	var n int64
	for _, u := range c.units {
		n += u
	}
	return n
}

// fill merges the window's cells into t and returns their counts. A cell
// whose variant indices do not fit the members is left out with a note.
func (r *Report) fill(w subset.WindowCells, t *analysis.CellTable) cellCounts {
	counts := cellCounts{units: make([]int64, len(t.Cells)), requests: make([]int64, len(t.Cells))}
	for _, c := range w.Cells {
		if !validCell(w, c) {
			r.note("cell %v: the variant indices do not match the window's members; left out", c.Variants)
			continue
		}
		if err := mergeCell(t, w, c); err != nil {
			r.note("cell %v: %v", w.VariantNames(c), err)
			continue
		}
		i := t.Index(c.Variants...)
		counts.units[i] += c.Stats.N
		counts.requests[i] += c.Requests
	}
	return counts
}

// mergeCell merges cell c of w into t: its statistics over units, or for
// a ratio window its RatioStats (making t a ratio table, analysed by the
// delta method).
func mergeCell(t *analysis.CellTable, w subset.WindowCells, c subset.Cell) error {
	names := w.VariantNames(c)
	if w.Aggregate != assign.AggregateRatio {
		return t.MergeCell(names, c.Stats)
	}
	if c.Ratio == nil {
		return errors.New("a ratio window's cell has no ratio statistics; left out")
	}
	return t.MergeRatioCell(names, *c.Ratio)
}

// analyse runs the ANOVA and the estimates on t.
func (r *Report) analyse(t *analysis.CellTable, counts cellCounts, opt Options) {
	if counts.totalUnits() == 0 {
		r.note("no unit counted in this window yet")
		return
	}
	if t.Ratios != nil {
		r.note("ratio metric: each cell's mean is Σ metric / Σ requests of its units; the tests are Wald chi-square and the intervals z, on each cell's delta-method variance over units (Deng, Knoblich & Lu, KDD 2018)")
	}
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

// srm runs one goodness-of-fit test per member on the member's distinct
// units per variant, against the weights of the member's phase in the
// window (for a layer factor, its levels' shares of the layer), then the
// joint test over the cells. Each check's threshold is
// analysis.SRMFamilyThreshold of their number, so that a correct split
// sets SRMFlagged with probability at most analysis.DefaultSRMThreshold
// however many tests the subset has.
func (r *Report) srm(w subset.WindowCells, counts cellCounts, exps Lookup) {
	t := r.Table
	checks := len(w.Members)
	if checks > 1 {
		checks++ // the joint check
	}
	threshold := analysis.SRMFamilyThreshold(checks)
	levels := make([]int, len(t.Factors))
	shares := make([][]float64, len(w.Members)) // nil where the weights are not known
	for f, m := range w.Members {
		chk := SRMCheck{Test: m.Test, Variants: m.Variants, Observed: make([]int64, len(m.Variants)), Requests: make([]int64, len(m.Variants))}
		for i := range t.Cells {
			t.Levels(i, levels)
			chk.Observed[levels[f]] += counts.units[i]
			chk.Requests[levels[f]] += counts.requests[i]
		}
		chk.Weights, chk.Note = memberWeights(exps, m)
		if chk.Note == "" {
			shares[f] = normalised(chk.Weights)
			chk.Result, chk.Note = runSRM(chk.Observed, chk.Weights, threshold)
			r.SRMFlagged = r.SRMFlagged || chk.Result.Flagged
		}
		r.SRM = append(r.SRM, chk)
	}
	if len(w.Members) > 1 {
		r.JointSRM = jointSRM(w, t, counts, shares, threshold)
		r.SRMFlagged = r.SRMFlagged || r.JointSRM.Result.Flagged
	}
}

// memberWeights returns the weights of m's phase, or for a layer factor
// each level's share of the layer (its tests' slices and weights), or a
// note saying why they are not known.
func memberWeights(exps Lookup, m subset.WindowMember) ([]float64, string) {
	if m.IsLayer() {
		return layerShares(exps, m)
	}
	x, ok := exps(m.Test)
	if !ok {
		return nil, "experiment no longer exists"
	}
	weights := phaseWeights(x, m.Phase)
	if len(weights) != len(m.Variants) {
		return nil, "the phase's weights are not known"
	}
	out := make([]float64, len(weights))
	for i, wt := range weights {
		out[i] = float64(wt)
	}
	return out, ""
}

// layerShares returns the expected share of each level of layer factor
// m (subset.WindowMember.Shares), or a note saying why it is not known.
func layerShares(exps Lookup, m subset.WindowMember) ([]float64, string) {
	per := make([][]float64, len(m.Tests))
	for i, t := range m.Tests {
		w, note := memberWeights(exps, t)
		if note != "" {
			return nil, t.Test + ": " + note
		}
		per[i] = w
	}
	shares, ok := m.Shares(per)
	if !ok {
		return nil, "the layer's shares are not known"
	}
	return shares, ""
}

// runSRM is analysis.SRM at threshold; an error becomes the note.
func runSRM(observed []int64, weights []float64, threshold float64) (analysis.SRMResult, string) {
	res, err := analysis.SRM(observed, weights, threshold)
	if err != nil {
		return analysis.SRMResult{}, err.Error()
	}
	return res, ""
}

// normalised returns w / Σ w (w is non-empty with a positive sum, or the
// result is NaN and the SRM that uses it fails with a note).
func normalised(w []float64) []float64 {
	var sum float64
	for _, x := range w {
		sum += x
	}
	out := make([]float64, len(w))
	for i, x := range w {
		out[i] = x / sum
	}
	return out
}

// jointSRM tests the units of every cell against the product of the
// members' variant shares; shares[f] is nil when member f's weights are
// not known, and the check is then skipped with a note.
func jointSRM(w subset.WindowCells, t *analysis.CellTable, counts cellCounts, shares [][]float64, threshold float64) *JointSRMCheck {
	chk := &JointSRMCheck{}
	for f, s := range shares {
		if s == nil {
			chk.Note = "the weights of " + w.Members[f].Test + " are not known"
			return chk
		}
	}
	levels := make([]int, len(t.Factors))
	observed := make([]int64, len(t.Cells))
	expected := make([]float64, len(t.Cells))
	for i := range t.Cells {
		t.Levels(i, levels)
		c := JointSRMCell{Variants: make([]string, len(levels)), Units: counts.units[i], Requests: counts.requests[i], Share: 1}
		for f, l := range levels {
			c.Variants[f] = t.Factors[f].Levels[l]
			c.Share *= shares[f][l]
		}
		observed[i], expected[i] = c.Units, c.Share
		chk.Cells = append(chk.Cells, c)
	}
	chk.Result, chk.Note = runSRM(observed, expected, threshold)
	return chk
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

// progress computes the per-cell sample size (in units) of the planned
// terms, how far the cells' units are from the largest, and the
// anytime-valid results (whose mixture the plan fixes).
func (r *Report) progress(w subset.WindowCells, counts cellCounts, vp *assign.Experiment, vpOK bool, now time.Time) {
	p := &r.Progress
	p.CellsTotal = len(counts.units)
	p.ETA = -1
	p.MinCellN = math.MaxInt64
	for _, n := range counts.units {
		p.MinCellN = min(p.MinCellN, n)
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
	p.Needs = r.plannedTerms(w, plan)
	r.anytime(plan, p.Needs)
	p.SD = plan.SD
	if r.Anova != nil && r.Anova.Residual.DF >= MinResidualDF && r.Anova.Residual.MS > 0 {
		p.SD = math.Sqrt(r.Anova.Residual.MS)
	}
	if !(plan.MDE > 0) || !(p.SD > 0) {
		r.note("sample size: the plan needs a minimum detectable effect and a standard deviation (or %d residual df of data)", MinResidualDF)
		return
	}
	for i := range p.Needs {
		n, err := termSampleSize(r.Table, p.Needs[i], p.SD, plan)
		if err != nil {
			r.note("sample size of %s: %v", p.Needs[i].Name, err)
			return
		}
		p.Needs[i].NeededPerCell = n
		p.NeededPerCell = max(p.NeededPerCell, n)
	}
	var have float64
	for _, n := range counts.units {
		have += float64(min(n, p.NeededPerCell))
		if n >= p.NeededPerCell {
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
		r.note("the window closed on %s before every cell reached %d units; it collects no more requests",
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
