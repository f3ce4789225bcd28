package assign

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// owner returns the variant index whose range contains the unit's fraction
// point f = h32/2^32, computed as exact rational comparisons
// (f < cum/total ⇔ h32·total < cum·2^32), independently of Bucket.
func owner(h uint64, ws []uint32) int {
	h32 := h >> 32
	var total, cum uint64
	for _, w := range ws {
		total += uint64(w)
	}
	for i, w := range ws {
		cum += uint64(w)
		if h32*total < cum<<32 {
			return i
		}
	}
	panic("no owner")
}

// TestWeightChangeMovesOnlyCrossedUnits changes the weights of a running
// experiment and checks exactly which units moved: those, and only those,
// whose fraction point lies between an old and a new range boundary; and
// that their number matches the moved probability mass.
func TestWeightChangeMovesOnlyCrossedUnits(t *testing.T) {
	const n = 200_000
	tests := []struct {
		name     string
		from, to []uint32
		mass     float64 // probability mass that changes owner
	}{
		{"50/50 to 40/60", []uint32{50, 50}, []uint32{40, 60}, 0.10},
		{"1/1/1 to 1/1/2 (total changes)", []uint32{1, 1, 1}, []uint32{1, 1, 2}, (1.0/3 - 1.0/4) + (2.0/3 - 2.0/4)},
		{"ramp 99/1 to 90/10", []uint32{99, 1}, []uint32{90, 10}, 0.09},
		{"treatment to 0%", []uint32{50, 50}, []uint32{100, 0}, 0.5},
		{"same fractions, scaled weights", []uint32{1, 3}, []uint32{25, 75}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := testExp("ramp", weights(tt.from...)...)
			after := testExp("ramp", weights(tt.to...)...)
			e1 := mustCompile(t, Config{Experiments: []Experiment{before}})
			e2 := mustCompile(t, Config{Experiments: []Experiment{after}})
			names := []string{"control", "v1", "v2"}
			moved := 0
			for i := 1; i <= n; i++ {
				u := unitID(i)
				h := Hash("ramp", u)
				wantFrom, wantTo := names[owner(h, tt.from)], names[owner(h, tt.to)]
				a1, a2 := mustEval(t, e1, "ramp", u, nil), mustEval(t, e2, "ramp", u, nil)
				if a1.Variant != wantFrom || a2.Variant != wantTo {
					t.Fatalf("unit %s (h32 %#x): %s → %s, want %s → %s", u, h>>32, a1.Variant, a2.Variant, wantFrom, wantTo)
				}
				if a1.Variant != a2.Variant {
					moved++
				}
			}
			// The moved count is binomial(n, mass); allow 5 standard deviations.
			sd := math.Sqrt(n * tt.mass * (1 - tt.mass))
			if d := math.Abs(float64(moved) - n*tt.mass); d > 5*sd+0.5 {
				t.Errorf("moved %d of %d, expected %.0f ± %.0f", moved, n, n*tt.mass, 5*sd)
			}
			t.Logf("moved %d of %d (expected %.0f)", moved, n, n*tt.mass)
		})
	}
}

