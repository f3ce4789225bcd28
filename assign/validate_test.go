package assign

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"a", true}, {"checkout-v2", true}, {"0", true}, {"a-b-c", true}, {strings.Repeat("a", 63), true},
		{"", false}, {strings.Repeat("a", 64), false}, {"-a", false}, {"a-", false}, {"A", false},
		{"a_b", false}, {"a.b", false}, {"a b", false}, {"ü", false},
	}
	for _, tt := range tests {
		if got := ValidID(tt.id); got != tt.want {
			t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

// TestExperimentValidate mutates a valid experiment and checks the field
// the error names.
func TestExperimentValidate(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(x *Experiment)
		field string // "" = valid
	}{
		{"valid", func(*Experiment) {}, ""},
		{"valid layered", func(x *Experiment) { x.Layer, x.Slice = "l", Slice{0, 10000} }, ""},
		{"valid many variants", func(x *Experiment) { x.Variants = weights(1, 0, 0, 5) }, ""},
		{"valid max sum", func(x *Experiment) { x.Variants = weights(math.MaxUint32-1, 1) }, ""},
		{"valid interference", func(x *Experiment) {
			x.Emits = []Interference{{"latency", ScopeChangeDownstream}}
			x.Susceptible = []Interference{{"my-kind", ScopeAll}}
		}, ""},
		{"valid attribute metric", func(x *Experiment) { x.Metric = Metric{Kind: MetricAttribute, Attribute: "shop.order.value"} }, ""},
		{"empty id", func(x *Experiment) { x.ID = "" }, "id"},
		{"bad id", func(x *Experiment) { x.ID = "Checkout" }, "id"},
		{"long owner", func(x *Experiment) { x.Owner = strings.Repeat("o", 257) }, "owner"},
		{"long description", func(x *Experiment) { x.Description = strings.Repeat("d", 4097) }, "description"},
		{"no change service", func(x *Experiment) { x.ChangeService = "" }, "change_service"},
		{"no measure service", func(x *Experiment) { x.MeasureService = "" }, "measure_service"},
		{"metric kind", func(x *Experiment) { x.Metric.Kind = 7 }, "metric.kind"},
		{"attribute metric without attribute", func(x *Experiment) { x.Metric.Kind = MetricAttribute }, "metric.attribute"},
		{"attribute on latency metric", func(x *Experiment) { x.Metric.Attribute = "x" }, "metric.attribute"},
		{"one variant", func(x *Experiment) { x.Variants = x.Variants[:1] }, "variants"},
		{"no variants", func(x *Experiment) { x.Variants = nil }, "variants"},
		{"bad variant name", func(x *Experiment) { x.Variants[1].Name = "Treatment" }, "variants[1].name"},
		{"empty variant name", func(x *Experiment) { x.Variants[0].Name = "" }, "variants[0].name"},
		{"duplicate variant", func(x *Experiment) { x.Variants[1].Name = "control" }, "variants[1].name"},
		{"all weights zero", func(x *Experiment) { x.Variants = weights(0, 0) }, "variants"},
		{"weight sum overflow", func(x *Experiment) { x.Variants = weights(math.MaxUint32, 1) }, "variants[1].weight"},
		{"weight sum overflow later", func(x *Experiment) { x.Variants = weights(1<<31, 1<<31-1, 1, 1) }, "variants[2].weight"},
		{"bad layer", func(x *Experiment) { x.Layer, x.Slice = "L", Slice{0, 1} }, "layer"},
		{"empty slice", func(x *Experiment) { x.Layer, x.Slice = "l", Slice{5, 5} }, "slice.start"},
		{"slice end past buckets", func(x *Experiment) { x.Layer, x.Slice = "l", Slice{0, 10001} }, "slice.end"},
		{"slice without layer", func(x *Experiment) { x.Slice = Slice{0, 10} }, "slice"},
		{"rule attribute", func(x *Experiment) { x.Targeting = []Rule{{"", OpEq, []string{"x"}}} }, "targeting[0].attribute"},
		{"rule op", func(x *Experiment) { x.Targeting = []Rule{{"a", OpIn, []string{"x"}}, {"a", 9, []string{"x"}}} }, "targeting[1].op"},
		{"eq two values", func(x *Experiment) { x.Targeting = []Rule{{"a", OpEq, []string{"x", "y"}}} }, "targeting[0].values"},
		{"in no values", func(x *Experiment) { x.Targeting = []Rule{{"a", OpIn, nil}} }, "targeting[0].values"},
		{"not_in no values", func(x *Experiment) { x.Targeting = []Rule{{"a", OpNotIn, nil}} }, "targeting[0].values"},
		{"long rule value", func(x *Experiment) { x.Targeting = []Rule{{"a", OpIn, []string{"x", strings.Repeat("v", 1025)}}} }, "targeting[0].values[1]"},
		{"too many rules", func(x *Experiment) { x.Targeting = make([]Rule, 65) }, "targeting"},
		{"long salt", func(x *Experiment) { x.Salt = strings.Repeat("s", 257) }, "salt"},
		{"empty emits kind", func(x *Experiment) { x.Emits = []Interference{{"", ScopeAll}} }, "emits[0].kind"},
		{"bad emits scope", func(x *Experiment) { x.Emits = []Interference{{"latency", "everywhere"}} }, "emits[0].scope"},
		{"empty susceptible scope", func(x *Experiment) {
			x.Susceptible = []Interference{{"latency", ScopeAll}, {"latency", ""}}
		}, "susceptible[1].scope"},
		{"alpha zero", func(x *Experiment) { x.Plan.Alpha = 0 }, "plan.alpha"},
		{"alpha one", func(x *Experiment) { x.Plan.Alpha = 1 }, "plan.alpha"},
		{"alpha NaN", func(x *Experiment) { x.Plan.Alpha = math.NaN() }, "plan.alpha"},
		{"power negative", func(x *Experiment) { x.Plan.Power = -0.1 }, "plan.power"},
		{"mde zero", func(x *Experiment) { x.Plan.MDE = 0 }, "plan.mde"},
		{"mde inf", func(x *Experiment) { x.Plan.MDE = math.Inf(1) }, "plan.mde"},
		{"sd negative", func(x *Experiment) { x.Plan.SD = -1 }, "plan.sd"},
		{"status", func(x *Experiment) { x.Status = 9 }, "status"},
		{"concluded without winner", func(x *Experiment) { x.Status = StatusConcluded }, "winner"},
		{"concluded unknown winner", func(x *Experiment) { x.Status, x.Winner = StatusConcluded, "nope" }, "winner"},
		{"winner while running", func(x *Experiment) { x.Winner = "control" }, "winner"},
		{"draft with phase", func(x *Experiment) { x.Status = StatusDraft }, "phase"},
		{"running without phase", func(x *Experiment) { x.Phase, x.Phases = 0, nil }, "phase"},
		{"phases length", func(x *Experiment) { x.Phases = nil }, "phases"},
		{"phase numbering", func(x *Experiment) { x.Phases[0].Number = 2 }, "phases[0].number"},

		// Limits that protect the control plane.
		{"valid max variants", func(x *Experiment) { x.Variants = weights(make([]uint32, MaxVariants)...); x.Variants[0].Weight = 1 }, ""},
		{"too many variants", func(x *Experiment) { x.Variants = weights(make([]uint32, MaxVariants+1)...); x.Variants[0].Weight = 1 }, "variants"},
		{"valid max emits", func(x *Experiment) { x.Emits = interference(MaxInterference) }, ""},
		{"too many emits", func(x *Experiment) { x.Emits = interference(MaxInterference + 1) }, "emits"},
		{"too many susceptible", func(x *Experiment) { x.Susceptible = interference(MaxInterference + 1) }, "susceptible"},
		{"duplicate variant far apart", func(x *Experiment) {
			x.Variants = weights(make([]uint32, MaxVariants)...)
			x.Variants[0].Weight, x.Variants[MaxVariants-1].Name = 1, "v3"
		}, fmt.Sprintf("variants[%d].name", MaxVariants-1)},

		// Text a terminal or a page would act on.
		{"escape in owner", func(x *Experiment) { x.Owner = "team\x1b[2J" }, "owner"},
		{"newline in owner", func(x *Experiment) { x.Owner = "team\nfake: line" }, "owner"},
		{"invalid UTF-8 in owner", func(x *Experiment) { x.Owner = "team\xff" }, "owner"},
		{"valid non-ASCII owner", func(x *Experiment) { x.Owner = "équipe 支付 👩‍👩‍👧" }, ""},
		{"valid multi-line description", func(x *Experiment) { x.Description = "line one\n\tline two" }, ""},
		{"bell in description", func(x *Experiment) { x.Description = "ok\a" }, "description"},
		{"C1 control in description", func(x *Experiment) { x.Description = "ok\u009b31m" }, "description"},
		{"bidi override in description", func(x *Experiment) { x.Description = "price \u202e001$" }, "description"},
		{"bidi isolate in description", func(x *Experiment) { x.Description = "a\u2067b" }, "description"},
		{"line separator in description", func(x *Experiment) { x.Description = "a\u2028b" }, "description"},
		{"NUL in change service", func(x *Experiment) { x.ChangeService = "svc\x00" }, "change_service"},
		{"DEL in measure service", func(x *Experiment) { x.MeasureService = "svc\x7f" }, "measure_service"},
		{"control in salt", func(x *Experiment) { x.Salt = "s\r" }, "salt"},
		{"control in metric attribute", func(x *Experiment) { x.Metric = Metric{Kind: MetricAttribute, Attribute: "a\tb"} }, "metric.attribute"},
		{"control in rule attribute", func(x *Experiment) { x.Targeting = []Rule{{"a\x1b", OpEq, []string{"x"}}} }, "targeting[0].attribute"},
		{"control in rule value", func(x *Experiment) { x.Targeting = []Rule{{"a", OpIn, []string{"x", "y\x07"}}} }, "targeting[0].values[1]"},
		{"control in interference kind", func(x *Experiment) { x.Emits = []Interference{{"lat\x1bency", ScopeAll}} }, "emits[0].kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := testExp("exp")
			tt.mod(&x)
			checkFieldErr(t, x.Validate(), tt.field)
		})
	}
}

