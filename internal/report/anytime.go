package report

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/subset"
)

// The verdicts of the stopping rule on one term (TermDecision.Verdict).
const (
	// Significant: the term's anytime-valid p is at most the plan's alpha.
	Significant = "significant"
	// Futile: the term's confidence sequences lie within ± its minimum
	// detectable effect.
	Futile = "futile"
	// Open: neither yet.
	Open = "open"
)

// PlannedTerm is one term the viewpoint's owner cares about: its main
// effect, or an interaction of plan.interactions whose other test is in
// the subset.
type PlannedTerm struct {
	// Name is the term as the ANOVA names it ("vp", "vp:mem").
	Name string
	// Factors are the term's factor indices in the cell table.
	Factors []int
	// MDE is the plan's minimum detectable effect: a difference of means
	// for the main effect, a difference of differences for an interaction.
	MDE float64
	// NeededPerCell is the per-cell units its fixed-horizon test needs
	// (0 when unknown).
	NeededPerCell int64
}

// TermDecision is the stopping rule's verdict on one planned term.
type TermDecision struct {
	Term string
	// MDE is the futility bound (the plan's, on the scale of the term's
	// confidence sequences).
	MDE float64
	// P is the term's anytime-valid p-value (1 when not tested).
	P       float64
	Verdict string // Significant, Futile or Open
	Note    string
}

// Decision is the anytime-valid stopping rule: Decided when every planned
// term is Significant or Futile.
type Decision struct {
	Decided bool
	Terms   []TermDecision
	// FirstTime and FirstUnits are the first look of the window at which
	// the rule decided (the window's units then), as a Reader's History
	// saw it; zero when it has not, or without a History.
	FirstTime  time.Time
	FirstUnits int64
}

// plannedTerms returns the viewpoint's main effect and the interactions
// of its plan whose other test is a factor of the window (or a test of a
// layer factor), noting each named test that is not in the subset.
func (r *Report) plannedTerms(w subset.WindowCells, plan assign.Plan) []PlannedTerm {
	terms := []PlannedTerm{{Name: w.Members[0].Test, Factors: []int{0}, MDE: plan.MDE}}
	for i, x := range plan.Interactions {
		f := factorOf(w, x.With)
		if f <= 0 {
			r.note("plan.interactions[%d]: test %q is not in this subset (subsets follow the service graph); its interaction is neither powered nor analysed here", i, x.With)
			continue
		}
		terms = append(terms, PlannedTerm{Name: r.Table.TermName(1 | 1<<f), Factors: []int{0, f}, MDE: x.MDE})
	}
	return terms
}

// factorOf returns the index of the window's factor that is test, or
// holds it (a layer factor), or -1.
func factorOf(w subset.WindowCells, test string) int {
	for f, m := range w.Members {
		if m.Test == test && !m.IsLayer() {
			return f
		}
		for _, t := range m.Tests {
			if t.Test == test {
				return f
			}
		}
	}
	return -1
}

// termDF returns the numerator df of the term over factors (the product
// of their levels − 1).
func termDF(t *analysis.CellTable, factors []int) int {
	u := 1
	for _, f := range factors {
		u *= len(t.Factors[f].Levels) - 1
	}
	return u
}

// termSampleSize is the per-cell units of term's fixed-horizon F test
// with standard deviation sd: analysis.SampleSizeTerm, whose MDE for a
// term of order k is the contrast's difference of (k−1)-fold differences
// over 2^(k−1).
func termSampleSize(t *analysis.CellTable, term PlannedTerm, sd float64, plan assign.Plan) (int64, error) {
	mde := term.MDE / math.Exp2(float64(len(term.Factors)-1))
	return unitsPerCell(termDF(t, term.Factors), len(t.Cells), mde, sd, plan.Alpha, plan.Power)
}

// anytime computes the anytime-valid results and the stopping rule.
func (r *Report) anytime(plan assign.Plan, terms []PlannedTerm) {
	if r.Anova == nil || r.Table == nil {
		return
	}
	opt, err := AnytimeOptions(r.Table, plan, terms, r.Aggregate)
	if err != nil {
		r.note("anytime-valid results: %v", err)
		return
	}
	av, err := analysis.AnytimeValid(r.Table, opt)
	if err != nil {
		r.note("anytime-valid results: %v", err)
		return
	}
	r.Anytime = av
	r.Decision = Decide(av, terms)
}

