package sim

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"
)

func evaluate(t *testing.T, sc *Scenario, opt Options) *Result {
	t.Helper()
	res, err := Evaluate(context.Background(), sc, opt)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustLarge(t *testing.T) *Scenario {
	t.Helper()
	sc, err := Large(1)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestEvaluateDeterministic(t *testing.T) {
	one := evaluate(t, Shop(), Options{Reps: 6, Seed: 9, Workers: 1})
	two := evaluate(t, Shop(), Options{Reps: 6, Seed: 9, Workers: 2})
	if !reflect.DeepEqual(one, two) {
		t.Error("results depend on the number of workers")
	}
	other := evaluate(t, Shop(), Options{Reps: 6, Seed: 10, Workers: 2})
	if reflect.DeepEqual(one.Strategies, other.Strategies) {
		t.Error("results do not depend on the seed")
	}
}

// Every quantity's truth is the same in the viewpoint's subset factorial
// and in the full factorial: the scenarios' interactions lie inside
// subsets, so averaging over the tests outside changes nothing.
func TestEstimandSameInSubsetAndFullFactorial(t *testing.T) {
	for _, sc := range []*Scenario{Shop(), mustLarge(t)} {
		c, err := sc.compile()
		if err != nil {
			t.Fatal(err)
		}
		opt := Options{Reps: 1}
		if err := opt.defaults(); err != nil {
			t.Fatal(err)
		}
		r, err := newRunner(c, opt)
		if err != nil {
			t.Fatal(err)
		}
		for i, q := range r.quant {
			p := r.qplan[i]
			full := p.full.onMeans(r.full.truth[p.fullM])
			if math.Abs(full-q.Truth) > 1e-9 {
				t.Errorf("%s: %s %s: truth %v in the subset, %v in the full factorial", sc.Name, q.Kind, q.Name(), q.Truth, full)
			}
		}
	}
}

// The short run of the brief: outcomes against the known truth.
func TestEvaluateShopAgainstTruth(t *testing.T) {
	const R = 120
	res := evaluate(t, Shop(), Options{Reps: R, Seed: 1})
	a, b, c, d := res.Strategy(OneAtATime), res.Strategy(Orthogonal), res.Strategy(FullFactorial), res.Strategy(Subsets)
	for _, s := range res.Strategies {
		if s.Finished != R {
			t.Errorf("%s finished %d of %d replications", s.Strategy, s.Finished, R)
		}
	}
	covTol := 4 * math.Sqrt(0.95*0.05/R)
	var covered, n float64
	for i, q := range res.Quantities {
		e := d.Estimates[i]
		if e.Reps != R {
			t.Errorf("abmesh estimated %s %s in %d of %d replications", q.Kind, q.Name(), e.Reps, R)
			continue
		}
		if math.Abs(e.Bias) > 4*e.SD/math.Sqrt(R) {
			t.Errorf("abmesh %s %s: bias %v (SD %v)", q.Kind, q.Name(), e.Bias, e.SD)
		}
		if math.Abs(e.Coverage-0.95) > covTol {
			t.Errorf("abmesh %s %s: coverage %v", q.Kind, q.Name(), e.Coverage)
		}
		if q.Kind == MainEffect {
			covered += e.Coverage * R
			n += R
		}
	}
	if pooled := covered / n; math.Abs(pooled-0.95) > 4*math.Sqrt(0.95*0.05/n) {
		t.Errorf("abmesh main-effect coverage pooled over tests %v, want 0.95", pooled)
	}

	// The real interaction is found in most replications.
	for _, vp := range []string{"rec-model", "ui-layout"} {
		i := findInteraction(res, vp, map[string]string{"rec-model": "ui-layout", "ui-layout": "rec-model"}[vp])
		if i < 0 {
			t.Fatalf("no rec-model × ui-layout interaction in %s's subset", vp)
		}
		if det := d.Estimates[i].Rejected; det < 0.75 {
			t.Errorf("abmesh detected rec-model × ui-layout in %v of replications (%s)", det, vp)
		}
		if b.Estimates[i].Reps != 0 || a.Estimates[i].Reps != 0 {
			t.Error("two-sample strategies estimate interactions")
		}
	}
	// No interactions but the real one: false findings at about α.
	if d.InteractionTests != 3 || d.FalseFindingRate > 0.05+4*math.Sqrt(0.05*0.95/(3*R)) {
		t.Errorf("abmesh: %v null interaction tests, false finding rate %v", d.InteractionTests, d.FalseFindingRate)
	}
	if c.InteractionTests < 300 || math.Abs(c.FalseFindingRate-0.05) > 0.01 {
		t.Errorf("full factorial: %v null interaction tests, false finding rate %v", c.InteractionTests, c.FalseFindingRate)
	}

	// (b) is unbiased for the main effect but, blind to the interaction,
	// off by ∓b/2 = ∓7 for rec-model's effect with ui-layout fixed; (a)
	// estimates the effect at control, 7 below the main effect.
	main := res.Quantity(MainEffect, "rec-model", "rec-model")
	ships := res.Quantity(SimpleEffect, "rec-model", "rec-model | ui-layout=two-column")
	stays := res.Quantity(SimpleEffect, "rec-model", "rec-model | ui-layout=control")
	if main < 0 || ships < 0 || stays < 0 {
		t.Fatal("rec-model's quantities are missing")
	}
	near := func(what string, e EstimateStats, want float64) {
		t.Helper()
		if math.Abs(e.Bias-want) > 4*e.SD/math.Sqrt(R) {
			t.Errorf("%s: bias %v, want %v (SD %v)", what, e.Bias, want, e.SD)
		}
	}
	near("(b) main effect", b.Estimates[main], 0)
	near("(b) effect if ui-layout ships", b.Estimates[ships], -7)
	near("(b) effect if ui-layout does not ship", b.Estimates[stays], +7)
	near("(a) main effect", a.Estimates[main], -7)
	near("(a) effect if ui-layout ships", a.Estimates[ships], -14)
	near("(d) effect if ui-layout ships", d.Estimates[ships], 0)
	if cov := b.Estimates[ships].Coverage; cov > 0.5 {
		t.Errorf("(b) covers rec-model's effect if ui-layout ships in %v of replications", cov)
	}

	// Units: abmesh needs as many as two-sample tests here (the slowest
	// test, currency-rounding, is alone), fewer than one at a time or one
	// full factorial.
	if d.Units.Mean > 1.05*b.Units.Mean {
		t.Errorf("abmesh %v units, two-sample %v", d.Units.Mean, b.Units.Mean)
	}
	if a.Units.Mean < 2.5*d.Units.Mean || c.Units.Mean < 3*d.Units.Mean {
		t.Errorf("units: one at a time %v, full factorial %v, abmesh %v", a.Units.Mean, c.Units.Mean, d.Units.Mean)
	}
	if c.Cells != 128 || d.Cells != 8 {
		t.Errorf("cells: full factorial %d, abmesh %d", c.Cells, d.Cells)
	}
}

// The full factorial over 12 tests explodes: 4096 cells that must each
// fill, against 8-cell subsets.
func TestEvaluateLargeFullFactorialExplodes(t *testing.T) {
	res := evaluate(t, mustLarge(t), Options{Reps: 4, Seed: 1})
	c, d := res.Strategy(FullFactorial), res.Strategy(Subsets)
	if c.Cells != 4096 || c.PerCellN != 2 {
		t.Errorf("full factorial: %d cells × %d", c.Cells, c.PerCellN)
	}
	if c.Finished != 4 || d.Finished != 4 {
		t.Fatalf("finished: full factorial %d, abmesh %d", c.Finished, d.Finished)
	}
	if c.Units.Mean < 50*d.Units.Mean {
		t.Errorf("full factorial %v units, abmesh %v: want ≥ 50×", c.Units.Mean, d.Units.Mean)
	}
	if c.InteractionTests < 4000 {
		t.Errorf("full factorial tested %v null interactions", c.InteractionTests)
	}
}

func TestEvaluateUnitCap(t *testing.T) {
	res := evaluate(t, mustLarge(t), Options{Reps: 2, Seed: 1, MaxUnits: 2000})
	c, d := res.Strategy(FullFactorial), res.Strategy(Subsets)
	if c.Finished != 0 || c.Units.Mean != 2000 {
		t.Errorf("capped full factorial: finished %d, units %v", c.Finished, c.Units.Mean)
	}
	for i := range res.Quantities {
		if c.Estimates[i].Reps != 0 {
			t.Fatal("an unfinished full factorial produced estimates")
		}
	}
	if d.Finished != 2 {
		t.Errorf("abmesh finished %d of 2 under the cap", d.Finished)
	}
}

func TestEvaluateErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, Shop(), Options{Reps: 4}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
	if _, err := Evaluate(context.Background(), Shop(), Options{}); err == nil {
		t.Error("zero reps is not an error")
	}
	if _, err := Evaluate(context.Background(), Shop(), Options{Reps: 1, Level: 2}); err == nil {
		t.Error("level 2 is not an error")
	}
	bad := Shop()
	bad.Truths = nil
	if _, err := Evaluate(context.Background(), bad, Options{Reps: 1}); err == nil {
		t.Error("an invalid scenario is not an error")
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]float64{4, 1, 3, 2, 5})
	if s.Mean != 3 || s.Min != 1 || s.Max != 5 || s.P50 != 3 || math.Abs(s.SD-math.Sqrt(2.5)) > 1e-12 {
		t.Errorf("summarize = %+v", s)
	}
	if s.P5 != 1.2 || math.Abs(s.P95-4.8) > 1e-12 {
		t.Errorf("quantiles %v %v, want R's type 7 1.2 and 4.8", s.P5, s.P95)
	}
	if (summarize(nil) != Summary{}) {
		t.Error("summary of nothing is not zero")
	}
}

// BenchmarkReplicate measures one replication of every strategy: the hot
// path of Evaluate (assignment by the engine, cell statistics, estimates).
func BenchmarkReplicate(b *testing.B) {
	large, err := Large(1)
	if err != nil {
		b.Fatal(err)
	}
	for _, sc := range []*Scenario{Shop(), large} {
		b.Run(sc.Name, func(b *testing.B) {
			c, err := sc.compile()
			if err != nil {
				b.Fatal(err)
			}
			opt := Options{Reps: 1}
			if err := opt.defaults(); err != nil {
				b.Fatal(err)
			}
			r, err := newRunner(c, opt)
			if err != nil {
				b.Fatal(err)
			}
			w := r.newWorker()
			b.ReportAllocs()
			rep := 0
			for b.Loop() {
				if _, err := w.replicate(context.Background(), rep); err != nil {
					b.Fatal(err)
				}
				rep++
			}
		})
	}
}