func checkFieldErr(t *testing.T, err error, field string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want a *FieldError on %q", err, field)
	}
	if fe.Field != field {
		t.Errorf("field %q (%v), want %q", fe.Field, err, field)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("%v does not wrap ErrInvalid", err)
	}
}

func TestPlanDefaults(t *testing.T) {
	p := Plan{MDE: 2}
	p.Defaults()
	if p.Alpha != DefaultAlpha || p.Power != DefaultPower || p.MDE != 2 {
		t.Errorf("Defaults gave %+v", p)
	}
	p = Plan{Alpha: 0.01, Power: 0.9, MDE: 1}
	p.Defaults()
	if p.Alpha != 0.01 || p.Power != 0.9 {
		t.Errorf("Defaults overwrote %+v", p)
	}
	x := testExp("exp")
	x.Plan = Plan{MDE: 1}
	if err := x.Validate(); err == nil {
		t.Error("zero alpha validates before Defaults")
	}
	x.Defaults()
	if err := x.Validate(); err != nil {
		t.Errorf("after Defaults: %v", err)
	}
}

func TestLayerAndOverrideValidate(t *testing.T) {
	checkFieldErr(t, (&Layer{ID: "homepage"}).Validate(), "")
	checkFieldErr(t, (&Layer{ID: "Home"}).Validate(), "id")
	checkFieldErr(t, (&Layer{ID: "h", Description: strings.Repeat("d", 5000)}).Validate(), "description")
	checkFieldErr(t, (&Layer{ID: "h", Description: "home\x1b]0;pwned\x07"}).Validate(), "description")
	checkFieldErr(t, (&Override{"exp", "u", "control"}).Validate(), "")
	checkFieldErr(t, (&Override{"exp", "u\x1b[1m", "control"}).Validate(), "unit_id")
	checkFieldErr(t, (&Override{"", "u", "control"}).Validate(), "experiment")
	checkFieldErr(t, (&Override{"exp", "", "control"}).Validate(), "unit_id")
	checkFieldErr(t, (&Override{"exp", "u", ""}).Validate(), "variant")
}

