package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
)

// Allocation is a way to put units into the cells of a subset's factorial.
type Allocation int

const (
	// Hashed is the real thing: each member test's variant from the
	// assign.Engine (its own salt), units "user-1", "user-2", ….
	Hashed Allocation = iota
	// Designed is a designed balanced factorial: exactly N/2^k units per
	// cell, in a random order.
	Designed
	// SharedSalt is a broken assignment: every member hashes with the
	// viewpoint's salt, so all members' splits are the same split.
	SharedSalt
	// WeakHash is a broken assignment: variant = FNV-1a-32(salt + "/" +
	// unit) mod 2. FNV's lowest bit is the parity of the input bytes' low
	// bits, so two salts give the same or the opposite split.
	WeakHash
	// HalfSharedSalt is a broken assignment: the members other than the
	// viewpoint use the viewpoint's salt for about half of the units (a
	// partial correlation of 1/2).
	HalfSharedSalt
)

// Allocations lists the allocations in report order.
var Allocations = []Allocation{Hashed, Designed, SharedSalt, WeakHash, HalfSharedSalt}

// String returns hashed, designed, shared-salt, weak-hash or half-shared-salt.
func (a Allocation) String() string {
	switch a {
	case Hashed:
		return "hashed"
	case Designed:
		return "designed"
	case SharedSalt:
		return "shared-salt"
	case WeakHash:
		return "weak-hash"
	case HalfSharedSalt:
		return "half-shared-salt"
	}
	return fmt.Sprintf("Allocation(%d)", int(a))
}

// MarshalText implements encoding.TextMarshaler (String).
func (a Allocation) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler, the inverse of
// MarshalText.
func (a *Allocation) UnmarshalText(b []byte) error {
	for _, x := range Allocations {
		if x.String() == string(b) {
			*a = x
			return nil
		}
	}
	return fmt.Errorf("unknown allocation %q", b)
}

// HashingOptions configure CheckHashing.
type HashingOptions struct {
	// Viewpoint names the test whose subset is the factorial.
	Viewpoint string
	// Units per replication (a multiple of the number of cells; default
	// 50 per cell).
	Units int
	// Reps is the number of replications (default 200).
	Reps int
	// Seed seeds the outcome noise (and the designed allocation's order).
	Seed uint64
	// Level is the confidence level (default 0.95).
	Level float64
}

// TermDistribution is the distribution of one term's estimates over the
// replications under one allocation.
type TermDistribution struct {
	Term  string  `json:"term"` // "rec-model" for a main effect, "a:b" for a contrast
	Truth float64 `json:"truth"`
	// Reps counts the replications in which the term was estimable.
	Reps     int     `json:"reps"`
	Mean     float64 `json:"mean"`
	SD       float64 `json:"sd"`
	Coverage float64 `json:"coverage"`
}

// AllocationResult is what one allocation gave over the replications.
type AllocationResult struct {
	Allocation Allocation `json:"allocation"`
	// PooledChiSquare is Pearson's χ² of the cell counts summed over all
	// replications against equal cells (DF = cells − 1), PooledP its p.
	PooledChiSquare float64 `json:"pooled_chi_square"`
	PooledDF        int     `json:"pooled_df"`
	PooledP         float64 `json:"pooled_p"`
	// RepRejectRate is the fraction of replications whose own χ² test of
	// the cell counts has p < 0.05 (about 0.05 for a fair multinomial).
	RepRejectRate float64            `json:"rep_reject_rate"`
	Terms         []TermDistribution `json:"terms"`
}

// HashingResult compares allocations of the same units and outcomes.
type HashingResult struct {
	Scenario  string             `json:"scenario"`
	Viewpoint string             `json:"viewpoint"`
	Factors   []string           `json:"factors"`
	Cells     int                `json:"cells"`
	Units     int                `json:"units"`
	Reps      int                `json:"reps"`
	Level     float64            `json:"level"`
	Results   []AllocationResult `json:"results"`
}

// Result returns the result of allocation a, or nil.
func (h *HashingResult) Result(a Allocation) *AllocationResult {
	for i := range h.Results {
		if h.Results[i].Allocation == a {
			return &h.Results[i]
		}
	}
	return nil
}

