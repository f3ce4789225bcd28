package sim

import (
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/abmesh/abmesh/analysis"
)

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

	size byStrategy[designSize]
}

// designSize is how large a strategy's designs are: the cells of its
// largest, the largest per-cell (per-arm) n its stop rule asks for, and
// the units it needs if the cells filled exactly evenly (cells × per-cell
// n / the fraction of units the design can use, summed over one at a
// time's tests, the largest over the other strategies' designs).
type designSize struct {
	cells   int
	perCell int64
	planned float64
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
		a, b := &r.size.oneAtATime, &r.size.orthogonal
		a.planned += 2 * float64(r.nArm[i]) / c.targetedProb(t.id)
		b.planned = math.Max(b.planned, 2*float64(r.nArm[i])/t.elig)
		a.perCell = max(a.perCell, r.nArm[i])
		b.perCell = a.perCell
	}
	r.size.oneAtATime.cells, r.size.orthogonal.cells = 2, 2

	if err := r.planFull(); err != nil {
		return nil, err
	}
	if err := r.planSubsets(); err != nil {
		return nil, err
	}
	r.planQuantities()
	return r, nil
}

// planFull plans strategy (c): the full design's bits, its size, its
// metrics with their true cell means, and its null interactions.
func (r *runner) planFull() error {
	f := &r.full
	if err := f.layout(r.c.tests); err != nil {
		return err
	}
	if err := f.size(r.c); err != nil {
		return err
	}
	r.size.fullFactorial = designSize{cells: f.cells, perCell: f.nCell, planned: float64(f.cells) * float64(f.nCell) / f.elig}
	f.planMetrics(r.c)
	return f.planNulls(r.n)
}

// layout gives every test its bits of the full design: a variant bit per
// test outside layers; per layer, slot bits (which test's slice) and one
// variant bit its tests share. It sets k and cells, at most 20 bits.
func (f *fullPlan) layout(tests []testInfo) error {
	n := len(tests)
	f.varBit, f.slotMask, f.slotVal = make([]uint64, n), make([]uint64, n), make([]uint64, n)
	bit := 0
	groups := map[int][]int{}
	var order []int
	for i, t := range tests {
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
		layer := groups[g]
		slotBits := bits.Len(uint(len(layer) - 1))
		var slotMask uint64
		for b := range slotBits {
			slotMask |= 1 << (bit + b)
		}
		vb := uint64(1) << (bit + slotBits)
		for _, i := range layer {
			f.varBit[i] = vb
			f.slotMask[i] = slotMask
			f.slotVal[i] = uint64(tests[i].slot) << bit
		}
		bit += slotBits + 1
		f.layers = append(f.layers, layer)
	}
	f.k = bit
	if f.k > 20 {
		return fmt.Errorf("full factorial: %d binary factors (at most 20)", f.k)
	}
	f.cells = 1 << f.k
	return nil
}

// size sets the per-cell n, the largest any test's main effect needs (a
// layered test's contrast uses only its slice's cells), and the fraction
// of units the design can use (every test targets them, and they are in
// one slice of every layer).
func (f *fullPlan) size(c *compiled) error {
	ids := make([]string, len(c.tests))
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
	for _, layer := range f.layers {
		var frac float64
		for _, i := range layer {
			frac += sliceShare(c.tests[i].x)
		}
		f.elig *= frac
	}
	return nil
}

// planMetrics lists the metrics the tests measure (metrics, metricOf),
// each with the smallest alpha of its tests and its true cell means.
func (f *fullPlan) planMetrics(c *compiled) {
	f.metricOf = make([]int, len(c.tests))
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
}

// planNulls lists, per metric, every interaction term of the n tests
// (sets of ≥ 2 tests, no two of one layer) whose true contrast is 0: the
// ones a finding of is false. It sweeps all 2^n sets, so n ≤ 24.
func (f *fullPlan) planNulls(n int) error {
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
			sp.elig *= sliceShare(c.tests[j].x)
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
		d := &r.size.subsets
		d.cells = max(d.cells, 1<<sp.k)
		d.perCell = max(d.perCell, sp.nCell)
		d.planned = math.Max(d.planned, float64(int64(1)<<sp.k)*float64(sp.nCell)/sp.elig)
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
