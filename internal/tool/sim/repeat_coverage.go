package sim

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/tool/truth"
)

// CoverageAggregates are the aggregates CheckCoverage checks, in report
// order.
var CoverageAggregates = []assign.Aggregate{assign.AggregateMean, assign.AggregateSum, assign.AggregateAny, assign.AggregateCount, assign.AggregateRatio}

// AggregateCoverage is how often the intervals of one aggregate's
// analysis covered the truth in the repeat scenario.
type AggregateCoverage struct {
	Aggregate assign.Aggregate `json:"aggregate"`
	// Metric is the distribution of the requests' metric: normal, or
	// bernoulli (0/1) for any.
	Metric  string `json:"metric"`
	Windows int    `json:"windows"`
	// Unit is the unit-level analysis (one value per unit); Request the
	// same requests analysed one row per request, as before per-unit
	// analysis, where that estimates the same quantity (mean, ratio).
	Unit    CoverageSummary  `json:"unit"`
	Request *CoverageSummary `json:"request,omitempty"`
	// Quantities are the main effects and interaction contrasts of the
	// 2×2 and the 2×2×2 design.
	Quantities []RepeatQuantity `json:"quantities"`
}

// CoverageSummary pools the coverage of an analysis's intervals over the
// quantities and windows of one aggregate.
type CoverageSummary struct {
	Main        float64 `json:"main"`
	Interaction float64 `json:"interaction"`
	All         float64 `json:"all"`
	// Intervals is the number of intervals pooled in All.
	Intervals int `json:"intervals"`
}

// RepeatQuantity is one estimand of the repeat scenario with the unit-
// level (and, where it applies, request-level) analysis's estimates.
type RepeatQuantity struct {
	Design  string         `json:"design"` // "2x2" or "2x2x2"
	Kind    QuantityKind   `json:"kind"`   // MainEffect or Interaction
	Name    string         `json:"name"`   // the factor ("a") or the term ("a:b")
	Truth   float64        `json:"truth"`
	Unit    EstimateStats  `json:"unit"`
	Request *EstimateStats `json:"request,omitempty"`
}

