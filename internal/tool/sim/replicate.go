package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
)

// byStrategy holds one T for each strategy, by name.
type byStrategy[T any] struct {
	oneAtATime, orthogonal, fullFactorial, subsets T
}

// of returns s's T; it panics for a strategy that does not exist.
func (b *byStrategy[T]) of(s Strategy) *T {
	switch s {
	case OneAtATime:
		return &b.oneAtATime
	case Orthogonal:
		return &b.orthogonal
	case FullFactorial:
		return &b.fullFactorial
	case Subsets:
		return &b.subsets
	}
	panic(fmt.Sprintf("sim: no strategy %d", int(s)))
}

// strategyRep is what one strategy reached in one replication.
type strategyRep struct {
	// units drawn until every test's decision, and whether every decision
	// was reached within Options.MaxUnits.
	units    int64
	finished bool
	// testUnits are, per test, the units drawn until its decision
	// (MaxUnits when not reached).
	testUnits []int64
	// est are the estimates, per quantity (not ok when not estimated).
	est []estimate
	// nullTests counts the interaction contrasts with true value 0 tested,
	// falseHits those significant at the viewpoint's alpha.
	nullTests, falseHits int
}

// repResult is what one replication measured, per strategy.
type repResult struct {
	byStrategy[strategyRep]
}

// worker owns the reusable buffers of one goroutine.
type worker struct {
	r   *runner
	asg []assign.Assignment
	buf []byte
	z   []float64 // per truth: the current unit's noise draw
	y   []float64 // per truth: the current unit's value
}

func (r *runner) newWorker() *worker {
	return &worker{r: r, asg: make([]assign.Assignment, 0, r.n),
		z: make([]float64, len(r.c.truths)), y: make([]float64, len(r.c.truths))}
}

// unit is one simulated unit as the engine assigned it; bit i of each
// mask stands for test i.
type unit struct {
	id  string
	seq int64 // units drawn so far, this one included
	// randomized: test i randomized the unit (hash or sticky); served: it
	// serves test i's treatment; targeted: it matches test i's targeting;
	// notInSlice: it is targeted but outside test i's layer slice.
	randomized, served, targeted, notInSlice uint64
}

// twoSampleRun is strategy (a) or (b) in one replication: per test, the
// statistics of its two arms and whether its decision is reached.
type twoSampleRun struct {
	arms [][2]analysis.CellStats
	done []bool
}

func newTwoSampleRun(n int) twoSampleRun {
	return twoSampleRun{arms: make([][2]analysis.CellStats, n), done: make([]bool, n)}
}

// add adds value y to arm v of test i and reports whether that reached
// the test's decision: both arms at n units. It then marks the test done.
func (t *twoSampleRun) add(i, v int, y float64, n int64) bool {
	t.arms[i][v].Add(y)
	if t.arms[i][0].N >= n && t.arms[i][1].N >= n {
		t.done[i] = true
		return true
	}
	return false
}

// factorialRun is one factorial of strategy (c) or (d) in one
// replication: its cells per metric analysed, how many cells hold the
// per-cell n, and whether all do.
type factorialRun struct {
	cells [][]analysis.CellStats // per metric, per cell
	ready int
	done  bool
}

func newFactorialRun(metrics, cells int) factorialRun {
	f := factorialRun{cells: make([][]analysis.CellStats, metrics)}
	for m := range f.cells {
		f.cells[m] = make([]analysis.CellStats, cells)
	}
	return f
}

// add adds the unit's values y (indexed by truth) of the metrics analysed
// (metrics[m] is the truth of cells[m]) to cell, and reports whether that
// completed the run: every cell at nCell units. It then marks it done.
func (f *factorialRun) add(cell int, y []float64, metrics []int, nCell int64) bool {
	for m, t := range metrics {
		f.cells[m][cell].Add(y[t])
	}
	if f.cells[0][cell].N != nCell {
		return false
	}
	f.ready++
	f.done = f.ready == len(f.cells[0])
	return f.done
}

// replication is one replication while its units stream in: every
// strategy's state and what it has reached so far.
type replication struct {
	w         *worker
	rep       int
	rng       *rand.Rand
	prefix    string // unit ids are prefix + sequence number
	res       repResult
	alone     twoSampleRun   // (a)
	ortho     twoSampleRun   // (b)
	full      factorialRun   // (c)
	subsets   []factorialRun // (d), per viewpoint
	remaining int            // decisions not yet reached
}