// TestUnitAndFilterText checks that unit ids and a request's service
// refuse control and bidirectional formatting characters and keep the
// rest.
func TestUnitAndFilterText(t *testing.T) {
	for _, u := range []string{"user-1", "Ülrich@example.com", "ユーザー", strings.Repeat("u", MaxUnitLen)} {
		checkFieldErr(t, ValidateUnit(u), "")
	}
	for _, u := range []string{"", "u\n", "u\x1b[0m", "\u202eu", "u\u0085", "u\xc3", strings.Repeat("u", MaxUnitLen+1)} {
		checkFieldErr(t, ValidateUnit(u), "unit_id")
	}
	checkFieldErr(t, Filter{Service: "checkout"}.Validate(), "")
	checkFieldErr(t, Filter{Service: "check\x00out"}.Validate(), "service")
}

// TestConfigSizeLimit checks that a configuration past MaxConfigBytes is
// refused naming ConfigField, and one just under it is not.
func TestConfigSizeLimit(t *testing.T) {
	cfg := Config{Experiments: []Experiment{testExp("a")}}
	for n, i := cfg.EncodedSize(), 0; n <= MaxConfigBytes; i++ {
		o := Override{"a", fmt.Sprintf("user-%07d", i), "control"}
		cfg.Overrides = append(cfg.Overrides, o)
		n += messageSize(stringSize(o.Experiment) + stringSize(o.Unit) + stringSize(o.Variant))
	}
	checkFieldErr(t, cfg.Validate(), ConfigField)
	cfg.Overrides = cfg.Overrides[:len(cfg.Overrides)-1]
	if n := cfg.EncodedSize(); n > MaxConfigBytes || n < MaxConfigBytes-100 {
		t.Fatalf("EncodedSize %d, want just under %d", n, MaxConfigBytes)
	}
	checkFieldErr(t, cfg.Validate(), "")
}

