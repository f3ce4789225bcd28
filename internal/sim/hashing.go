package sim

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
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
	vi, ok := c.index[opt.Viewpoint]
	if !ok {
		return nil, fmt.Errorf("check hashing: unknown viewpoint %q", opt.Viewpoint)
	}
	sub := c.subs[vi]
	var members []int
	var factors []analysis.Factor
	for _, m := range sub.Members {
		j := c.index[m.Test]
		x := c.tests[j].x
		if x.Layer != "" || len(x.Targeting) > 0 {
			return nil, fmt.Errorf("check hashing: member %s has a layer or targeting", x.ID)
		}
		members = append(members, j)
		factors = append(factors, analysis.Factor{Name: x.ID, Levels: c.tests[j].variants[:]})
	}
	k := len(members)
	K := 1 << k
	if opt.Units == 0 {
		opt.Units = 50 * K
	}
	if opt.Reps == 0 {
		opt.Reps = 200
	}
	if opt.Level == 0 {
		opt.Level = 0.95
	}
	if opt.Units <= 0 || opt.Units%K != 0 || opt.Reps < 1 || !(opt.Level > 0 && opt.Level < 1) {
		return nil, fmt.Errorf("check hashing: units %d (want a positive multiple of %d), reps %d, level %v",
			opt.Units, K, opt.Reps, opt.Level)
	}
	metric := c.tests[vi].metric
	ct := &c.truths[metric]
	means := c.trueMeans(metric, members)

	// The terms: every main effect, then every interaction, in R's order
	// as analysis.Estimate lists them.
	type termDef struct {
		name  string
		k     contrast
		main  string // variant name for main effects
		truth float64
	}
	var terms []termDef
	table0 := &analysis.CellTable{Factors: factors}
	for _, fm := range termMasks(k) {
		var sign uint64
		for f := range k {
			if fm&(1<<f) != 0 {
				sign |= 1 << (k - 1 - f)
			}
		}
		td := termDef{name: table0.TermName(fm), k: contrast{sign: sign}}
		if bits.OnesCount64(fm) == 1 {
			td.main = factors[bits.TrailingZeros64(fm)].Levels[1]
		}
		td.truth = td.k.onMeans(means)
		terms = append(terms, td)
	}

	res := &HashingResult{Scenario: sc.Name, Viewpoint: opt.Viewpoint, Cells: K, Units: opt.Units, Reps: opt.Reps, Level: opt.Level}
	for _, f := range factors {
		res.Factors = append(res.Factors, f.Name)
	}
	type acc struct {
		counts  []int64
		rejects int
		est     [][]float64
		cover   []int
	}
	accs := make([]acc, len(Allocations))
	for a := range accs {
		accs[a] = acc{counts: make([]int64, K), est: make([][]float64, len(terms)), cover: make([]int, len(terms))}
	}
	salts := make([]string, k)
	totals := make([]uint32, k)
	for f, j := range members {
		salts[f] = c.tests[j].x.EffectiveSalt()
		totals[f] = c.tests[j].x.Variants[0].Weight + c.tests[j].x.Variants[1].Weight
	}
	z := make([]float64, opt.Units)
	ids := make([]string, opt.Units)
	cellOf := make([]int, opt.Units)
	noiseSeed := opt.Seed ^ assign.Hash("sim-hashing", opt.Viewpoint)
	for rep := range opt.Reps {
		rng := repRand(noiseSeed, rep)
		for u := range z {
			z[u] = rng.NormFloat64()
			ids[u] = "user-" + strconv.Itoa(rep*opt.Units+u+1)
		}
		perm := rng.Perm(opt.Units)
		for a, alloc := range Allocations {
			for u, id := range ids {
				switch alloc {
				case Designed:
					cellOf[u] = perm[u] % K
				default:
					cellOf[u] = brokenOrHashedCell(c, alloc, members, salts, totals, id)
				}
			}
			cells := make([]analysis.CellStats, K)
			for u := range ids {
				cell := cellOf[u]
				cells[cell].Add(ct.Value(means[cell], z[u]))
			}
			counts := make([]int64, K)
			for i := range cells {
				counts[i] = cells[i].N
				accs[a].counts[i] += cells[i].N
			}
			if srm, err := analysis.SRM(counts, equalWeights(K), 0); err == nil && srm.P < 0.05 {
				accs[a].rejects++
			}
			table := &analysis.CellTable{Factors: factors, Cells: cells}
			est, err := analysis.Estimate(table, opt.Level)
			if err != nil {
				continue
			}
			for ti, td := range terms {
				var e estimate
				if td.main != "" {
					e = fromEffect(est.Effect(td.name, td.main))
				} else {
					e = fromContrast(est.Interaction(td.name))
				}
				if !e.ok {
					continue
				}
				accs[a].est[ti] = append(accs[a].est[ti], e.est)
				if e.lo <= td.truth && td.truth <= e.hi {
					accs[a].cover[ti]++
				}
			}
		}
	}
	for a, alloc := range Allocations {
		ar := AllocationResult{Allocation: alloc, RepRejectRate: float64(accs[a].rejects) / float64(opt.Reps)}
		if srm, err := analysis.SRM(accs[a].counts, equalWeights(K), 0); err == nil {
			ar.PooledChiSquare, ar.PooledDF, ar.PooledP = srm.ChiSquare, srm.DF, srm.P
		}
		for ti, td := range terms {
			d := TermDistribution{Term: td.name, Truth: td.truth, Reps: len(accs[a].est[ti])}
			if d.Reps > 0 {
				sm := summarize(accs[a].est[ti])
				d.Mean, d.SD = sm.Mean, sm.SD
				d.Coverage = float64(accs[a].cover[ti]) / float64(d.Reps)
			}
			ar.Terms = append(ar.Terms, d)
		}
		res.Results = append(res.Results, ar)
	}
	return res, nil
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