// replicate runs replication rep: it streams units until every strategy
// has reached every decision or Options.MaxUnits units are drawn.
func (w *worker) replicate(ctx context.Context, rep int) (repResult, error) {
	p := w.newReplication(rep)
	for j := 0; p.remaining > 0 && j < w.r.opt.MaxUnits; j++ {
		if j&1023 == 0 && ctx.Err() != nil {
			return p.res, ctx.Err()
		}
		u, err := p.drawUnit(int64(j + 1))
		if err != nil {
			return p.res, err
		}
		p.drawValues(u.served)
		for i := range w.r.n {
			p.feedOneAtATime(i, &u)
			p.feedOrthogonal(i, &u)
			if err := p.feedSubset(i, &u); err != nil {
				return p.res, err
			}
		}
		p.feedFull(&u)
	}
	p.finish()
	return p.res, nil
}

// newReplication returns replication rep before its first unit: its
// random stream, empty statistics, and every decision to be reached (one
// per test of (a), (b) and (d), one for (c)).
func (w *worker) newReplication(rep int) *replication {
	r := w.r
	n := r.n
	p := &replication{
		w: w, rep: rep,
		rng:    repRand(r.opt.Seed, rep),
		prefix: "s" + strconv.FormatUint(r.opt.Seed, 10) + "-r" + strconv.Itoa(rep) + "-user-",
		alone:  newTwoSampleRun(n), ortho: newTwoSampleRun(n),
		full:      newFactorialRun(len(r.full.metrics), r.full.cells),
		subsets:   make([]factorialRun, n),
		remaining: 3*n + 1,
	}
	for _, s := range Strategies {
		sr := p.res.of(s)
		sr.est = make([]estimate, len(r.quant))
		sr.testUnits = make([]int64, n)
	}
	for i := range p.subsets {
		p.subsets[i] = newFactorialRun(1, 1<<r.subs[i].k)
	}
	return p
}

// drawUnit draws unit number seq: its attributes and its assignment by the
// engine, condensed into masks. The engine must assign every test, in
// test order.
func (p *replication) drawUnit(seq int64) (unit, error) {
	w, c := p.w, p.w.r.c
	w.buf = strconv.AppendInt(append(w.buf[:0], p.prefix...), seq, 10)
	u := unit{id: string(w.buf), seq: seq}
	w.asg = c.eng.AppendAssignments(w.asg[:0], u.id, c.drawAttrs(p.rng), assign.Filter{})
	if len(w.asg) != w.r.n {
		return u, fmt.Errorf("replication %d: %d assignments for %d tests", p.rep, len(w.asg), w.r.n)
	}
	for i, a := range w.asg {
		if a.Test != c.tests[i].id {
			return u, fmt.Errorf("replication %d: assignment %d is for %s, want %s", p.rep, i, a.Test, c.tests[i].id)
		}
		switch a.Reason {
		case assign.ReasonHash, assign.ReasonSticky:
			u.randomized |= 1 << i
			u.targeted |= 1 << i
			if a.Variant == c.tests[i].variants[1] {
				u.served |= 1 << i
			}
		case assign.ReasonNotInSlice:
			u.targeted |= 1 << i
			u.notInSlice |= 1 << i
		}
	}
	return u, nil
}

// drawValues draws the unit's noise of every metric (into w.z) and its
// values given the treatments it is served (into w.y).
func (p *replication) drawValues(served uint64) {
	w, c := p.w, p.w.r.c
	for m := range c.truths {
		w.z[m] = p.rng.NormFloat64()
		w.y[m] = c.truths[m].Value(c.truths[m].mean(served), w.z[m])
	}
}

// feedOneAtATime gives the unit to (a)'s run of test i, if the test
// targets it and has not decided: test i alone, the unit in its hash
// variant whatever the layer, its value that of test i alone with the
// same noise.
func (p *replication) feedOneAtATime(i int, u *unit) {
	if p.alone.done[i] || u.targeted&(1<<i) == 0 {
		return
	}
	r, c := p.w.r, p.w.r.c
	t := &c.tests[i]
	v := 0
	if u.notInSlice&(1<<i) != 0 {
		if hv, _ := c.eng.HashVariant(t.id, u.id); hv == t.variants[1] {
			v = 1
		}
	} else if u.served&(1<<i) != 0 {
		v = 1
	}
	y := c.truths[t.metric].Value(r.aloneMean[i][v], p.w.z[t.metric])
	if p.alone.add(i, v, y, r.nArm[i]) {
		p.decided(OneAtATime, i, u.seq)
		r.twoSample(&p.res, OneAtATime, i, p.alone.arms[i])
	}
}

// feedOrthogonal gives the unit to (b)'s analysis of test i, if the test
// randomized it and has not decided.
func (p *replication) feedOrthogonal(i int, u *unit) {
	if p.ortho.done[i] || u.randomized&(1<<i) == 0 {
		return
	}
	r := p.w.r
	v := 0
	if u.served&(1<<i) != 0 {
		v = 1
	}
	if p.ortho.add(i, v, p.w.y[r.c.tests[i].metric], r.nArm[i]) {
		p.decided(Orthogonal, i, u.seq)
		r.twoSample(&p.res, Orthogonal, i, p.ortho.arms[i])
	}
}