// CheckHashing tests the method's first hypothesis directly: that
// orthogonally hashed traffic gives cell counts and estimates
// indistinguishable from a designed factorial allocation. For the
// viewpoint's subset (a 2^k factorial of the metric the viewpoint
// measures) every replication r takes the units user-(r·N+1) …
// user-(r·N+N), draws one noise value per unit from a PCG stream seeded
// from (Seed mixed with the viewpoint's id, r), and
// allocates the same units with the same noise in every Allocation; the
// outcome is the truth.Model's value for the cell's variants. Per allocation it
// reports the χ² of the cell counts against equal cells, and per term
// (main effects and interaction contrasts, from analysis.Estimate) the
// mean, SD and interval coverage of the estimates. See Indistinguishable
// for the verdict.
//
// The subset's members must randomize every unit (no targeting, no
// layer), and the scenario must be one Evaluate accepts.
func CheckHashing(sc *Scenario, opt HashingOptions) (*HashingResult, error) {
	c, err := sc.compile()
	if err != nil {
		return nil, err
	}
	h, err := newHashingRun(c, opt)
	if err != nil {
		return nil, err
	}
	noiseSeed := h.opt.Seed ^ assign.Hash("sim-hashing", h.opt.Viewpoint)
	for rep := range h.opt.Reps {
		rng := repRand(noiseSeed, rep)
		h.drawUnits(rng, rep)
		perm := rng.Perm(h.opt.Units)
		for a, alloc := range Allocations {
			h.allocate(alloc, perm)
			h.tallies[a].add(h.fill(), h.factors, h.terms, h.opt.Level)
		}
	}
	return h.result(sc.Name), nil
}

// hashingRun is CheckHashing at work: the viewpoint's factorial and its
// terms, the current replication's units with their noise and cells, and
// what every allocation gave so far.
type hashingRun struct {
	c       *compiled
	opt     HashingOptions
	members []int // test indices, viewpoint first
	factors []analysis.Factor
	cells   int            // 2^k
	metric  *compiledTruth // the viewpoint's metric
	means   []float64      // true cell means
	terms   []termDef      // every term, in analysis.Estimate's order
	salts   []string       // per member: its salt
	totals  []uint32       // per member: the sum of its variants' weights
	tallies []hashingTally // per allocation, in Allocations order
	z       []float64      // per unit of the replication: its noise
	ids     []string       // per unit: its id
	cellOf  []int          // per unit: its cell under the current allocation
}

// termDef is one term of the factorial with its truth: a main effect
// (variant names its treatment) or an interaction contrast.
type termDef struct {
	name    string
	k       contrast
	variant string // the treatment, for a main effect; "" for an interaction
	truth   float64
}

// hashingTally is what one allocation gave over the replications so far.
type hashingTally struct {
	counts  []int64     // units per cell
	rejects int         // replications whose own χ² of the counts has p < 0.05
	est     [][]float64 // per term: its estimates
	cover   []int       // per term: the intervals that contain the truth
}

// newHashingRun returns the run of CheckHashing on the viewpoint's subset
// of c: its factors, with options defaulted and checked, and its terms.
// Every member must randomize every unit (no layer, no targeting).
func newHashingRun(c *compiled, opt HashingOptions) (*hashingRun, error) {
	vi, ok := c.index[opt.Viewpoint]
	if !ok {
		return nil, fmt.Errorf("check hashing: unknown viewpoint %q", opt.Viewpoint)
	}
	h := &hashingRun{c: c, metric: &c.truths[c.tests[vi].metric]}
	for _, m := range c.subs[vi].Members {
		j := c.index[m.Test]
		x := c.tests[j].x
		if x.Layer != "" || len(x.Targeting) > 0 {
			return nil, fmt.Errorf("check hashing: member %s has a layer or targeting", x.ID)
		}
		h.members = append(h.members, j)
		h.factors = append(h.factors, analysis.Factor{Name: x.ID, Levels: c.tests[j].variants[:]})
		h.salts = append(h.salts, x.EffectiveSalt())
		h.totals = append(h.totals, x.Variants[0].Weight+x.Variants[1].Weight)
	}
	h.cells = 1 << len(h.members)
	if err := opt.defaults(h.cells); err != nil {
		return nil, err
	}
	h.opt = opt
	h.means = c.trueMeans(c.tests[vi].metric, h.members)
	h.terms = termDefs(h.factors, h.means)
	h.tallies = make([]hashingTally, len(Allocations))
	for a := range h.tallies {
		h.tallies[a] = hashingTally{counts: make([]int64, h.cells), est: make([][]float64, len(h.terms)), cover: make([]int, len(h.terms))}
	}
	h.z, h.ids, h.cellOf = make([]float64, opt.Units), make([]string, opt.Units), make([]int, opt.Units)
	return h, nil
}