// AnytimeOptions are the options of the report's analysis.AnytimeValid
// for table t (only its design is read) under plan (defaults applied)
// with the planned terms: level plan.Alpha, the mixture tuned by
// MixturePhi to the horizon n*, the largest per-cell need of the terms
// computed with the plan's own SD (never the observed one: the mixture
// must be fixed before the data), and the robust version for an any
// metric (a ratio table always gets it). It fails without plan.SD.
func AnytimeOptions(t *analysis.CellTable, plan assign.Plan, terms []PlannedTerm, agg assign.Aggregate) (analysis.AnytimeOptions, error) {
	if !(plan.SD > 0) {
		return analysis.AnytimeOptions{}, errors.New("the plan has no standard deviation (plan.sd), which fixes the mixture before the data; none computed")
	}
	var horizon int64
	for _, term := range terms {
		n, err := termSampleSize(t, term, plan.SD, plan)
		if err != nil {
			return analysis.AnytimeOptions{}, fmt.Errorf("the planned horizon of %s: %w", term.Name, err)
		}
		horizon = max(horizon, n)
	}
	return analysis.AnytimeOptions{Alpha: plan.Alpha, Phi: analysis.MixturePhi(plan.Alpha, float64(horizon)), SD: plan.SD,
		Robust: agg == assign.AggregateAny}, nil
}

// Decide applies the stopping rule to the planned terms: a term is
// Significant when its anytime-valid p is at most av.Alpha; else Futile
// when its confidence sequences are bounded and lie within ±MDE (for the
// main effect every variant's effect, for an interaction its contrast,
// which exists for two-level factors only); else Open. The decision is
// reached when no term is Open.
func Decide(av *analysis.AnytimeResults, terms []PlannedTerm) Decision {
	d := Decision{Decided: len(terms) > 0}
	for _, term := range terms {
		td := TermDecision{Term: term.Name, MDE: term.MDE, P: 1, Verdict: Open}
		row := av.Term(term.Name)
		switch {
		case row == nil:
			td.Note = "no such term"
		case !row.Tested:
			td.Note = row.Note
		case row.P <= av.Alpha:
			td.P, td.Verdict = row.P, Significant
		default:
			td.P = row.P
			if ok, note := futile(av, term); ok {
				td.Verdict = Futile
			} else {
				td.Note = note
			}
		}
		d.Decided = d.Decided && td.Verdict != Open
		d.Terms = append(d.Terms, td)
	}
	return d
}

// futile reports whether term's confidence sequences all lie within
// ±term.MDE, or says why futility cannot be declared.
func futile(av *analysis.AnytimeResults, term PlannedTerm) (bool, string) {
	var seqs []*analysis.AnytimeEstimate
	if len(term.Factors) == 1 {
		for i := range av.Effects {
			if len(av.Effects[i].Factors) == 1 && av.Effects[i].Factors[0] == term.Factors[0] {
				seqs = append(seqs, &av.Effects[i])
			}
		}
	} else if e := av.Interaction(term.Name); e != nil {
		seqs = append(seqs, e)
	} else {
		return false, "futility needs the interaction's contrast, which only two-level factors have; only significance can decide it"
	}
	for _, e := range seqs {
		if !e.Bounded {
			return false, e.Note
		}
		if e.CS.Lo < -term.MDE || e.CS.Hi > term.MDE {
			return false, ""
		}
	}
	return len(seqs) > 0, ""
}

// firstDecided says when the rule first decided, or "".
func (r *Report) firstDecided() string {
	d := r.Decision
	if d.FirstTime.IsZero() {
		return ""
	}
	return fmt.Sprintf(" since %s UTC at %d units", d.FirstTime.UTC().Format("2006-01-02 15:04:05"), d.FirstUnits)
}

// StatusLine says which rule the status follows and what it means for
// reading the results, e.g. "DECIDED (anytime-valid: every planned term
// significant or futile; the fixed-horizon results are valid only at 120
// units per cell, the smallest cell has 64)".
func (r *Report) StatusLine() string {
	p := r.Progress
	horizon := "the fixed horizon is unknown"
	if p.NeededPerCell > 0 {
		horizon = fmt.Sprintf("the fixed-horizon results are valid only at %d units per cell, the smallest cell has %d", p.NeededPerCell, p.MinCellN)
	}
	switch r.Status {
	case Complete:
		return fmt.Sprintf("COMPLETE (fixed horizon: every cell has ≥ %d units; the fixed-horizon results are valid now, read once)", p.NeededPerCell)
	case Decided:
		return "DECIDED (anytime-valid: every planned term is significant or futile" + r.firstDecided() + ", the test may stop now; " + horizon + ")"
	}
	if r.Anytime == nil {
		return "COLLECTING (" + horizon + "; no anytime-valid results)"
	}
	if d := r.Decision; !d.FirstTime.IsZero() {
		return "COLLECTING (anytime-valid results are valid now; the rule decided" + r.firstDecided() + " but does not now; " + horizon + ")"
	}
	return "COLLECTING (anytime-valid results are valid now; " + horizon + ")"
}
