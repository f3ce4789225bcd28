package sim

import (
	"context"
	"testing"
	"time"
)

// TestMonitoring: reading a 2×2×2 A/A subset after every 1% of its
// horizon, the fixed-horizon p-values reject at some look far more often
// than α, at the horizon alone about α; the anytime-valid p-values reject
// at most α (within Monte-Carlo error) for main effects and interactions,
// and the confidence sequences cover 0 at every look in ≥ 1 − α. With an
// effect of the planned size the report is mostly DECIDED, significant,
// and the median units to it are reported; planning the null a:b as well
// makes the rule wait for its futility.
func TestMonitoring(t *testing.T) {
	opt := DefaultMonitoringOptions()
	opt.Reps, opt.DecisionReps = 1000, 100
	if testing.Short() {
		opt.Reps, opt.DecisionReps = 300, 60
	}
	start := time.Now()
	res, err := EvaluateMonitoring(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d A/A reps, %d looks, horizon %d units (%d per cell), φ₀ %.1f: main %+v; interactions %+v; any term: fixed %.3f, anytime %.3f; decision %+v (%s)",
		res.Reps, res.Looks, res.Horizon, res.HorizonPerCell, res.Phi, res.Main, res.Interactions, res.AnyTermFixed, res.AnyTermAnytime, res.Decision, time.Since(start))
	if res.HorizonPerCell < 90 || res.HorizonPerCell > 110 {
		t.Fatalf("horizon %d per cell: the plan's defaults changed", res.HorizonPerCell)
	}
	alpha := opt.Plan.Alpha
	for name, r := range map[string]TermRates{"main effects": res.Main, "interactions": res.Interactions} {
		// Per-term rates are correlated across a replication's terms only
		// through the shared residual variance; 3 SE over the per-term count.
		if r.AnytimeAnyLook > alpha+3*r.MCError {
			t.Errorf("%s: anytime-valid rejects at some look in %.3f, over α + 3 SE = %.3f", name, r.AnytimeAnyLook, alpha+3*r.MCError)
		}
		if r.Coverage < 1-alpha-3*r.MCError {
			t.Errorf("%s: sequences cover 0 at every look in %.3f, under 1 − α − 3 SE", name, r.Coverage)
		}
		if r.FixedAnyLook < 0.2 {
			t.Errorf("%s: fixed-horizon p read at every look rejects in only %.3f: want clearly inflated (≥ 20%%)", name, r.FixedAnyLook)
		}
		if r.FixedHorizon > alpha+4*r.MCError {
			t.Errorf("%s: fixed-horizon p at the horizon alone rejects in %.3f, want about α", name, r.FixedHorizon)
		}
	}
	d := res.Decision
	if d.Decided < 0.7 || d.Significant < d.Decided-0.05 || d.Units.P50 <= 0 || d.FixedPower < 0.6 {
		t.Errorf("decision %+v: want most replications DECIDED significant with a median units figure, fixed power about 80%%", d)
	}
	// With the null a:b planned too, deciding needs its futility: later,
	// and then mostly futile (a true null is rarely significant).
	di := res.DecisionInteraction
	t.Logf("with a:b planned: %+v", di)
	if di.InteractionMDE != opt.InteractionMDE || di.Units.P50 < d.Units.P50 || di.Decided < 0.5 || di.Futile < di.Decided-0.1 {
		t.Errorf("decision with a:b %+v: want later than %v units, mostly futile", di, d.Units.P50)
	}
}
