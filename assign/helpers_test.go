package assign

import (
	"strconv"
	"testing"
)

// testExp returns a valid running experiment in phase 1 with the given
// variants, or control/treatment 50/50 when none are given.
func testExp(id string, vs ...Variant) Experiment {
	if len(vs) == 0 {
		vs = []Variant{{"control", 50}, {"treatment", 50}}
	}
	x := Experiment{
		ID:             id,
		ChangeService:  "svc",
		MeasureService: "svc",
		Variants:       append([]Variant(nil), vs...),
		Plan:           Plan{Alpha: 0.05, Power: 0.8, MDE: 1},
		Status:         StatusRunning,
	}
	x.Phase = 1
	x.Phases = []Phase{newPhase(1, &x, x.CreatedAt)}
	return x
}

// weights returns variants named control, v1, v2, ... with weights ws.
func weights(ws ...uint32) []Variant {
	vs := make([]Variant, len(ws))
	for i, w := range ws {
		vs[i] = Variant{Name: "v" + strconv.Itoa(i), Weight: w}
	}
	vs[0].Name = "control"
	return vs
}

func mustCompile(t testing.TB, cfg Config, opts ...Option) *Engine {
	t.Helper()
	e, err := Compile(cfg, opts...)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return e
}

func unitID(i int) string { return "user-" + strconv.Itoa(i) }

func mustEval(t testing.TB, e *Engine, test, unit string, attrs map[string]string) Assignment {
	t.Helper()
	a, err := e.EvaluateTest(test, unit, attrs)
	if err != nil {
		t.Fatalf("EvaluateTest(%q, %q): %v", test, unit, err)
	}
	return a
}