// TestOverlapIndex compares Config.Validate's sorted sweep for
// overlapping slices with the pairwise check on random layers.
func TestOverlapIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		var exps []*Experiment
		for i := range 1 + rng.IntN(8) {
			x := testExp(fmt.Sprintf("e%d", i))
			start := uint32(rng.IntN(100))
			x.Layer, x.Slice = "l", Slice{start, start + 1 + uint32(rng.IntN(30))}
			if rng.IntN(4) == 0 {
				x.Status, x.Phase, x.Phases = StatusDraft, 0, nil
			}
			exps = append(exps, &x)
		}
		idx := newConflictIndex(exps)
		for _, e := range exps {
			want := overlapping(e, exps)
			got := idx.overlap[e]
			if (got == nil) != (want == nil) || (got != nil && (got == e || !got.active() || !got.Slice.Overlaps(e.Slice))) {
				t.Fatalf("trial %d: %s %v: sweep gives %v, pairwise %v", trial, e.ID, e.Slice, got, want)
			}
		}
	}
}

// interference returns n distinct valid entries.
func interference(n int) []Interference {
	out := make([]Interference, n)
	for i := range out {
		out[i] = Interference{Kind: fmt.Sprintf("kind-%d", i), Scope: ScopeAll}
	}
	return out
}

