package report

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// layerTruth is the outcome model of the layer scenario: fx (the third
// test, control/rounded) is measured on checkout, where the layer
// checkout-flow's tests pay ([0, 4000), control/one-click) and ship
// ([4000, 8000), control/free-shipping) change the order; 20% of units
// are outside both slices.
//
//	y = Mu + FX·fx + Pay·pay + Ship·ship + InShip·(unit in ship's slice)
//	      + FXPay·fx·pay + SD·ε
//
// with fx, pay, ship the treatment indicators.
type layerTruth struct{ Mu, FX, Pay, Ship, InShip, FXPay, SD float64 }

// The effects the report estimates: each layer test's variant against
// that test's control, averaged over fx's two levels, and fx's effect
// averaged over the layer factor's five levels (FXPay lives in one).
func (m layerTruth) payEffect() float64  { return m.Pay + m.FXPay/2 }
func (m layerTruth) shipEffect() float64 { return m.Ship }
func (m layerTruth) fxEffect() float64   { return m.FX + m.FXPay/5 }

func layerEngine(t *testing.T) *assign.Engine {
	t.Helper()
	exp := func(id, svc string, layer string, slice assign.Slice, variants ...string) assign.Experiment {
		x := assign.Experiment{ID: id, ChangeService: svc, MeasureService: "checkout", Layer: layer, Slice: slice,
			Metric: assign.Metric{Kind: assign.MetricLatencyMS}, Status: assign.StatusRunning, Phase: 1,
			Plan:     assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 5, SD: 10},
			Emits:    []assign.Interference{{Kind: subset.KindUserExperience, Scope: "measure"}},
			Variants: []assign.Variant{{Name: variants[0], Weight: 50}, {Name: variants[1], Weight: 50}},
			Phases:   []assign.Phase{{Number: 1, Weights: []uint32{50, 50}}}}
		return x
	}
	fx := exp("fx", "currency", "", assign.Slice{}, "control", "rounded")
	fx.Emits, fx.Susceptible = nil, []assign.Interference{{Kind: subset.KindUserExperience, Scope: "measure"}}
	eng, err := assign.Compile(assign.Config{
		Layers: []assign.Layer{{ID: "checkout-flow"}},
		Experiments: []assign.Experiment{fx,
			exp("pay", "payment", "checkout-flow", assign.Slice{Start: 0, End: 4000}, "control", "one-click"),
			exp("ship", "shipping", "checkout-flow", assign.Slice{Start: 4000, End: 8000}, "control", "free-shipping")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// layerWindow counts n simulated units, one request each, into fx's
// window through the real engine (hash, slices) and the cell counter, and
// returns the window.
func layerWindow(t *testing.T, eng *assign.Engine, m layerTruth, n int) subset.WindowCells {
	t.Helper()
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ws := subset.NewWindows()
	s := subset.NewSubsetter(ws, subset.WithClock(func() time.Time { return start }))
	var tests []subset.Test
	for _, x := range eng.Config().Experiments {
		tests = append(tests, subset.FromExperiment(x))
	}
	if err := s.SetTests(tests); err != nil {
		t.Fatal(err)
	}
	if err := s.ObserveEdges([]tracing.Edge{{Caller: "checkout", Callee: "currency", Calls: 99},
		{Caller: "checkout", Callee: "payment", Calls: 99}, {Caller: "checkout", Callee: "shipping", Calls: 99}}); err != nil {
		t.Fatal(err)
	}
	c := subset.NewCellCounter(ws, eng)
	rng := rand.New(rand.NewPCG(42, 6))
	service := map[string]string{"fx": "currency", "pay": "payment", "ship": "shipping"}
	for i := range n {
		u := fmt.Sprintf("user-%d", i)
		o := &tracing.Observation{Unit: u, Start: start.Add(time.Minute)}
		treated := map[string]bool{}
		for _, a := range eng.AppendAssignments(nil, u, nil, assign.Filter{}) {
			treated[a.Test] = a.Reason.Randomized() && a.Variant != "control"
			// Requests reach payment and shipping half the time each; a
			// service records every evaluation, in its slice or not.
			if a.Test == "fx" || rng.IntN(2) == 0 {
				o.Exposures = append(o.Exposures, tracing.Exposure{Test: a.Test, Variant: a.Variant, Service: service[a.Test],
					Phase: a.Phase, Reason: strings.ToLower(a.Reason.String())})
			}
		}
		y := m.Mu + m.SD*rng.NormFloat64()
		y += m.FX*b(treated["fx"]) + m.Pay*b(treated["pay"]) + m.Ship*b(treated["ship"]) + m.FXPay*b(treated["fx"] && treated["pay"])
		if eng.InSlice("ship", u) {
			y += m.InShip
		}
		o.Metrics = []tracing.ServiceMetrics{{Service: "checkout", LatencyMS: y}}
		c.ConsumeObservation(o)
	}
	w, ok := ws.Current("fx")
	if !ok {
		t.Fatal("fx has no window")
	}
	return w
}

func b(x bool) float64 {
	if x {
		return 1
	}
	return 0
}

// TestLayerInSubsetReport: a third test whose subset holds both tests of a
// layer counts every request (none is excluded as not_in_slice), its cells
// carry the layer's (test, variant) levels and "outside", and its report
// estimates each layer test's variant against that test's own control —
// within 4 standard errors of the simulated truth — with a sample-ratio
// check of the layer factor against the slices' shares.
func TestLayerInSubsetReport(t *testing.T) {
	eng := layerEngine(t)
	m := layerTruth{Mu: 100, FX: 5, Pay: 8, Ship: -6, InShip: 3, FXPay: 4, SD: 10}
	const n = 20000
	w := layerWindow(t, eng, m, n)
	if q := w.Quality; q.Seen != n || q.Counted != n || q.NotInSlice != 0 {
		t.Fatalf("quality %+v: want all %d requests counted", q, n)
	}
	r := Build(w, func(id string) (*assign.Experiment, bool) { return eng.Experiment(id) }, Options{Now: now})
	if r.Estimates == nil || r.Anova == nil {
		t.Fatalf("no estimates: %v", r.Notes)
	}
	if !slices.Equal(r.Estimates.Factors, []string{"fx", "checkout-flow"}) {
		t.Fatalf("factors %v", r.Estimates.Factors)
	}
	if lf := r.Window.Members[1]; !lf.IsLayer() || lf.Tests[0].Test != "pay" || lf.Tests[1].Test != "ship" {
		t.Errorf("layer factor %+v", lf)
	}
	if got := len(r.Window.Cells); got != 10 {
		t.Errorf("%d cells, want 2 × 5", got)
	}
	// ship's variant is compared with ship's control, whose units share
	// the slice's own effect InShip; against every other unit it would be
	// biased by InShip.
	for _, c := range []struct {
		factor, variant, control string
		truth                    float64
	}{
		{"fx", "rounded", "control", m.fxEffect()},
		{"checkout-flow", "pay/one-click", "pay/control", m.payEffect()},
		{"checkout-flow", "ship/free-shipping", "ship/control", m.shipEffect()},
	} {
		e := r.Estimates.Effect(c.factor, c.variant)
		if e == nil || e.Control != c.control || e.Note != "" {
			t.Errorf("%s %s: %+v", c.factor, c.variant, e)
			continue
		}
		if math.Abs(e.Diff-c.truth) > 4*e.DiffSE {
			t.Errorf("%s %s vs %s = %.3f ± %.3f, truth %.3f", c.factor, c.variant, c.control, e.Diff, e.DiffSE, c.truth)
		}
	}
	if len(r.Estimates.Effects) != 3 {
		t.Errorf("%d effects, want 3 (no effect for a control or outside)", len(r.Estimates.Effects))
	}
	chk := r.SRM[1]
	if chk.Test != "checkout-flow" || chk.Note != "" || !approx(chk.Result.Expected, []float64{0.2 * n, 0.2 * n, 0.2 * n, 0.2 * n, 0.2 * n}) {
		t.Errorf("layer SRM %+v", chk)
	}
	if r.JointSRM == nil || r.JointSRM.Note != "" || len(r.JointSRM.Cells) != 10 {
		t.Errorf("joint SRM over fx × the layer: %+v", r.JointSRM)
	}
	if r.SRMFlagged {
		t.Errorf("SRM flagged on a correct split: %+v", r.SRM)
	}
}

func approx(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Abs(x-y) < 1e-6*math.Max(1, math.Abs(y)) })
}