// feedSubset gives the unit to (d)'s factorial of viewpoint i, if every
// member randomized it and the factorial is not complete; completing it
// takes the subset's estimates.
func (p *replication) feedSubset(i int, u *unit) error {
	r := p.w.r
	sp, run := &r.subs[i], &p.subsets[i]
	if run.done || u.randomized&sp.mask != sp.mask {
		return nil
	}
	if !run.add(sp.cellOf(u.served), p.w.y, []int{sp.metric}, sp.nCell) {
		return nil
	}
	p.decided(Subsets, i, u.seq)
	return r.subsetEstimates(&p.res, i, run.cells[0])
}

// feedFull gives the unit to (c)'s factorial, if the design can use it
// and it is not complete; completing it decides every test at once and
// takes the factorial's estimates.
func (p *replication) feedFull(u *unit) {
	r := p.w.r
	f := &r.full
	if p.full.done {
		return
	}
	cell, ok := f.cellOf(u.randomized, u.served)
	if !ok || !p.full.add(cell, p.w.y, f.metrics, f.nCell) {
		return
	}
	p.remaining--
	for i := range r.n {
		p.res.fullFactorial.testUnits[i] = u.seq
	}
	r.fullEstimates(&p.res, p.full.cells)
}

// decided records that strategy s reached test i's decision after seq
// units.
func (p *replication) decided(s Strategy, i int, seq int64) {
	p.remaining--
	p.res.of(s).testUnits[i] = seq
}

// finish records, per strategy, MaxUnits for every decision not reached,
// the units until every decision (summed over tests for one at a time,
// the largest for the others) and whether all were reached.
func (p *replication) finish() {
	res, n := &p.res, p.w.r.n
	limit := int64(p.w.r.opt.MaxUnits)
	undecided := func(sr *strategyRep, i int, done bool) {
		if !done {
			sr.testUnits[i] = limit
		}
	}
	for i := range n {
		undecided(&res.oneAtATime, i, p.alone.done[i])
		undecided(&res.orthogonal, i, p.ortho.done[i])
		undecided(&res.subsets, i, p.subsets[i].done)
		undecided(&res.fullFactorial, i, p.full.done)
		res.oneAtATime.units += res.oneAtATime.testUnits[i]
		res.orthogonal.units = max(res.orthogonal.units, res.orthogonal.testUnits[i])
		res.subsets.units = max(res.subsets.units, res.subsets.testUnits[i])
	}
	res.fullFactorial.units = res.fullFactorial.testUnits[0]
	res.oneAtATime.finished = !slices.Contains(p.alone.done, false)
	res.orthogonal.finished = !slices.Contains(p.ortho.done, false)
	res.subsets.finished = !slices.ContainsFunc(p.subsets, func(f factorialRun) bool { return !f.done })
	res.fullFactorial.finished = p.full.done
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
	sr := res.of(s)
	for qi, q := range r.quant {
		if r.qplan[qi].test == i && q.Kind != Interaction {
			sr.est[qi] = e
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
	sr := &res.subsets
	pl := poolCells(cells, r.opt.Level)
	for qi, q := range r.quant {
		p := &r.qplan[qi]
		if p.test != i {
			continue
		}
		switch q.Kind {
		case MainEffect:
			sr.est[qi] = fromEffect(est.Effect(q.Test, p.subVar))
		case SimpleEffect:
			sr.est[qi] = p.sub.on(cells, pl)
		case Interaction:
			sr.est[qi] = fromContrast(est.Interaction(p.name))
		}
	}
	for _, k := range sp.nulls {
		sr.nullTests++
		if e := k.on(cells, pl); e.ok && e.p < sp.alpha {
			sr.falseHits++
		}
	}
	return nil
}

// fullEstimates analyses the full factorial of every metric.
func (r *runner) fullEstimates(res *repResult, cells [][]analysis.CellStats) {
	f := &r.full
	sr := &res.fullFactorial
	pls := make([]pooled, len(f.metrics))
	for mi := range f.metrics {
		pls[mi] = poolCells(cells[mi], r.opt.Level)
	}
	for qi := range r.quant {
		p := &r.qplan[qi]
		sr.est[qi] = p.full.on(cells[p.fullM], pls[p.fullM])
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
			sr.nullTests++
			s := k.fromWHT(w)
			se := math.Sqrt(pls[mi].mse * (contrast{cond: k.cond, val: k.val}).fromWHT(inv))
			if se > 0 && math.Abs(s)/se > crit {
				sr.falseHits++
			}
		}
	}
}
