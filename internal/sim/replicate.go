package sim

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
)

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
			if a.Test != c.tests[i].id {
				return res, fmt.Errorf("replication %d: assignment %d is for %s, want %s", rep, i, a.Test, c.tests[i].id)
			}
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