// TestLayerExclusivity checks that no unit is randomized into two
// experiments of one layer, that the layer's slices split units by their
// widths, and that an experiment outside the layer is unaffected.
func TestLayerExclusivity(t *testing.T) {
	const n = 100_000
	slicesOf := map[string]Slice{"banner": {0, 3000}, "hero": {3000, 7000}, "footer": {7500, 10000}}
	var cfg Config
	cfg.Layers = []Layer{{ID: "homepage"}}
	for id, s := range slicesOf {
		x := testExp(id)
		x.Layer, x.Slice = "homepage", s
		cfg.Experiments = append(cfg.Experiments, x)
	}
	cfg.Experiments = append(cfg.Experiments, testExp("checkout"))
	e := mustCompile(t, cfg)
	in := map[string]int{}
	none := 0
	var buf []Assignment
	for i := 1; i <= n; i++ {
		u := unitID(i)
		buf = e.AppendAssignments(buf[:0], u, nil, Filter{})
		if len(buf) != 4 {
			t.Fatalf("%d assignments, want 4", len(buf))
		}
		var randomized []string
		for _, a := range buf {
			switch {
			case a.Reason == ReasonHash && a.Test != "checkout":
				randomized = append(randomized, a.Test)
			case a.Reason == ReasonNotInSlice:
				if a.Variant != "control" {
					t.Fatalf("%s out of slice got %s", a.Test, a.Variant)
				}
			case a.Test == "checkout" && a.Reason != ReasonHash:
				t.Fatalf("checkout: reason %s", a.Reason)
			}
		}
		switch len(randomized) {
		case 0:
			none++
			if b := LayerBucket("homepage", u); b < 7000 || b >= 7500 {
				t.Fatalf("unit %s in bucket %d is in no experiment", u, b)
			}
		case 1:
			in[randomized[0]]++
			if !e.InSlice(randomized[0], u) {
				t.Fatalf("InSlice(%s, %s) = false for a randomized unit", randomized[0], u)
			}
		default:
			t.Fatalf("unit %s randomized in %v of one layer", u, randomized)
		}
	}
	share := func(k int) float64 { return float64(k) / n }
	for id, s := range slicesOf {
		want := float64(s.End-s.Start) / LayerBuckets
		if got := share(in[id]); math.Abs(got-want) > 0.01 {
			t.Errorf("%s: share %.4f, want %.4f", id, got, want)
		}
	}
	if got := share(none); math.Abs(got-0.05) > 0.01 {
		t.Errorf("unsliced share %.4f, want 0.05", got)
	}
}

func TestTargeting(t *testing.T) {
	many := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "vip"} // > ruleSetMin: map path
	tests := []struct {
		name  string
		rules []Rule
		attrs map[string]string
		want  bool
	}{
		{"no rules", nil, nil, true},
		{"eq match", []Rule{{"grade", OpEq, []string{"vip"}}}, map[string]string{"grade": "vip"}, true},
		{"eq other", []Rule{{"grade", OpEq, []string{"vip"}}}, map[string]string{"grade": "basic"}, false},
		{"eq absent", []Rule{{"grade", OpEq, []string{"vip"}}}, nil, false},
		{"eq empty value present", []Rule{{"grade", OpEq, []string{""}}}, map[string]string{"grade": ""}, true},
		{"eq empty value absent", []Rule{{"grade", OpEq, []string{""}}}, map[string]string{}, false},
		{"in match", []Rule{{"country", OpIn, []string{"de", "fr"}}}, map[string]string{"country": "fr"}, true},
		{"in miss", []Rule{{"country", OpIn, []string{"de", "fr"}}}, map[string]string{"country": "it"}, false},
		{"in absent", []Rule{{"country", OpIn, []string{"de", "fr"}}}, nil, false},
		{"in long list match", []Rule{{"grade", OpIn, many}}, map[string]string{"grade": "vip"}, true},
		{"in long list miss", []Rule{{"grade", OpIn, many}}, map[string]string{"grade": "z"}, false},
		{"not_in other", []Rule{{"country", OpNotIn, []string{"de"}}}, map[string]string{"country": "fr"}, true},
		{"not_in listed", []Rule{{"country", OpNotIn, []string{"de"}}}, map[string]string{"country": "de"}, false},
		{"not_in absent", []Rule{{"country", OpNotIn, []string{"de"}}}, nil, true},
		{"not_in long list listed", []Rule{{"grade", OpNotIn, many}}, map[string]string{"grade": "vip"}, false},
		{"all rules must match", []Rule{{"grade", OpEq, []string{"vip"}}, {"country", OpIn, []string{"de"}}},
			map[string]string{"grade": "vip", "country": "fr"}, false},
		{"all rules match", []Rule{{"grade", OpEq, []string{"vip"}}, {"country", OpIn, []string{"de"}}},
			map[string]string{"grade": "vip", "country": "de"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := testExp("exp", weights(0, 1)...) // targeted units all get v1
			x.Targeting = tt.rules
			e := mustCompile(t, Config{Experiments: []Experiment{x}})
			a := mustEval(t, e, "exp", "user-1", tt.attrs)
			want := Assignment{Test: "exp", Variant: "v1", Reason: ReasonHash, Phase: 1}
			if !tt.want {
				want.Variant, want.Reason = "control", ReasonNotTargeted
			}
			if a != want {
				t.Errorf("got %+v, want %+v", a, want)
			}
		})
	}
}

