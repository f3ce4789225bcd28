package sim

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
)

// Strategy is one way to run a scenario's tests and analyse them.
type Strategy int

const (
	// OneAtATime runs each test alone, the others at their control, one
	// after the other; each is a two-sample comparison. Units needed: the
	// sum over tests.
	OneAtATime Strategy = iota
	// Orthogonal runs all tests at once on orthogonally hashed traffic and
	// analyses each alone with a two-sample comparison. Units needed: the
	// largest test's.
	Orthogonal
	// FullFactorial runs all tests at once and analyses one factorial
	// over all of them (a layer is one factor whose levels are its tests'
	// arms), with abmesh's per-cell stop rule. Only units that every test
	// randomizes count.
	FullFactorial
	// Subsets is abmesh: every test's subset (subset.Compute on the graph)
	// is a 2^k factorial on the same orthogonally hashed traffic, stopped
	// by the per-cell rule of its viewpoint's plan. Units needed: the
	// largest subset's.
	Subsets
)

// Strategies lists the strategies in report order.
var Strategies = []Strategy{OneAtATime, Orthogonal, FullFactorial, Subsets}

// String returns one-at-a-time, orthogonal, full-factorial or abmesh.
func (s Strategy) String() string {
	switch s {
	case OneAtATime:
		return "one-at-a-time"
	case Orthogonal:
		return "orthogonal"
	case FullFactorial:
		return "full-factorial"
	case Subsets:
		return "abmesh"
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// Label returns the strategy's name in the report, e.g. "(d) abmesh subsets".
func (s Strategy) Label() string {
	switch s {
	case OneAtATime:
		return "(a) one test at a time"
	case Orthogonal:
		return "(b) orthogonal, two-sample each"
	case FullFactorial:
		return "(c) one full factorial"
	case Subsets:
		return "(d) abmesh subset factorials"
	}
	return s.String()
}

// QuantityKind says what a Quantity estimates.
type QuantityKind int

const (
	// MainEffect is a test's main effect on its metric: with sum-to-zero
	// coding, the Type III main effect, i.e. the treatment-minus-control
	// difference of the unweighted marginal means, the simple effects
	// averaged with equal weight over the levels of the other factors.
	MainEffect QuantityKind = iota
	// SimpleEffect is a test's effect with one interacting test held at
	// one variant (averaged with equal weight over the other factors):
	// "the effect of T if U ships" or "if U does not ship".
	SimpleEffect
	// Interaction is an interaction contrast (analysis.Contrast): the
	// difference of differences (of differences …) of unweighted means.
	Interaction
)

// String returns main, simple or interaction.
func (k QuantityKind) String() string {
	switch k {
	case MainEffect:
		return "main"
	case SimpleEffect:
		return "simple"
	case Interaction:
		return "interaction"
	}
	return fmt.Sprintf("QuantityKind(%d)", int(k))
}

// MarshalText implements encoding.TextMarshaler.
func (k QuantityKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Quantity is one estimand with its true value.
type Quantity struct {
	Kind QuantityKind `json:"kind"`
	// Test is the test whose effect it is; for an interaction, the
	// viewpoint whose metric and subset it is read in.
	Test string `json:"test"`
	// Given and GivenVariant fix the interacting test of a simple effect.
	Given        string `json:"given,omitempty"`
	GivenVariant string `json:"given_variant,omitempty"`
	// Term lists an interaction's tests, in the viewpoint's subset order.
	Term []string `json:"term,omitempty"`
	// Metric is the metric's Truth.Key.
	Metric string `json:"metric"`
	// Truth is the true value: the same contrast applied to the true cell
	// means (every factor at each level with equal weight; tests outside
	// the factors do not change it, since interactions lie inside subsets).
	Truth float64 `json:"truth"`
}

// Name returns a short label: "rec-model", "rec-model | ui-layout=two-column",
// "rec-model:ui-layout".
func (q Quantity) Name() string {
	switch q.Kind {
	case SimpleEffect:
		return q.Test + " | " + q.Given + "=" + q.GivenVariant
	case Interaction:
		return strings.Join(q.Term, ":")
	}
	return q.Test
}

// Options configure Evaluate.
type Options struct {
	// Reps is the number of replications (at least 1).
	Reps int
	// Seed makes the run reproducible: replication r draws its units and
	// noise from PCG(Seed, r) and names its units "s<Seed>-r<r>-user-<i>".
	Seed uint64
	// Workers run replications in parallel (default 2). The results do
	// not depend on it.
	Workers int
	// MaxUnits caps the units one replication may draw (default 2e6); a
	// strategy not done by then is counted as not finished.
	MaxUnits int
	// Level is the confidence level of intervals (default 0.95).
	Level float64
	// Progress, when set, is called after each replication with the number
	// done, from one goroutine at a time.
	Progress func(done, total int)
}

func (o *Options) defaults() error {
	if o.Reps < 1 {
		return fmt.Errorf("evaluate: reps = %d (want ≥ 1)", o.Reps)
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.MaxUnits <= 0 {
		o.MaxUnits = 2_000_000
	}
	if o.Level == 0 {
		o.Level = 0.95
	}
	if !(o.Level > 0 && o.Level < 1) {
		return fmt.Errorf("evaluate: level %v not in (0, 1)", o.Level)
	}
	return nil
}

// Summary describes a sample of numbers.
type Summary struct {
	Mean float64 `json:"mean"`
	SD   float64 `json:"sd"`
	Min  float64 `json:"min"`
	P5   float64 `json:"p5"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	Max  float64 `json:"max"`
}

func summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	var sum, ss float64
	for _, x := range s {
		sum += x
	}
	mean := sum / float64(len(s))
	for _, x := range s {
		ss += (x - mean) * (x - mean)
	}
	out := Summary{Mean: mean, Min: s[0], Max: s[len(s)-1],
		P5: quantile(s, 0.05), P50: quantile(s, 0.5), P95: quantile(s, 0.95)}
	if len(s) > 1 {
		out.SD = math.Sqrt(ss / float64(len(s)-1))
	}
	return out
}

// quantile of sorted s, linear interpolation (R's type 7).
func quantile(s []float64, p float64) float64 {
	h := p * float64(len(s)-1)
	lo := math.Floor(h)
	i := int(lo)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (h-lo)*(s[i+1]-s[i])
}

// EstimateStats summarise one strategy's estimates of one Quantity over
// the replications.
type EstimateStats struct {
	// Reps is the number of replications that produced an estimate; 0
	// when the strategy does not estimate the quantity.
	Reps int `json:"reps"`
	// Mean and SD of the estimates; Bias = Mean − Quantity.Truth.
	Mean float64 `json:"mean"`
	Bias float64 `json:"bias"`
	SD   float64 `json:"sd"`
	// Coverage is the fraction of intervals that contain the truth.
	Coverage float64 `json:"coverage"`
	// Rejected is the fraction of replications with p < the test's alpha:
	// the power (or detection rate) when the truth is not 0.
	Rejected float64 `json:"rejected"`
}

// StrategyResult is one strategy's outcome over all replications.
type StrategyResult struct {
	Strategy Strategy `json:"-"`
	Name     string   `json:"strategy"`
	Label    string   `json:"label"`
	// Cells is the number of cells of its largest design and PerCellN the
	// largest per-cell (per-arm) n its stop rule asks for.
	Cells    int   `json:"cells"`
	PerCellN int64 `json:"per_cell_n"`
	// PlannedUnits is what the stop rule needs if the cells filled exactly
	// evenly: cells × per-cell n / the fraction of units the design can
	// use, summed (one at a time) or maximised over its designs.
	PlannedUnits float64 `json:"planned_units"`
	// Units are the units drawn until every test's decision.
	Units Summary `json:"units"`
	// Finished counts the replications in which every decision was
	// reached within Options.MaxUnits.
	Finished int `json:"finished"`
	// TestUnits are, per test (Result.Tests order), the mean units until
	// that test's decision.
	TestUnits []float64 `json:"test_units"`
	// Estimates are per Quantity (Result.Quantities order).
	Estimates []EstimateStats `json:"estimates"`
	// InteractionTests is the number of interaction contrasts with true
	// value 0 tested per replication, FalseFindings the mean number of them
	// significant at the viewpoint's alpha, and FalseFindingRate their
	// ratio.
	InteractionTests float64 `json:"interaction_tests"`
	FalseFindings    float64 `json:"false_findings"`
	FalseFindingRate float64 `json:"false_finding_rate"`
}

// TestSummary describes one test of a scenario.
type TestSummary struct {
	ID             string   `json:"id"`
	ChangeService  string   `json:"change_service"`
	MeasureService string   `json:"measure_service"`
	Metric         string   `json:"metric"`
	MDE            float64  `json:"mde"`
	SD             float64  `json:"sd"`
	Alpha          float64  `json:"alpha"`
	Power          float64  `json:"power"`
	Eligible       float64  `json:"eligible"` // fraction of units the test randomizes
	Subset         []string `json:"subset"`   // viewpoint first
}

// Result is the evaluation of one scenario.
type Result struct {
	Scenario    string           `json:"scenario"`
	Description string           `json:"description"`
	Services    int              `json:"services"`
	Reps        int              `json:"reps"`
	Seed        uint64           `json:"seed"`
	Level       float64          `json:"level"`
	Tests       []TestSummary    `json:"tests"`
	Quantities  []Quantity       `json:"quantities"`
	Strategies  []StrategyResult `json:"strategies"`
}

// Strategy returns the result of s, or nil.
func (r *Result) Strategy(s Strategy) *StrategyResult {
	for i := range r.Strategies {
		if r.Strategies[i].Strategy == s {
			return &r.Strategies[i]
		}
	}
	return nil
}

// Quantity returns the index of the quantity with the given kind and
// Name (and, for interactions, viewpoint test), or -1.
func (r *Result) Quantity(kind QuantityKind, test, name string) int {
	for i, q := range r.Quantities {
		if q.Kind == kind && q.Test == test && q.Name() == name {
			return i
		}
	}
	return -1
}

// Evaluate simulates the scenario Options.Reps times and compares the
// strategies on the same traffic. In every replication one stream of
// units (ids "s<seed>-r<rep>-user-1", …, attributes and per-metric noise
// drawn from PCG(seed, rep)) is assigned by the real assign.Engine and
// fed to every strategy until its own stop rule is met; estimates are
// taken at that moment. One-at-a-time runs each test on the stream from
// its start, with only that test active (the same units and noise, as if
// in its own period). Replications run on Options.Workers goroutines; the
// result does not depend on their scheduling.
func Evaluate(ctx context.Context, sc *Scenario, opt Options) (*Result, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	c, err := sc.compile()
	if err != nil {
		return nil, err
	}
	r, err := newRunner(c, opt)
	if err != nil {
		return nil, err
	}
	reps := make([]repResult, opt.Reps)
	jobs := make(chan int)
	var (
		mu       sync.Mutex
		done     int
		firstErr error
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(opt.Workers, opt.Reps) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := r.newWorker()
			for rep := range jobs {
				res, err := w.replicate(ctx, rep)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				reps[rep] = res
				done++
				if opt.Progress != nil && err == nil {
					opt.Progress(done, opt.Reps)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for rep := range opt.Reps {
		select {
		case jobs <- rep:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return r.aggregate(reps), nil
}

// runner holds what every replication of a scenario shares.
type runner struct {
	c     *compiled
	opt   Options
	quant []Quantity
	qplan []quantPlan
	n     int // tests

	// (a), (b): per-arm n per test; (a) means of each arm with only the test active.
	nArm      []int64
	aloneMean [][2]float64

	full fullPlan
	subs []subPlan // per viewpoint (test order)

	planned [4]float64
	cells   [4]int
	perCell [4]int64
}

// quantPlan says how each strategy estimates a quantity.
type quantPlan struct {
	test   int      // the test (viewpoint) index
	full   contrast // on the full design, metric of the quantity
	fullM  int      // index into full.metrics
	sub    contrast // on the viewpoint's subset table (simple effects)
	subVar string   // the treatment name (main effects)
	name   string   // the interaction's term name in the subset table
}

// fullPlan is the full factorial's design: one bit per test outside
// layers; per layer, slot bits (which test's slice) and one variant bit.
type fullPlan struct {
	k        int
	cells    int
	varBit   []uint64 // per test: its variant bit
	slotMask []uint64 // per test: its layer's slot bits (0 outside layers)
	slotVal  []uint64 // per test: its slot value
	layers   [][]int  // tests of each layer group
	free     uint64   // mask of tests outside layers
	metrics  []int    // truth indices analysed (each some test's metric)
	metricOf []int    // per test: index into metrics
	nCell    int64
	elig     float64
	truth    [][]float64 // per metric: true cell means
	nulls    [][]contrast
	alpha    []float64 // per metric: alpha of its tests (the smallest)
}

// subPlan is one viewpoint's subset factorial.
type subPlan struct {
	members []int // test indices, viewpoint first
	mask    uint64
	k       int
	nCell   int64
	factors []analysis.Factor
	metric  int
	elig    float64
	nulls   []contrast // interaction contrasts whose truth is 0
	alpha   float64
}

func (s *subPlan) cellOf(served uint64) int {
	idx := 0
	for _, m := range s.members {
		idx <<= 1
		if served&(1<<m) != 0 {
			idx |= 1
		}
	}
	return idx
}

// trueMeans returns the true cell means of metric m over the 2^k cells
// of the given factors (factor f is cell bit k−1−f), other tests at their
// control.
func (c *compiled) trueMeans(m int, factors []int) []float64 {
	k := len(factors)
	out := make([]float64, 1<<k)
	for cell := range out {
		var served uint64
		for f, t := range factors {
			if cell&(1<<(k-1-f)) != 0 {
				served |= 1 << t
			}
		}
		out[cell] = c.truths[m].mean(served)
	}
	return out
}

const zeroTol = 1e-9

func newRunner(c *compiled, opt Options) (*runner, error) {
	n := len(c.tests)
	r := &runner{c: c, opt: opt, n: n, nArm: make([]int64, n), aloneMean: make([][2]float64, n)}
	// (a) and (b).
	for i, t := range c.tests {
		nt, err := analysis.SampleSizeTTest(t.mde/t.sd, t.alpha, t.power)
		if err != nil {
			return nil, fmt.Errorf("sample size of %s: %w", t.id, err)
		}
		r.nArm[i] = int64(math.Ceil(nt))
		ct := &c.truths[t.metric]
		r.aloneMean[i] = [2]float64{ct.mean(0), ct.mean(1 << i)}
		r.planned[OneAtATime] += 2 * float64(r.nArm[i]) / c.targetedProb(t.id)
		r.planned[Orthogonal] = math.Max(r.planned[Orthogonal], 2*float64(r.nArm[i])/t.elig)
		r.perCell[OneAtATime] = max(r.perCell[OneAtATime], r.nArm[i])
	}
	r.perCell[Orthogonal] = r.perCell[OneAtATime]
	r.cells[OneAtATime], r.cells[Orthogonal] = 2, 2

	if err := r.planFull(); err != nil {
		return nil, err
	}
	if err := r.planSubsets(); err != nil {
		return nil, err
	}
	r.planQuantities()
	return r, nil
}

func (r *runner) planFull() error {
	c := r.c
	f := &r.full
	n := r.n
	f.varBit, f.slotMask, f.slotVal = make([]uint64, n), make([]uint64, n), make([]uint64, n)
	f.metricOf = make([]int, n)
	bit := 0
	groups := map[int][]int{}
	var order []int
	for i, t := range c.tests {
		if t.layer < 0 {
			f.varBit[i] = 1 << bit
			f.free |= 1 << i
			bit++
			continue
		}
		if _, ok := groups[t.layer]; !ok {
			order = append(order, t.layer)
		}
		groups[t.layer] = append(groups[t.layer], i)
	}
	for _, g := range order {
		tests := groups[g]
		slotBits := bits.Len(uint(len(tests) - 1))
		var slotMask uint64
		for b := range slotBits {
			slotMask |= 1 << (bit + b)
		}
		vb := uint64(1) << (bit + slotBits)
		for _, i := range tests {
			f.varBit[i] = vb
			f.slotMask[i] = slotMask
			f.slotVal[i] = uint64(c.tests[i].slot) << bit
		}
		bit += slotBits + 1
		f.layers = append(f.layers, tests)
	}
	f.k = bit
	if f.k > 20 {
		return fmt.Errorf("full factorial: %d binary factors (at most 20)", f.k)
	}
	f.cells = 1 << f.k
	// Per-cell n: the largest any test's main effect needs; a layered
	// test's contrast uses only its slice's cells.
	ids := make([]string, n)
	for i, t := range c.tests {
		ids[i] = t.id
		cells := f.cells >> bits.OnesCount64(f.slotMask[i])
		nc, err := analysis.SampleSizeTerm(1, cells, t.mde, t.sd, t.alpha, t.power)
		if err != nil {
			return fmt.Errorf("full factorial: sample size of %s: %w", t.id, err)
		}
		f.nCell = max(f.nCell, int64(math.Ceil(nc)))
	}
	f.elig = c.targetedAllProb(ids)
	for _, tests := range f.layers {
		var frac float64
		for _, i := range tests {
			x := c.tests[i].x
			frac += float64(x.Slice.End-x.Slice.Start) / assign.LayerBuckets
		}
		f.elig *= frac
	}
	r.cells[FullFactorial] = f.cells
	r.perCell[FullFactorial] = f.nCell
	r.planned[FullFactorial] = float64(f.cells) * float64(f.nCell) / f.elig

	// Metrics analysed and their true cell means.
	seen := map[int]int{}
	for i, t := range c.tests {
		mi, ok := seen[t.metric]
		if !ok {
			mi = len(f.metrics)
			seen[t.metric] = mi
			f.metrics = append(f.metrics, t.metric)
			f.alpha = append(f.alpha, t.alpha)
		}
		f.metricOf[i] = mi
		f.alpha[mi] = math.Min(f.alpha[mi], t.alpha)
	}
	f.truth = make([][]float64, len(f.metrics))
	for mi, m := range f.metrics {
		means := make([]float64, f.cells)
		for cell := range means {
			means[cell] = c.truths[m].mean(f.served(uint64(cell)))
		}
		f.truth[mi] = means
	}
	// Every interaction term: sets of ≥ 2 tests, no two of one layer.
	f.nulls = make([][]contrast, len(f.metrics))
	if n > 24 {
		return fmt.Errorf("full factorial: %d tests (at most 24 for the interaction sweep)", n)
	}
	tw := make([][]float64, len(f.metrics))
	for mi := range f.metrics {
		tw[mi] = slices.Clone(f.truth[mi])
		wht(tw[mi])
	}
	for set := uint64(1); set < 1<<n; set++ {
		if bits.OnesCount64(set) < 2 {
			continue
		}
		k, ok := f.term(set)
		if !ok {
			continue
		}
		sc := k.scale(f.cells)
		for mi := range f.metrics {
			if math.Abs(k.fromWHT(tw[mi])*sc) < zeroTol {
				f.nulls[mi] = append(f.nulls[mi], k)
			}
		}
	}
	return nil
}

// served maps a full-design cell to the served-treatment mask of the tests.
func (f *fullPlan) served(cell uint64) uint64 {
	var s uint64
	for i, vb := range f.varBit {
		if cell&vb == 0 {
			continue
		}
		if f.slotMask[i] == 0 || cell&f.slotMask[i] == f.slotVal[i] {
			s |= 1 << i
		}
	}
	return s
}

// term returns the contrast of the interaction (or main effect) of the
// tests in set; ok is false when two of them share a layer.
func (f *fullPlan) term(set uint64) (contrast, bool) {
	var k contrast
	for i := range f.varBit {
		if set&(1<<i) == 0 {
			continue
		}
		if f.slotMask[i] != 0 {
			if k.cond&f.slotMask[i] != 0 {
				return contrast{}, false
			}
			k.cond |= f.slotMask[i]
			k.val |= f.slotVal[i]
		}
		k.sign |= f.varBit[i]
	}
	return k, true
}

// fix adds to k the condition that test j serves variant v (0 or 1).
func (f *fullPlan) fix(k contrast, j, v int) contrast {
	k.cond |= f.varBit[j] | f.slotMask[j]
	k.val |= f.slotVal[j]
	if v == 1 {
		k.val |= f.varBit[j]
	}
	return k
}

// cellOf returns the full-design cell of a unit, ok false when the design
// cannot use it (a test does not randomize it).
func (f *fullPlan) cellOf(randomized, served uint64) (int, bool) {
	if randomized&f.free != f.free {
		return 0, false
	}
	var cell uint64
	for i := range f.varBit {
		if f.free&(1<<i) != 0 && served&(1<<i) != 0 {
			cell |= f.varBit[i]
		}
	}
	for _, tests := range f.layers {
		in := -1
		for _, i := range tests {
			if randomized&(1<<i) != 0 {
				in = i
				break
			}
		}
		if in < 0 {
			return 0, false
		}
		cell |= f.slotVal[in]
		if served&(1<<in) != 0 {
			cell |= f.varBit[in]
		}
	}
	return int(cell), true
}

func (r *runner) planSubsets() error {
	c := r.c
	r.subs = make([]subPlan, r.n)
	for i, t := range c.tests {
		sp := &r.subs[i]
		sp.metric = t.metric
		sp.alpha = t.alpha
		var ids []string
		for _, m := range c.subs[i].Members {
			j := c.index[m.Test]
			sp.members = append(sp.members, j)
			sp.mask |= 1 << j
			ids = append(ids, m.Test)
			sp.factors = append(sp.factors, analysis.Factor{Name: m.Test, Levels: c.tests[j].variants[:]})
		}
		sp.k = len(sp.members)
		nc, err := analysis.SampleSizeTerm(1, 1<<sp.k, t.mde, t.sd, t.alpha, t.power)
		if err != nil {
			return fmt.Errorf("subset of %s: sample size: %w", t.id, err)
		}
		sp.nCell = int64(math.Ceil(nc))
		sp.elig = c.targetedAllProb(ids)
		for _, j := range sp.members {
			if x := c.tests[j].x; x.Layer != "" {
				sp.elig *= float64(x.Slice.End-x.Slice.Start) / assign.LayerBuckets
			}
		}
		means := c.trueMeans(sp.metric, sp.members)
		for mask := uint64(1); mask < 1<<sp.k; mask++ {
			if bits.OnesCount64(mask) < 2 {
				continue
			}
			if k := (contrast{sign: mask}); math.Abs(k.onMeans(means)) < zeroTol {
				sp.nulls = append(sp.nulls, k)
			}
		}
		r.cells[Subsets] = max(r.cells[Subsets], 1<<sp.k)
		r.perCell[Subsets] = max(r.perCell[Subsets], sp.nCell)
		r.planned[Subsets] = math.Max(r.planned[Subsets], float64(int64(1)<<sp.k)*float64(sp.nCell)/sp.elig)
	}
	return nil
}

// planQuantities lists the estimands: every test's main effect; its
// simple effects at each variant of every test it interacts with on its
// metric; and every interaction contrast of its subset whose truth is not
// 0.
func (r *runner) planQuantities() {
	c := r.c
	f := &r.full
	for i, t := range c.tests {
		sp := &r.subs[i]
		means := c.trueMeans(sp.metric, sp.members)
		key := c.truths[t.metric].Key()
		k := sp.k
		vpBit := uint64(1) << (k - 1)
		mainK, _ := f.term(1 << i)
		r.add(Quantity{Kind: MainEffect, Test: t.id, Metric: key, Truth: contrast{sign: vpBit}.onMeans(means)},
			quantPlan{test: i, full: mainK, fullM: f.metricOf[i], subVar: t.variants[1]})
		// Partners: members that share a non-zero interaction term with
		// the viewpoint on its metric.
		for fi := 1; fi < k; fi++ {
			j := sp.members[fi]
			partner := false
			for ti, mask := range c.truths[t.metric].masks {
				if mask&(1<<i) != 0 && mask&(1<<j) != 0 && c.truths[t.metric].effects[ti] != 0 {
					partner = true
				}
			}
			if !partner {
				continue
			}
			jb := uint64(1) << (k - 1 - fi)
			for v := range 2 {
				sk := contrast{sign: vpBit, cond: jb}
				if v == 1 {
					sk.val = jb
				}
				r.add(Quantity{Kind: SimpleEffect, Test: t.id, Given: c.tests[j].id, GivenVariant: c.tests[j].variants[v],
					Metric: key, Truth: sk.onMeans(means)},
					quantPlan{test: i, full: f.fix(mainK, j, v), fullM: f.metricOf[i], sub: sk})
			}
		}
		// Interactions with a non-zero truth.
		table := &analysis.CellTable{Factors: sp.factors}
		for fm := uint64(1); fm < 1<<k; fm++ {
			if bits.OnesCount64(fm) < 2 {
				continue
			}
			var cellSign, testSet uint64
			var term []string
			for fi := range k {
				if fm&(1<<fi) != 0 {
					cellSign |= 1 << (k - 1 - fi)
					testSet |= 1 << sp.members[fi]
					term = append(term, c.tests[sp.members[fi]].id)
				}
			}
			truth := contrast{sign: cellSign}.onMeans(means)
			if math.Abs(truth) < zeroTol {
				continue
			}
			fk, _ := f.term(testSet)
			r.add(Quantity{Kind: Interaction, Test: t.id, Term: term, Metric: key, Truth: truth},
				quantPlan{test: i, full: fk, fullM: f.metricOf[i], name: table.TermName(fm)})
		}
	}
}

func (r *runner) add(q Quantity, p quantPlan) {
	r.quant = append(r.quant, q)
	r.qplan = append(r.qplan, p)
}

// repResult is what one replication measured.
type repResult struct {
	units     [4]int64
	finished  [4]bool
	testUnits [4][]int64
	est       [4][]estimate
	nullTests [4]int
	falseHits [4]int
}

// worker owns the reusable buffers of one goroutine.
type worker struct {
	r   *runner
	asg []assign.Assignment
	buf []byte
	z   []float64
	y   []float64
}

func (r *runner) newWorker() *worker {
	return &worker{r: r, asg: make([]assign.Assignment, 0, r.n),
		z: make([]float64, len(r.c.truths)), y: make([]float64, len(r.c.truths))}
}

// replicate runs replication rep.
func (w *worker) replicate(ctx context.Context, rep int) (repResult, error) {
	r := w.r
	c := r.c
	n := r.n
	opt := r.opt
	rng := repRand(opt.Seed, rep)
	prefix := "s" + strconv.FormatUint(opt.Seed, 10) + "-r" + strconv.Itoa(rep) + "-user-"

	var res repResult
	for s := range res.est {
		res.est[s] = make([]estimate, len(r.quant))
		res.testUnits[s] = make([]int64, n)
	}
	aArms := make([][2]analysis.CellStats, n)
	bArms := make([][2]analysis.CellStats, n)
	aDone, bDone, dDone := make([]bool, n), make([]bool, n), make([]bool, n)
	f := &r.full
	fullCells := make([][]analysis.CellStats, len(f.metrics))
	for mi := range fullCells {
		fullCells[mi] = make([]analysis.CellStats, f.cells)
	}
	fullReady, fullDone := 0, false
	subCells := make([][]analysis.CellStats, n)
	subReady := make([]int, n)
	for i := range subCells {
		subCells[i] = make([]analysis.CellStats, 1<<r.subs[i].k)
	}
	remaining := 3*n + 1

	for j := 0; remaining > 0; j++ {
		if j >= opt.MaxUnits {
			break
		}
		if j&1023 == 0 && ctx.Err() != nil {
			return res, ctx.Err()
		}
		units := int64(j + 1)
		w.buf = strconv.AppendInt(append(w.buf[:0], prefix...), units, 10)
		unit := string(w.buf)
		attrs := c.drawAttrs(rng)
		w.asg = c.eng.AppendAssignments(w.asg[:0], unit, attrs, assign.Filter{})
		if len(w.asg) != n {
			return res, fmt.Errorf("replication %d: %d assignments for %d tests", rep, len(w.asg), n)
		}
		var randomized, served, targeted, notInSlice uint64
		for i, a := range w.asg {
			switch a.Reason {
			case assign.ReasonHash, assign.ReasonSticky:
				randomized |= 1 << i
				targeted |= 1 << i
				if a.Variant == c.tests[i].variants[1] {
					served |= 1 << i
				}
			case assign.ReasonNotInSlice:
				targeted |= 1 << i
				notInSlice |= 1 << i
			}
		}
		for m := range c.truths {
			w.z[m] = rng.NormFloat64()
			w.y[m] = c.truths[m].Value(c.truths[m].mean(served), w.z[m])
		}

		for i := range n {
			t := &c.tests[i]
			// (a) test i alone: its hash variant, ignoring the layer.
			if !aDone[i] && targeted&(1<<i) != 0 {
				v := 0
				if notInSlice&(1<<i) != 0 {
					if hv, _ := c.eng.HashVariant(t.id, unit); hv == t.variants[1] {
						v = 1
					}
				} else if served&(1<<i) != 0 {
					v = 1
				}
				ct := &c.truths[t.metric]
				aArms[i][v].Add(ct.Value(r.aloneMean[i][v], w.z[t.metric]))
				if aArms[i][0].N >= r.nArm[i] && aArms[i][1].N >= r.nArm[i] {
					aDone[i] = true
					remaining--
					res.testUnits[OneAtATime][i] = units
					r.twoSample(&res, OneAtATime, i, aArms[i])
				}
			}
			// (b) every test at once, each alone.
			if !bDone[i] && randomized&(1<<i) != 0 {
				v := 0
				if served&(1<<i) != 0 {
					v = 1
				}
				bArms[i][v].Add(w.y[t.metric])
				if bArms[i][0].N >= r.nArm[i] && bArms[i][1].N >= r.nArm[i] {
					bDone[i] = true
					remaining--
					res.testUnits[Orthogonal][i] = units
					r.twoSample(&res, Orthogonal, i, bArms[i])
				}
			}
			// (d) the subset of viewpoint i.
			if sp := &r.subs[i]; !dDone[i] && randomized&sp.mask == sp.mask {
				cell := sp.cellOf(served)
				cs := &subCells[i][cell]
				cs.Add(w.y[sp.metric])
				if cs.N == sp.nCell {
					subReady[i]++
					if subReady[i] == len(subCells[i]) {
						dDone[i] = true
						remaining--
						res.testUnits[Subsets][i] = units
						if err := r.subsetEstimates(&res, i, subCells[i]); err != nil {
							return res, err
						}
					}
				}
			}
		}
		// (c) the full factorial.
		if !fullDone {
			if cell, ok := f.cellOf(randomized, served); ok {
				for mi, m := range f.metrics {
					fullCells[mi][cell].Add(w.y[m])
				}
				if fullCells[0][cell].N == f.nCell {
					fullReady++
					if fullReady == f.cells {
						fullDone = true
						remaining--
						for i := range n {
							res.testUnits[FullFactorial][i] = units
						}
						r.fullEstimates(&res, fullCells)
					}
				}
			}
		}
	}

	limit := int64(opt.MaxUnits)
	for i := range n {
		if !aDone[i] {
			res.testUnits[OneAtATime][i] = limit
		}
		if !bDone[i] {
			res.testUnits[Orthogonal][i] = limit
		}
		if !dDone[i] {
			res.testUnits[Subsets][i] = limit
		}
		if !fullDone {
			res.testUnits[FullFactorial][i] = limit
		}
		res.units[OneAtATime] += res.testUnits[OneAtATime][i]
		res.units[Orthogonal] = max(res.units[Orthogonal], res.testUnits[Orthogonal][i])
		res.units[Subsets] = max(res.units[Subsets], res.testUnits[Subsets][i])
	}
	res.units[FullFactorial] = res.testUnits[FullFactorial][0]
	res.finished[OneAtATime] = !slices.Contains(aDone, false)
	res.finished[Orthogonal] = !slices.Contains(bDone, false)
	res.finished[Subsets] = !slices.Contains(dDone, false)
	res.finished[FullFactorial] = fullDone
	return res, nil
}

// twoSample records the two-sample estimates of test i: its main effect
// and, for lack of anything better, the same number for its simple
// effects.
func (r *runner) twoSample(res *repResult, s Strategy, i int, arms [2]analysis.CellStats) {
	t := &r.c.tests[i]
	table := &analysis.CellTable{
		Factors: []analysis.Factor{{Name: t.id, Levels: t.variants[:]}},
		Cells:   arms[:],
	}
	est, err := analysis.Estimate(table, r.opt.Level)
	var e estimate
	if err == nil {
		e = fromEffect(est.Effect(t.id, t.variants[1]))
	}
	for qi, q := range r.quant {
		if r.qplan[qi].test == i && q.Kind != Interaction {
			res.est[s][qi] = e
		}
	}
}

// subsetEstimates analyses viewpoint i's subset table as abmesh reports
// it (analysis.Estimate) and counts its false interaction findings.
func (r *runner) subsetEstimates(res *repResult, i int, cells []analysis.CellStats) error {
	sp := &r.subs[i]
	table := &analysis.CellTable{Factors: sp.factors, Cells: cells}
	est, err := analysis.Estimate(table, r.opt.Level)
	if err != nil {
		return fmt.Errorf("subset of %s: %w", r.c.tests[i].id, err)
	}
	pl := poolCells(cells, r.opt.Level)
	for qi, q := range r.quant {
		p := &r.qplan[qi]
		if p.test != i {
			continue
		}
		switch q.Kind {
		case MainEffect:
			res.est[Subsets][qi] = fromEffect(est.Effect(q.Test, p.subVar))
		case SimpleEffect:
			res.est[Subsets][qi] = p.sub.on(cells, pl)
		case Interaction:
			res.est[Subsets][qi] = fromContrast(est.Interaction(p.name))
		}
	}
	for _, k := range sp.nulls {
		res.nullTests[Subsets]++
		if e := k.on(cells, pl); e.ok && e.p < sp.alpha {
			res.falseHits[Subsets]++
		}
	}
	return nil
}

// fullEstimates analyses the full factorial of every metric.
func (r *runner) fullEstimates(res *repResult, cells [][]analysis.CellStats) {
	f := &r.full
	pls := make([]pooled, len(f.metrics))
	for mi := range f.metrics {
		pls[mi] = poolCells(cells[mi], r.opt.Level)
	}
	for qi := range r.quant {
		p := &r.qplan[qi]
		res.est[FullFactorial][qi] = p.full.on(cells[p.fullM], pls[p.fullM])
	}
	// The null interactions: only significance is needed, so compare |t|
	// with the critical value instead of computing p. All contrasts come
	// from the Walsh–Hadamard transforms of the cell means and of 1/n
	// (the counts are the same in every metric's table).
	inv := make([]float64, f.cells)
	for c := range inv {
		inv[c] = 1 / float64(cells[0][c].N)
	}
	wht(inv)
	w := make([]float64, f.cells)
	for mi := range f.metrics {
		crit := criticalT(f.alpha[mi], pls[mi].df)
		for c := range w {
			w[c] = cells[mi][c].Mean
		}
		wht(w)
		for _, k := range f.nulls[mi] {
			res.nullTests[FullFactorial]++
			s := k.fromWHT(w)
			se := math.Sqrt(pls[mi].mse * (contrast{cond: k.cond, val: k.val}).fromWHT(inv))
			if se > 0 && math.Abs(s)/se > crit {
				res.falseHits[FullFactorial]++
			}
		}
	}
}

func (r *runner) aggregate(reps []repResult) *Result {
	c := r.c
	res := &Result{
		Scenario: c.sc.Name, Description: c.sc.Description, Services: countServices(c.sc.Edges),
		Reps: len(reps), Seed: r.opt.Seed, Level: r.opt.Level, Quantities: r.quant,
	}
	for i, t := range c.tests {
		res.Tests = append(res.Tests, TestSummary{
			ID: t.id, ChangeService: t.x.ChangeService, MeasureService: t.x.MeasureService,
			Metric: c.truths[t.metric].Key(), MDE: t.mde, SD: t.sd, Alpha: t.alpha, Power: t.power,
			Eligible: t.elig, Subset: c.subs[i].Tests(),
		})
	}
	for _, s := range Strategies {
		sr := StrategyResult{Strategy: s, Name: s.String(), Label: s.Label(),
			Cells: r.cells[s], PerCellN: r.perCell[s], PlannedUnits: r.planned[s]}
		var units []float64
		tu := make([]float64, r.n)
		var nulls, hits int
		for _, rp := range reps {
			units = append(units, float64(rp.units[s]))
			if rp.finished[s] {
				sr.Finished++
			}
			for i, u := range rp.testUnits[s] {
				tu[i] += float64(u) / float64(len(reps))
			}
			nulls += rp.nullTests[s]
			hits += rp.falseHits[s]
		}
		sr.Units = summarize(units)
		sr.TestUnits = tu
		sr.InteractionTests = float64(nulls) / float64(len(reps))
		sr.FalseFindings = float64(hits) / float64(len(reps))
		if nulls > 0 {
			sr.FalseFindingRate = float64(hits) / float64(nulls)
		}
		for qi, q := range r.quant {
			alpha := c.tests[r.qplan[qi].test].alpha
			var xs []float64
			var cover, rej int
			for _, rp := range reps {
				e := rp.est[s][qi]
				if !e.ok {
					continue
				}
				xs = append(xs, e.est)
				if e.lo <= q.Truth && q.Truth <= e.hi {
					cover++
				}
				if e.p < alpha {
					rej++
				}
			}
			var es EstimateStats
			if len(xs) > 0 {
				sm := summarize(xs)
				es = EstimateStats{Reps: len(xs), Mean: sm.Mean, Bias: sm.Mean - q.Truth, SD: sm.SD,
					Coverage: float64(cover) / float64(len(xs)), Rejected: float64(rej) / float64(len(xs))}
			}
			sr.Estimates = append(sr.Estimates, es)
		}
		res.Strategies = append(res.Strategies, sr)
	}
	return res
}

// criticalT returns the two-sided critical value of t at alpha on df.
func criticalT(alpha float64, df int64) float64 {
	if df <= 0 {
		return math.Inf(1)
	}
	return tQuantile(1-alpha/2, df)
}