// CheckCoverage runs, for every aggregate of CoverageAggregates and each
// of the 2×2 (tests a, b) and the 2×2×2 (a, b, c) design, Windows windows
// of Units units: each unit gets a uniformly random cell, makes geometric
// requests (truth.Repeat) whose values share a unit draw with
// correlation ICC, and is counted as one value (truth.UnitValue) in the
// unit-level table, or for ratio as one (sum, requests) pair in the
// cell's analysis.RatioStats (a ratio table, CellTable.MergeRatioCell);
// for mean and ratio the requests also fill a request-level table. analysis.Estimate on each table gives intervals for every
// main effect and interaction contrast, judged against the true values
// of the aggregate (truth.Repeat.Factorial; the request-level analysis
// against the request-level means, truth.Model.Factorial).
func CheckCoverage(ctx context.Context, opt RepeatOptions) ([]AggregateCoverage, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	var out []AggregateCoverage
	for _, agg := range CoverageAggregates {
		c, err := checkAggregate(ctx, &opt, agg)
		if err != nil {
			return nil, fmt.Errorf("coverage %v: %w", agg, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// coverageCase is one design of one aggregate: the cells' truths and the
// quantities with their true values.
type coverageCase struct {
	design repeatDesign
	qs     []RepeatQuantity
	keys   []quantityKey
	// requests: the request-level analysis applies (truth in Request).
	requests bool
}

// quantityKey finds a quantity in analysis.Estimates.
type quantityKey struct {
	kind QuantityKind
	name string
}

func (k quantityKey) in(e *analysis.Estimates) estimate {
	if k.kind == MainEffect {
		return fromEffect(e.Effect(k.name, repeatTreatment))
	}
	return fromContrast(e.Interaction(k.name))
}

// requestLevel reports whether a row-per-request analysis estimates the
// same quantity as the unit-level one under agg.
func requestLevel(agg assign.Aggregate) bool {
	return agg == assign.AggregateMean || agg == assign.AggregateRatio
}

// newCoverageCase tabulates the k-factor design of agg and its truths.
func newCoverageCase(k int, agg assign.Aggregate, m *truth.Model, rep *truth.Repeat) (coverageCase, error) {
	c := coverageCase{design: newRepeatDesign(k, m, rep), requests: requestLevel(agg)}
	unitTruth, err := rep.Factorial(m, agg, c.design.factors)
	if err != nil {
		return c, err
	}
	reqTruth, err := m.Factorial(c.design.factors)
	if err != nil {
		return c, err
	}
	add := func(key quantityKey, unit, req float64) error {
		q := RepeatQuantity{Design: c.design.name, Kind: key.kind, Name: key.name, Truth: unit}
		if c.requests {
			if math.Abs(req-unit) > zeroTol {
				return fmt.Errorf("%s %s: unit-level truth %v, request-level %v", c.design.name, key.name, unit, req)
			}
			q.Request = &EstimateStats{}
		}
		c.qs = append(c.qs, q)
		c.keys = append(c.keys, key)
		return nil
	}
	for i, ef := range unitTruth.Effects {
		if err := add(quantityKey{MainEffect, ef.Factor}, ef.Diff, reqTruth.Effects[i].Diff); err != nil {
			return c, err
		}
	}
	for i, ct := range unitTruth.Interactions {
		if err := add(quantityKey{Interaction, ct.Term}, ct.Estimate, reqTruth.Interactions[i].Estimate); err != nil {
			return c, err
		}
	}
	return c, nil
}

// coverageWindow is one window's estimates, per quantity of its case.
type coverageWindow struct {
	unit, request []estimate
}

// checkAggregate runs the windows of both designs of agg.
func checkAggregate(ctx context.Context, opt *RepeatOptions, agg assign.Aggregate) (AggregateCoverage, error) {
	m, rep := aggregateMetric(agg), repeatTraffic(opt)
	res := AggregateCoverage{Aggregate: agg, Metric: m.Dist.String(), Windows: opt.Windows}
	var cases []coverageCase
	for _, k := range []int{2, 3} {
		c, err := newCoverageCase(k, agg, m, rep)
		if err != nil {
			return res, err
		}
		cases = append(cases, c)
	}
	check := "coverage " + agg.String()
	seed := repeatSeed(opt.Seed, check)
	wins := make([]coverageWindow, len(cases)*opt.Windows)
	newWork := func() func(context.Context, int) error {
		var s unitSampler
		return func(_ context.Context, j int) (err error) {
			c := &cases[j/opt.Windows]
			wins[j], err = s.coverageWindow(repRand(seed, j), c, m, rep, agg, opt.Units, opt.Level)
			return err
		}
	}
	if err := parallel(ctx, len(wins), opt.Workers, newWork, opt.progress(check, len(wins))); err != nil {
		return res, err
	}
	for ci := range cases {
		c := &cases[ci]
		ws := wins[ci*opt.Windows : (ci+1)*opt.Windows]
		for qi := range c.qs {
			q := &c.qs[qi]
			q.Unit = estimateStats(len(ws), q.Truth, 1-opt.Level, func(i int) estimate { return ws[i].unit[qi] })
			if q.Request != nil {
				*q.Request = estimateStats(len(ws), q.Truth, 1-opt.Level, func(i int) estimate { return ws[i].request[qi] })
			}
		}
		res.Quantities = append(res.Quantities, c.qs...)
	}
	res.Unit = summarizeCoverage(res.Quantities, func(q *RepeatQuantity) *EstimateStats { return &q.Unit })
	if requestLevel(agg) {
		s := summarizeCoverage(res.Quantities, func(q *RepeatQuantity) *EstimateStats { return q.Request })
		res.Request = &s
	}
	return res, nil
}

// unitSampler is one worker's scratch space.
type unitSampler struct{ vals []float64 }

// coverageWindow simulates one window of case c and estimates its
// quantities from the unit-level (and request-level) table.
func (s *unitSampler) coverageWindow(rng *rand.Rand, c *coverageCase, m *truth.Model, rep *truth.Repeat, agg assign.Aggregate, units int, level float64) (coverageWindow, error) {
	d := &c.design
	unit := &analysis.CellTable{Factors: d.factors, Cells: make([]analysis.CellStats, len(d.mean))}
	var req *analysis.CellTable
	if c.requests {
		req = &analysis.CellTable{Factors: d.factors, Cells: make([]analysis.CellStats, len(d.mean))}
	}
	var ratios []analysis.RatioStats
	if agg == assign.AggregateRatio {
		ratios = make([]analysis.RatioStats, len(d.mean))
	}
	for range units {
		cell := rng.IntN(len(d.mean))
		s.vals = rep.Unit(rng, m, d.mean[cell], d.reqs[cell], s.vals[:0])
		if ratios != nil {
			ratios[cell].Add(truth.UnitValue(agg, s.vals), float64(len(s.vals)))
		} else {
			unit.Cells[cell].Add(truth.UnitValue(agg, s.vals))
		}
		if req != nil {
			for _, v := range s.vals {
				req.Cells[cell].Add(v)
			}
		}
	}
	var w coverageWindow
	for i := range ratios {
		if err := unit.MergeRatioCell(d.levels[i], ratios[i]); err != nil {
			return w, err
		}
	}
	var err error
	if w.unit, err = c.estimates(unit, level); err != nil {
		return w, err
	}
	if req != nil {
		w.request, err = c.estimates(req, level)
	}
	return w, err
}

// estimates runs analysis.Estimate on t and reads the case's quantities.
func (c *coverageCase) estimates(t *analysis.CellTable, level float64) ([]estimate, error) {
	e, err := analysis.Estimate(t, level)
	if err != nil {
		return nil, err
	}
	out := make([]estimate, len(c.keys))
	for i, k := range c.keys {
		out[i] = k.in(e)
	}
	return out, nil
}

// estimateStats summarises the estimates get(0), …, get(n − 1) against
// the truth, skipping those not ok (p < alpha counts as rejected).
func estimateStats(n int, truth, alpha float64, get func(i int) estimate) EstimateStats {
	var xs []float64
	var cover, rej int
	for i := range n {
		e := get(i)
		if !e.ok {
			continue
		}
		xs = append(xs, e.est)
		if e.lo <= truth && truth <= e.hi {
			cover++
		}
		if e.p < alpha {
			rej++
		}
	}
	if len(xs) == 0 {
		return EstimateStats{}
	}
	sm := summarize(xs)
	return EstimateStats{Reps: len(xs), Mean: sm.Mean, Bias: sm.Mean - truth, SD: sm.SD,
		Coverage: float64(cover) / float64(len(xs)), Rejected: float64(rej) / float64(len(xs))}
}

// summarizeCoverage pools the coverage of the estimates that get picks
// (nil: none) by kind.
func summarizeCoverage(qs []RepeatQuantity, get func(*RepeatQuantity) *EstimateStats) CoverageSummary {
	var cov, n [2]float64 // main, interaction
	for i := range qs {
		e := get(&qs[i])
		if e == nil {
			continue
		}
		k := 0
		if qs[i].Kind == Interaction {
			k = 1
		}
		cov[k] += e.Coverage * float64(e.Reps)
		n[k] += float64(e.Reps)
	}
	s := CoverageSummary{Intervals: int(n[0] + n[1])}
	if n[0] > 0 {
		s.Main = cov[0] / n[0]
	}
	if n[1] > 0 {
		s.Interaction = cov[1] / n[1]
	}
	if s.Intervals > 0 {
		s.All = (cov[0] + cov[1]) / (n[0] + n[1])
	}
	return s
}