// TestPrecedence checks the reason of an assignment for each status and
// override, targeting and slice situation.
func TestPrecedence(t *testing.T) {
	const unit = "user-7"
	base := func(mod func(x *Experiment)) Config {
		x := testExp("exp", weights(0, 1, 0)...) // hash gives v1
		x.Layer, x.Slice = "l", Slice{0, LayerBuckets}
		mod(&x)
		return Config{Experiments: []Experiment{x}, Layers: []Layer{{ID: "l"}}}
	}
	override := func(variant string) func(*Config) {
		return func(c *Config) { c.Overrides = []Override{{"exp", unit, variant}} }
	}
	b := LayerBucket("l", unit)
	tests := []struct {
		name     string
		mod      func(x *Experiment)
		cfg      func(*Config)
		attrs    map[string]string
		want     Assignment
		inAll    bool // returned by AppendAssignments
		inSlice  bool
		hashWant string
	}{
		{"running", func(*Experiment) {}, nil, nil, Assignment{"exp", "v1", ReasonHash, 1}, true, true, "v1"},
		{"override wins over hash", func(*Experiment) {}, override("v2"), nil, Assignment{"exp", "v2", ReasonOverride, 1}, true, true, "v1"},
		{"paused", func(x *Experiment) { x.Status = StatusPaused }, nil, nil, Assignment{"exp", "control", ReasonPaused, 1}, true, true, "v1"},
		{"override wins over paused", func(x *Experiment) { x.Status = StatusPaused }, override("v2"), nil, Assignment{"exp", "v2", ReasonOverride, 1}, true, true, "v1"},
		{"draft", func(x *Experiment) { x.Status, x.Phase, x.Phases = StatusDraft, 0, nil }, nil, nil, Assignment{"exp", "control", ReasonPaused, 0}, false, true, "v1"},
		{"override in draft", func(x *Experiment) { x.Status, x.Phase, x.Phases = StatusDraft, 0, nil }, override("v2"), nil, Assignment{"exp", "v2", ReasonOverride, 0}, true, true, "v1"},
		{"concluded", func(x *Experiment) { x.Status, x.Winner = StatusConcluded, "v2" }, nil, nil, Assignment{"exp", "v2", ReasonWinner, 1}, true, true, "v1"},
		{"concluded wins over override", func(x *Experiment) { x.Status, x.Winner = StatusConcluded, "control" }, override("v2"), nil, Assignment{"exp", "control", ReasonWinner, 1}, true, true, "v1"},
		{"not targeted", func(x *Experiment) { x.Targeting = []Rule{{"grade", OpEq, []string{"vip"}}} }, nil, nil, Assignment{"exp", "control", ReasonNotTargeted, 1}, true, true, "v1"},
		{"override wins over targeting", func(x *Experiment) { x.Targeting = []Rule{{"grade", OpEq, []string{"vip"}}} }, override("v1"), nil, Assignment{"exp", "v1", ReasonOverride, 1}, true, true, "v1"},
		{"not in slice", func(x *Experiment) { x.Slice = Slice{(b + 1) % LayerBuckets, (b+1)%LayerBuckets + 1} }, nil, nil, Assignment{"exp", "control", ReasonNotInSlice, 1}, true, false, "v1"},
		{"override wins over slice", func(x *Experiment) { x.Slice = Slice{(b + 1) % LayerBuckets, (b+1)%LayerBuckets + 1} }, override("v2"), nil, Assignment{"exp", "v2", ReasonOverride, 1}, true, false, "v1"},
		{"in a one-bucket slice", func(x *Experiment) { x.Slice = Slice{b, b + 1} }, nil, nil, Assignment{"exp", "v1", ReasonHash, 1}, true, true, "v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base(tt.mod)
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			e := mustCompile(t, cfg)
			if got := mustEval(t, e, "exp", unit, tt.attrs); got != tt.want {
				t.Errorf("EvaluateTest = %+v, want %+v", got, tt.want)
			}
			all := e.AppendAssignments(nil, unit, tt.attrs, Filter{})
			if tt.inAll && (len(all) != 1 || all[0] != tt.want) {
				t.Errorf("AppendAssignments = %+v, want [%+v]", all, tt.want)
			}
			if !tt.inAll && len(all) != 0 {
				t.Errorf("AppendAssignments = %+v, want none", all)
			}
			if got := e.InSlice("exp", unit); got != tt.inSlice {
				t.Errorf("InSlice = %v, want %v", got, tt.inSlice)
			}
			if got, ok := e.HashVariant("exp", unit); !ok || got != tt.hashWant {
				t.Errorf("HashVariant = %q, %v, want %q", got, ok, tt.hashWant)
			}
		})
	}
}