// defaults fills in the options' defaults for a factorial of the given
// number of cells (50 units per cell, 200 replications, level 0.95) and
// checks them.
func (o *HashingOptions) defaults(cells int) error {
	if o.Units == 0 {
		o.Units = 50 * cells
	}
	if o.Reps == 0 {
		o.Reps = 200
	}
	if o.Level == 0 {
		o.Level = 0.95
	}
	if o.Units <= 0 || o.Units%cells != 0 || o.Reps < 1 || !(o.Level > 0 && o.Level < 1) {
		return fmt.Errorf("check hashing: units %d (want a positive multiple of %d), reps %d, level %v",
			o.Units, cells, o.Reps, o.Level)
	}
	return nil
}

// termDefs returns every term of the factorial over factors, main effects
// then interactions in R's order as analysis.Estimate lists them, with
// its truth from the true cell means.
func termDefs(factors []analysis.Factor, means []float64) []termDef {
	k := len(factors)
	table := &analysis.CellTable{Factors: factors}
	var terms []termDef
	for _, fm := range termMasks(k) {
		var sign uint64
		for f := range k {
			if fm&(1<<f) != 0 {
				sign |= 1 << (k - 1 - f)
			}
		}
		td := termDef{name: table.TermName(fm), k: contrast{sign: sign}}
		if bits.OnesCount64(fm) == 1 {
			td.variant = factors[bits.TrailingZeros64(fm)].Levels[1]
		}
		td.truth = td.k.onMeans(means)
		terms = append(terms, td)
	}
	return terms
}

// drawUnits draws replication rep's units: ids user-(rep·N+1) …
// user-(rep·N+N) and one noise value each from rng.
func (h *hashingRun) drawUnits(rng *rand.Rand, rep int) {
	for u := range h.z {
		h.z[u] = rng.NormFloat64()
		h.ids[u] = "user-" + strconv.Itoa(rep*h.opt.Units+u+1)
	}
}

// allocate puts every unit of the replication into a cell (h.cellOf)
// under alloc; the designed allocation deals them out in the order perm.
func (h *hashingRun) allocate(alloc Allocation, perm []int) {
	for u, id := range h.ids {
		if alloc == Designed {
			h.cellOf[u] = perm[u] % h.cells
		} else {
			h.cellOf[u] = brokenOrHashedCell(h.c, alloc, h.members, h.salts, h.totals, id)
		}
	}
}

// fill returns the cells of the current allocation: each unit's value is
// the truth's for its cell's variants with the unit's noise.
func (h *hashingRun) fill() []analysis.CellStats {
	cells := make([]analysis.CellStats, h.cells)
	for u, cell := range h.cellOf {
		cells[cell].Add(h.metric.Value(h.means[cell], h.z[u]))
	}
	return cells
}

// add tallies one replication's cells: their counts and χ² test, and the
// estimate of every term (from analysis.Estimate at level) that is
// estimable, with whether its interval holds the truth.
func (t *hashingTally) add(cells []analysis.CellStats, factors []analysis.Factor, terms []termDef, level float64) {
	counts := make([]int64, len(cells))
	for i := range cells {
		counts[i] = cells[i].N
		t.counts[i] += cells[i].N
	}
	if srm, err := analysis.SRM(counts, equalWeights(len(cells)), 0); err == nil && srm.P < 0.05 {
		t.rejects++
	}
	est, err := analysis.Estimate(&analysis.CellTable{Factors: factors, Cells: cells}, level)
	if err != nil {
		return
	}
	for ti, td := range terms {
		var e estimate
		if td.variant != "" {
			e = fromEffect(est.Effect(td.name, td.variant))
		} else {
			e = fromContrast(est.Interaction(td.name))
		}
		if !e.ok {
			continue
		}
		t.est[ti] = append(t.est[ti], e.est)
		if e.lo <= td.truth && td.truth <= e.hi {
			t.cover[ti]++
		}
	}
}

