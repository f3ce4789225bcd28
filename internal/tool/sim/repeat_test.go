package sim

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/abmesh/abmesh/assign"
)

// binomialSE is the standard error of a rate p estimated from n trials.
func binomialSE(p float64, n int) float64 { return math.Sqrt(p * (1 - p) / float64(n)) }

// Issue 10, item 4: with a true 50/50 split and geometric requests (mean
// 5), the chi-square on distinct units flags (p < 0.001) in at most 0.2%
// of 5,000 windows, while the chi-square on requests flags about 27%
// (its statistic is 2m − 1 = 9 times too large). With a 50.5/49.5 split
// the unit check detects the imbalance at the rate a 1-df noncentral
// chi-square predicts: 88% at 200k units, not the 95% the issue asks for
// there (λ = 4n·0.005² = 20); 95% needs about 245k units, and at 300k
// it fires in at least 95% of 200 windows. The report's flag over a
// subset of three tests (three member checks and the joint check over 8
// cells, each at 0.001/4) fires in at most 0.2% of true splits too.
func TestCheckSRM(t *testing.T) {
	opt := DefaultRepeatOptions()
	res, err := CheckSRM(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	null := res.Null
	if null.Windows != 5000 || null.Units != 2000 || null.Share != 0.5 {
		t.Fatalf("null windows %+v", null)
	}
	if null.UnitRate > 0.002 {
		t.Errorf("unit-level SRM flagged %.2f%% of true 50/50 windows, want ≤ 0.2%%", 100*null.UnitRate)
	}
	if math.Abs(null.UnitTheory-0.001) > 1e-9 {
		t.Errorf("unit-level theory under a true split %v, want the threshold", null.UnitTheory)
	}
	if se := binomialSE(null.RequestTheory, null.Windows); math.Abs(null.RequestRate-null.RequestTheory) > 4*se || null.RequestRate < 0.2 {
		t.Errorf("request-level SRM flagged %.1f%% of true 50/50 windows, theory %.1f%%", 100*null.RequestRate, 100*null.RequestTheory)
	}
	// The report flags a subset when any member's check or the joint
	// check over its cells flags, each at 0.001/4: at most 0.1% in all.
	if res.SubsetTests != 3 || math.Abs(null.SubsetRate-null.SubsetTheory) > 4*binomialSE(null.SubsetTheory, null.Windows) ||
		null.SubsetRate > 0.002 || null.SubsetTheory > 0.001 {
		t.Errorf("the report's flag over a subset of %d fired in %.2f%% of true splits, theory %.2f%%", res.SubsetTests, 100*null.SubsetRate, 100*null.SubsetTheory)
	}
	if len(res.Imbalance) != 3 {
		t.Fatalf("%d imbalance sizes", len(res.Imbalance))
	}
	for _, r := range res.Imbalance {
		if se := binomialSE(r.UnitTheory, r.Windows); math.Abs(r.UnitRate-r.UnitTheory) > 4*se+1/float64(r.Windows) {
			t.Errorf("%d units, share %v: unit-level SRM fired in %.1f%%, theory %.1f%%", r.Units, r.Share, 100*r.UnitRate, 100*r.UnitTheory)
		}
	}
	if a := res.Imbalance[0]; a.Units != 200_000 || math.Abs(a.UnitTheory-0.881) > 0.001 {
		t.Errorf("at 200k units: %+v, want theory 0.881", a)
	}
	if last := res.Imbalance[2]; last.Units != 300_000 || last.UnitRate < 0.95 {
		t.Errorf("at %d units a 50.5/49.5 split was detected in %.1f%% of windows, want ≥ 95%%", last.Units, 100*last.UnitRate)
	}
}

// Issue 10, item 5: with 5 requests per unit (geometric) and ρ = 0.3,
// the 95% intervals of the main effects and interaction contrasts of the
// 2×2 and 2×2×2 designs, analysed on unit-level cell tables by the real
// analysis.Estimate, cover the truth in 95% ± 1% of 2,000 windows, for
// each aggregate (pooled over the quantities of each kind: 10,000
// intervals, so ±1% is 4.6 binomial SE); each quantity is within 4
// binomial SE of 95% and unbiased within 4 SE. The same requests analysed
// one row per request cover far less.
func TestCheckCoverage(t *testing.T) {
	opt := DefaultRepeatOptions()
	res, err := CheckCoverage(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(CoverageAggregates) {
		t.Fatalf("%d aggregates", len(res))
	}
	for _, a := range res {
		if a.Windows != 2000 || len(a.Quantities) != 3+7 {
			t.Fatalf("%v: %d windows, %d quantities", a.Aggregate, a.Windows, len(a.Quantities))
		}
		u := a.Unit
		for _, c := range []struct {
			name string
			cov  float64
		}{{"main effects", u.Main}, {"interactions", u.Interaction}, {"all", u.All}} {
			if math.Abs(c.cov-0.95) > 0.01 {
				t.Errorf("%v, unit level, %s: coverage %.2f%%, want 95 ± 1%%", a.Aggregate, c.name, 100*c.cov)
			}
		}
		for _, q := range a.Quantities {
			e := q.Unit
			if e.Reps != a.Windows {
				t.Errorf("%v %s %s: %d estimates of %d windows", a.Aggregate, q.Design, q.Name, e.Reps, a.Windows)
			}
			if math.Abs(e.Coverage-0.95) > 4*binomialSE(0.95, e.Reps) {
				t.Errorf("%v %s %s: coverage %.3f", a.Aggregate, q.Design, q.Name, e.Coverage)
			}
			if math.Abs(e.Bias) > 4*e.SD/math.Sqrt(float64(e.Reps)) {
				t.Errorf("%v %s %s: bias %.4g (SD %.4g, truth %.4g)", a.Aggregate, q.Design, q.Name, e.Bias, e.SD, q.Truth)
			}
		}
		if (a.Request != nil) != requestLevel(a.Aggregate) {
			t.Errorf("%v: request-level analysis %v", a.Aggregate, a.Request)
		}
		// Design effect 1 + (E[N²]/E[N] − 1)·ρ ≈ 3.4: the request-level
		// intervals are √3.4 ≈ 1.8 times too narrow, so they cover ~71%.
		if a.Request != nil && (a.Request.All > 0.8 || a.Request.All < 0.6) {
			t.Errorf("%v: request-level coverage %.3f, want about 0.71", a.Aggregate, a.Request.All)
		}
	}
}

// The power plan counts units: with the per-cell rule counting requests,
// COMPLETE comes with a fraction of the units and the unit-level power
// there is far below the plan's; counting units it reaches the plan's
// power (within 4 binomial SE), and the intervals cover.
func TestCheckDecision(t *testing.T) {
	opt := DefaultRepeatOptions()
	res, err := CheckDecision(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	req, unit := res.Request, res.Unit
	tol := 4 * binomialSE(res.Power, res.Windows)
	if unit.UnitPower < res.Power-tol || unit.UnitPower > res.Power+0.1 {
		t.Errorf("unit-level rule: power %.3f, plan %.2f", unit.UnitPower, res.Power)
	}
	if math.Abs(unit.Coverage-0.95) > 4*binomialSE(0.95, res.Windows) {
		t.Errorf("unit-level rule: coverage %.3f", unit.Coverage)
	}
	if !(req.Units.Mean < unit.Units.Mean/2) {
		t.Errorf("units to decision: requests %.0f, units %.0f (want the request rule to stop at under half)", req.Units.Mean, unit.Units.Mean)
	}
	if req.UnitPower > res.Power-0.2 || req.Coverage > 0.85 {
		t.Errorf("request-level rule: real power %.3f, coverage %.3f (want far below the plan's)", req.UnitPower, req.Coverage)
	}
}

// Results do not depend on the number of workers.
func TestEvaluateRepeatDeterministic(t *testing.T) {
	opt := RepeatOptions{Requests: 3, ICC: 0.2, Windows: 6, NullWindows: 6, DetectWindows: 2, DecisionWindows: 4,
		Units: 200, DetectUnits: []int{300, 100}, Seed: 9, Workers: 1}
	a, err := EvaluateRepeat(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	opt.Workers = 3
	b, err := EvaluateRepeat(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	a.Runtime, b.Runtime = 0, 0
	if !reflect.DeepEqual(a, b) {
		t.Error("one worker and three workers give different results")
	}
	if a.SRM.Imbalance[0].Units != 100 || a.Coverage[0].Aggregate != assign.AggregateMean {
		t.Errorf("sizes not sorted or aggregates out of order: %+v", a.SRM.Imbalance)
	}
}

func TestRepeatOptionsInvalid(t *testing.T) {
	for name, mod := range map[string]func(*RepeatOptions){
		"requests < 1":      func(o *RepeatOptions) { o.Requests = 0.5 },
		"correlation 1":     func(o *RepeatOptions) { o.ICC = 1 },
		"no windows":        func(o *RepeatOptions) { o.Windows = 0 },
		"no null windows":   func(o *RepeatOptions) { o.NullWindows = 0 },
		"too few units":     func(o *RepeatOptions) { o.Units = 3 },
		"level 1":           func(o *RepeatOptions) { o.Level = 1 },
		"detect at 1 unit":  func(o *RepeatOptions) { o.DetectUnits = []int{1} },
		"no decision level": func(o *RepeatOptions) { o.DecisionWindows = -1 },
	} {
		o := DefaultRepeatOptions()
		mod(&o)
		if _, err := EvaluateRepeat(context.Background(), o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := EvaluateRepeat(ctx, DefaultRepeatOptions()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}