// TestConfigValidate checks the cross-entity rules and the field paths.
func TestConfigValidate(t *testing.T) {
	layered := func(id string, s Slice, st Status) Experiment {
		x := testExp(id)
		x.Layer, x.Slice = "l", s
		switch st {
		case StatusDraft:
			x.Status, x.Phase, x.Phases = StatusDraft, 0, nil
		case StatusConcluded:
			x.Status, x.Winner = StatusConcluded, "control"
		default:
			x.Status = st
		}
		return x
	}
	l := []Layer{{ID: "l"}}
	tests := []struct {
		name  string
		cfg   Config
		field string
	}{
		{"empty", Config{}, ""},
		{"rich", richConfig(), ""},
		{"invalid experiment", Config{Experiments: []Experiment{testExp("a"), func() Experiment { x := testExp("b"); x.Variants[1].Weight = 0; x.Variants[0].Weight = 0; return x }()}},
			`experiments["b"].variants`},
		{"invalid experiment id", Config{Experiments: []Experiment{testExp("Bad")}}, "experiments[0].id"},
		{"duplicate experiment", Config{Experiments: []Experiment{testExp("a"), testExp("a")}}, `experiments["a"].id`},
		{"invalid layer", Config{Layers: []Layer{{ID: "L"}}}, "layers[0].id"},
		{"duplicate layer", Config{Layers: []Layer{{ID: "l"}, {ID: "l"}}}, `layers["l"].id`},
		{"unknown layer", Config{Experiments: []Experiment{layered("a", Slice{0, 10}, StatusRunning)}}, `experiments["a"].layer`},
		{"overlapping running slices", Config{Layers: l, Experiments: []Experiment{
			layered("a", Slice{0, 5000}, StatusRunning), layered("b", Slice{4999, 6000}, StatusPaused)}}, `experiments["a"].slice`},
		{"adjacent slices", Config{Layers: l, Experiments: []Experiment{
			layered("a", Slice{0, 5000}, StatusRunning), layered("b", Slice{5000, 6000}, StatusRunning)}}, ""},
		{"draft may overlap", Config{Layers: l, Experiments: []Experiment{
			layered("a", Slice{0, 5000}, StatusRunning), layered("b", Slice{0, 5000}, StatusDraft)}}, ""},
		{"concluded may overlap", Config{Layers: l, Experiments: []Experiment{
			layered("a", Slice{0, 5000}, StatusRunning), layered("b", Slice{0, 5000}, StatusConcluded)}}, ""},
		{"slice inside an earlier one", Config{Layers: l, Experiments: []Experiment{
			layered("a", Slice{0, 5000}, StatusRunning), layered("b", Slice{5000, 6000}, StatusRunning), layered("c", Slice{100, 200}, StatusRunning)}},
			`experiments["a"].slice`},
		{"shared salt", Config{Experiments: []Experiment{testExp("a"), func() Experiment { x := testExp("b"); x.Salt = "a"; return x }()}},
			`experiments["a"].salt`},
		{"salt is a layer id", Config{Layers: l, Experiments: []Experiment{func() Experiment { x := testExp("b"); x.Salt = "l"; return x }()}},
			`experiments["b"].salt`},
		{"experiment id is a layer id", Config{Layers: []Layer{{ID: "a"}}, Experiments: []Experiment{testExp("a")}}, `experiments["a"].salt`},
		{"override unknown experiment", Config{Overrides: []Override{{"a", "u", "control"}}}, "overrides[0].experiment"},
		{"override unknown variant", Config{Experiments: []Experiment{testExp("a")}, Overrides: []Override{{"a", "u", "nope"}}}, "overrides[0].variant"},
		{"override empty unit", Config{Experiments: []Experiment{testExp("a")}, Overrides: []Override{{"a", "", "control"}}}, "overrides[0].unit_id"},
		{"duplicate override", Config{Experiments: []Experiment{testExp("a")}, Overrides: []Override{{"a", "u", "control"}, {"a", "u", "treatment"}}}, "overrides[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFieldErr(t, tt.cfg.Validate(), tt.field)
			_, err := Compile(tt.cfg)
			checkFieldErr(t, err, tt.field)
		})
	}
}

func TestEnumStrings(t *testing.T) {
	for r := ReasonHash; r <= ReasonFallback; r++ {
		if got, ok := ParseReason(r.String()); !ok || got != r {
			t.Errorf("ParseReason(%q) = %v, %v", r.String(), got, ok)
		}
	}
	for s := StatusDraft; s <= StatusConcluded; s++ {
		if got, ok := ParseStatus(s.String()); !ok || got != s {
			t.Errorf("ParseStatus(%q) = %v, %v", s.String(), got, ok)
		}
	}
	for o := OpEq; o <= OpNotIn; o++ {
		if got, ok := ParseOp(o.String()); !ok || got != o {
			t.Errorf("ParseOp(%q) = %v, %v", o.String(), got, ok)
		}
	}
	for k := MetricLatencyMS; k <= MetricAttribute; k++ {
		if got, ok := ParseMetricKind(k.String()); !ok || got != k {
			t.Errorf("ParseMetricKind(%q) = %v, %v", k.String(), got, ok)
		}
	}
	if _, ok := ParseReason("nope"); ok {
		t.Error("ParseReason accepted nope")
	}
	if Reason(42).String() != "Reason(42)" || Status(-1).String() != "Status(-1)" {
		t.Error("out-of-range names")
	}
	randomized := map[Reason]bool{ReasonHash: true, ReasonSticky: true}
	for r := ReasonHash; r <= ReasonFallback; r++ {
		if r.Randomized() != randomized[r] {
			t.Errorf("%s.Randomized() = %v", r, r.Randomized())
		}
	}
}