// result summarises the run: per allocation, the pooled χ² of its cell
// counts, the rate of replications whose own χ² rejects, and the
// distribution of every term's estimates.
func (h *hashingRun) result(scenario string) *HashingResult {
	res := &HashingResult{Scenario: scenario, Viewpoint: h.opt.Viewpoint, Cells: h.cells, Units: h.opt.Units,
		Reps: h.opt.Reps, Level: h.opt.Level}
	for _, f := range h.factors {
		res.Factors = append(res.Factors, f.Name)
	}
	for a, alloc := range Allocations {
		t := &h.tallies[a]
		ar := AllocationResult{Allocation: alloc, RepRejectRate: float64(t.rejects) / float64(h.opt.Reps)}
		if srm, err := analysis.SRM(t.counts, equalWeights(h.cells), 0); err == nil {
			ar.PooledChiSquare, ar.PooledDF, ar.PooledP = srm.ChiSquare, srm.DF, srm.P
		}
		for ti, td := range h.terms {
			d := TermDistribution{Term: td.name, Truth: td.truth, Reps: len(t.est[ti])}
			if d.Reps > 0 {
				sm := summarize(t.est[ti])
				d.Mean, d.SD = sm.Mean, sm.SD
				d.Coverage = float64(t.cover[ti]) / float64(d.Reps)
			}
			ar.Terms = append(ar.Terms, d)
		}
		res.Results = append(res.Results, ar)
	}
	return res
}

// termMasks returns the factor masks (bit f: factor f) of every term of a
// k-factor design in R's order: by degree, then lexicographically.
func termMasks(k int) []uint64 {
	var out []uint64
	for deg := 1; deg <= k; deg++ {
		var rec func(start int, mask uint64, left int)
		rec = func(start int, mask uint64, left int) {
			if left == 0 {
				out = append(out, mask)
				return
			}
			for f := start; f < k; f++ {
				rec(f+1, mask|1<<f, left-1)
			}
		}
		rec(0, 0, deg)
	}
	return out
}

func equalWeights(k int) []float64 {
	w := make([]float64, k)
	for i := range w {
		w[i] = 1
	}
	return w
}

// brokenOrHashedCell returns the cell of unit under a hashed or broken
// allocation.
func brokenOrHashedCell(c *compiled, alloc Allocation, members []int, salts []string, totals []uint32, unit string) int {
	k := len(members)
	cell := 0
	for f, j := range members {
		t := &c.tests[j]
		var treat bool
		switch alloc {
		case Hashed:
			v, _ := c.eng.HashVariant(t.id, unit)
			treat = v == t.variants[1]
		case SharedSalt:
			treat = assign.HashBucket(salts[0], unit, totals[f]) >= t.x.Variants[0].Weight
		case WeakHash:
			h := fnv.New32a()
			h.Write([]byte(salts[f] + "/" + unit))
			treat = h.Sum32()%2 == 1
		case HalfSharedSalt:
			salt := salts[f]
			if f > 0 && assign.HashBucket("half-shared-salt", unit, 2) == 0 {
				salt = salts[0]
			}
			treat = assign.HashBucket(salt, unit, totals[f]) >= t.x.Variants[0].Weight
		}
		if treat {
			cell |= 1 << (k - 1 - f)
		}
	}
	return cell
}