func TestFilter(t *testing.T) {
	var cfg Config
	for _, x := range []struct{ id, svc string }{{"a", "cart"}, {"b", "search"}, {"c", "cart"}, {"d", "cart"}} {
		e := testExp(x.id)
		e.ChangeService = x.svc
		cfg.Experiments = append(cfg.Experiments, e)
	}
	cfg.Experiments[3].Status, cfg.Experiments[3].Phase, cfg.Experiments[3].Phases = StatusDraft, 0, nil // d is a draft
	e := mustCompile(t, cfg)
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all, drafts skipped", Filter{}, []string{"a", "b", "c"}},
		{"service", Filter{Service: "cart"}, []string{"a", "c"}},
		{"unknown service", Filter{Service: "nope"}, nil},
		{"tests in given order", Filter{Tests: []string{"c", "a", "zzz", "b"}}, []string{"c", "a", "b"}},
		{"tests and service", Filter{Service: "cart", Tests: []string{"b", "c"}}, []string{"c"}},
		{"draft by id is skipped", Filter{Tests: []string{"d"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as, err := e.Evaluate("user-1", nil, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range as {
				got = append(got, a.Test)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("tests %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	e := mustCompile(t, Config{Experiments: []Experiment{testExp("exp")}})
	long := string(make([]byte, MaxUnitLen+1))
	tooMany := map[string]string{}
	for i := range MaxAttributes + 1 {
		tooMany[unitID(i)] = "x"
	}
	tests := []struct {
		name      string
		test      string
		unit      string
		attrs     map[string]string
		wantField string
		wantIs    error
	}{
		{"empty unit", "exp", "", nil, "unit_id", ErrInvalid},
		{"long unit", "exp", long, nil, "unit_id", ErrInvalid},
		{"too many attributes", "exp", "u", tooMany, "attributes", ErrInvalid},
		{"long key", "exp", "u", map[string]string{strings.Repeat("k", 129): "x"}, `attributes["` + strings.Repeat("k", 40) + `…"]`, ErrInvalid},
		{"empty key", "exp", "u", map[string]string{"": "x"}, `attributes[""]`, ErrInvalid},
		{"long value", "exp", "u", map[string]string{"k": string(make([]byte, 1025))}, `attributes["k"]`, ErrInvalid},
		{"unknown test", "nope", "u", nil, "", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.EvaluateTest(tt.test, tt.unit, tt.attrs)
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			var fe *FieldError
			if tt.wantField != "" && (!errors.As(err, &fe) || fe.Field != tt.wantField) {
				t.Errorf("err = %v, want field %q", err, tt.wantField)
			}
			if tt.test == "exp" {
				if _, err := e.Evaluate(tt.unit, tt.attrs, Filter{}); !errors.Is(err, tt.wantIs) {
					t.Errorf("Evaluate err = %v, want %v", err, tt.wantIs)
				}
			}
		})
	}
	if _, ok := e.HashVariant("nope", "u"); ok {
		t.Error("HashVariant of an unknown test is ok")
	}
	if e.InSlice("nope", "u") {
		t.Error("InSlice of an unknown test is true")
	}
}

// TestDeterminism compiles the same configuration twice, once with its
// lists shuffled, and checks that both engines (think: two replicas) give
// identical answers.
func TestDeterminism(t *testing.T) {
	cfg := richConfig()
	shuffled := cfg.Clone()
	slices.Reverse(shuffled.Experiments)
	slices.Reverse(shuffled.Overrides)
	e1, e2 := mustCompile(t, cfg), mustCompile(t, shuffled)
	attrs := []map[string]string{nil, {"grade": "vip"}, {"grade": "basic", "country": "de"}}
	var b1, b2 []Assignment
	for i := 1; i <= 20_000; i++ {
		u := unitID(i)
		at := attrs[i%len(attrs)]
		b1 = e1.AppendAssignments(b1[:0], u, at, Filter{})
		b2 = e2.AppendAssignments(b2[:0], u, at, Filter{})
		if !slices.Equal(b1, b2) {
			t.Fatalf("unit %s: %v vs %v", u, b1, b2)
		}
	}
}

// richConfig has layered, targeted, paused, concluded and draft
// experiments and overrides.
func richConfig() Config {
	var cfg Config
	cfg.Layers = []Layer{{ID: "homepage"}, {ID: "search"}}
	add := func(x Experiment) { cfg.Experiments = append(cfg.Experiments, x) }
	add(testExp("checkout", weights(1, 1)...))
	x := testExp("banner", weights(1, 2, 1)...)
	x.Layer, x.Slice = "homepage", Slice{0, 5000}
	add(x)
	x = testExp("hero")
	x.Layer, x.Slice, x.Targeting = "homepage", Slice{5000, 9000}, []Rule{{"grade", OpIn, []string{"vip", "gold"}}}
	add(x)
	x = testExp("ranking", weights(3, 1)...)
	x.Layer, x.Slice, x.Status = "search", Slice{0, 10000}, StatusPaused
	add(x)
	x = testExp("old-test")
	x.Status, x.Winner = StatusConcluded, "treatment"
	add(x)
	x = testExp("next-test")
	x.Status, x.Phase, x.Phases = StatusDraft, 0, nil
	add(x)
	x = testExp("geo", weights(1, 1)...)
	x.Salt, x.Targeting = "geo-2024", []Rule{{"country", OpNotIn, []string{"us"}}}
	add(x)
	cfg.Overrides = []Override{{"checkout", "user-3", "v1"}, {"next-test", "user-5", "treatment"}, {"banner", "user-8", "v2"}}
	return cfg
}

func TestHeaderName(t *testing.T) {
	if got := HeaderName("checkout"); got != "x-abmesh-checkout" {
		t.Errorf("HeaderName = %q", got)
	}
}

func TestFilterValidate(t *testing.T) {
	for _, tc := range []struct {
		f         Filter
		wantField string // "" when valid
	}{
		{Filter{}, ""},
		{Filter{Service: "checkout", Tests: []string{"a", "b-2"}}, ""},
		{Filter{Service: strings.Repeat("s", maxNameLen)}, ""},
		{Filter{Service: strings.Repeat("s", maxNameLen+1)}, "service"},
		{Filter{Tests: []string{"ok", "Not_OK"}}, "test_ids[1]"},
		{Filter{Tests: []string{""}}, "test_ids[0]"},
	} {
		err := tc.f.Validate()
		if tc.wantField == "" {
			if err != nil {
				t.Errorf("%+v: %v, want valid", tc.f, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.wantField || !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: error %v, want a FieldError for %q", tc.f, err, tc.wantField)
		}
	}
}

func TestNilEngine(t *testing.T) {
	var e *Engine
	if got := e.AppendAssignments(nil, "u", nil, Filter{}); len(got) != 0 {
		t.Errorf("nil engine assigns %v", got)
	}
	if _, err := e.EvaluateTest("x", "u", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("nil engine EvaluateTest err = %v", err)
	}
	if e.Version() != 0 || len(e.Config().Experiments) != 0 {
		t.Error("nil engine has a config")
	}
}

func TestCompileDoesNotRetainInput(t *testing.T) {
	cfg := Config{Experiments: []Experiment{testExp("exp", weights(0, 1)...)}}
	e := mustCompile(t, cfg)
	cfg.Experiments[0].Variants[1].Weight = 0
	cfg.Experiments[0].Variants[0].Weight = 1
	if a := mustEval(t, e, "exp", "u", nil); a.Variant != "v1" {
		t.Errorf("engine changed with its input: %+v", a)
	}
}

func TestAppendAssignmentsDoesNotAllocate(t *testing.T) {
	e := mustCompile(t, richConfig())
	buf := make([]Assignment, 0, 16)
	attrs := map[string]string{"grade": "vip", "country": "de"}
	n := testing.AllocsPerRun(1000, func() {
		buf = e.AppendAssignments(buf[:0], "user-123456", attrs, Filter{})
	})
	if n != 0 {
		t.Errorf("AppendAssignments allocates %v times per call", n)
	}
	if len(buf) != 6 {
		t.Errorf("%d assignments, want 6", len(buf))
	}
}

// The helpers below are shared by this package's tests.

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