// Indistinguishable reports whether allocation a gave results that the
// replications cannot tell apart from the designed allocation, with
// tolerances that shrink with the number of replications R:
//
//   - the pooled χ² of a's cell counts has p ≥ 0.001, and the fraction of
//     replications whose own χ² has p < 0.05 is at most
//     0.05 + 4·√(0.05·0.95/R);
//   - every term is estimable in every replication;
//   - per term, a's mean estimate is within 4 standard errors (SD/√R) of
//     the truth, and so is the designed allocation's;
//   - per term, the ratio of a's SD of estimates to the designed one's is
//     within [e^(−4/√R), e^(4/√R)·√(1 + 2^k/N)]: the log of a ratio of two
//     SDs from R replications has a standard error of about 1/√R, and
//     unequal cells cost a factor of about √(1 + 2^k/N) in SD;
//   - per term, a's coverage is within 4·√(level·(1−level)/R) of level.
//
// It returns nil when all hold, else an error listing what failed.
func (h *HashingResult) Indistinguishable(a Allocation) error {
	fails := h.failures(a)
	if len(fails) == 0 {
		return nil
	}
	errs := make([]error, len(fails))
	for i, f := range fails {
		errs[i] = errors.New(f.msg)
	}
	return fmt.Errorf("%s allocation is distinguishable from a designed one: %w", a, errors.Join(errs...))
}

// failure is one failed check: its kind (for the report) and message.
type failure struct{ kind, msg string }

func (h *HashingResult) failures(a Allocation) []failure {
	got, ref := h.Result(a), h.Result(Designed)
	if got == nil || ref == nil {
		return []failure{{"missing", fmt.Sprintf("allocation %s or designed not in the result", a)}}
	}
	R := float64(h.Reps)
	var fs []failure
	add := func(kind, format string, args ...any) { fs = append(fs, failure{kind, fmt.Sprintf(format, args...)}) }
	if got.PooledP < 0.001 {
		add("cell counts", "pooled χ² = %.1f on %d df (p = %.2g): cell counts are not uniform",
			got.PooledChiSquare, got.PooledDF, got.PooledP)
	}
	if lim := 0.05 + 4*math.Sqrt(0.05*0.95/R); got.RepRejectRate > lim {
		add("cell counts", "%.1f%% of replications fail the χ² test at 0.05 (limit %.1f%%)", 100*got.RepRejectRate, 100*lim)
	}
	covTol := 4 * math.Sqrt(h.Level*(1-h.Level)/R)
	lo, hi := math.Exp(-4/math.Sqrt(R)), math.Exp(4/math.Sqrt(R))*math.Sqrt(1+float64(h.Cells)/float64(h.Units))
	for i, t := range got.Terms {
		r := ref.Terms[i]
		if t.Reps < h.Reps {
			add("not estimable", "%s: estimable in %d of %d replications", t.Term, t.Reps, h.Reps)
			continue
		}
		if d := math.Abs(t.Mean - t.Truth); d > 4*t.SD/math.Sqrt(R) {
			add("bias", "%s: mean estimate %.3g is %.3g from the truth %.3g (SE %.3g)", t.Term, t.Mean, d, t.Truth, t.SD/math.Sqrt(R))
		}
		if d := math.Abs(r.Mean - r.Truth); d > 4*r.SD/math.Sqrt(R) {
			add("bias", "%s: designed mean estimate %.3g is off the truth %.3g", t.Term, r.Mean, r.Truth)
		}
		if ratio := t.SD / r.SD; !(ratio >= lo && ratio <= hi) {
			add("SD", "%s: SD of estimates %.3g vs designed %.3g (ratio %.2f, want %.2f–%.2f)", t.Term, t.SD, r.SD, ratio, lo, hi)
		}
		if d := math.Abs(t.Coverage - h.Level); d > covTol {
			add("coverage", "%s: coverage %.3f (want %.2f ± %.3f)", t.Term, t.Coverage, h.Level, covTol)
		}
	}
	return fs
}

// describe returns a short verdict for the report.
func (h *HashingResult) describe(a Allocation) string {
	if a == Designed {
		return "reference"
	}
	fs := h.failures(a)
	if len(fs) == 0 {
		return "indistinguishable"
	}
	var kinds []string
	for _, f := range fs {
		if !slices.Contains(kinds, f.kind) {
			kinds = append(kinds, f.kind)
		}
	}
	return "distinguishable: " + strings.Join(kinds, ", ")
}
