package manifest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/abmesh/abmesh/assign"
)

const shopDir = "../../tool/shop"

func planOf(mde, sd float64) assign.Plan {
	return assign.Plan{Alpha: 0.05, Power: 0.8, MDE: mde, SD: sd}
}

func fiftyFifty(variant string) []assign.Variant {
	return []assign.Variant{{Name: "control", Weight: 50}, {Name: variant, Weight: 50}}
}

var orderValue = assign.Metric{Kind: assign.MetricAttribute, Attribute: "shop.order.value", HigherIsBetter: true}

// shopExperiments is internal/tool/shop/experiments.yaml as the domain sees it.
var shopExperiments = []assign.Experiment{
	{
		ID: "rec-model", Owner: "team-reco", Description: "New recommendation model on the product page",
		ChangeService: "recommendation", MeasureService: "frontend", Metric: orderValue,
		Variants:    fiftyFifty("ml-v2"),
		Emits:       []assign.Interference{{Kind: "user_experience", Scope: "measure"}},
		Susceptible: []assign.Interference{{Kind: "user_experience", Scope: "measure"}, {Kind: "latency", Scope: "change"}},
		Plan:        planOf(6, 20),
	},
	{
		ID: "ui-layout", Owner: "team-web", Description: "Two-column product page",
		ChangeService: "frontend", MeasureService: "frontend", Metric: orderValue,
		Variants:    fiftyFifty("two-column"),
		Emits:       []assign.Interference{{Kind: "user_experience", Scope: "change"}},
		Susceptible: []assign.Interference{{Kind: "user_experience", Scope: "measure"}},
		Plan:        planOf(6, 20),
	},
	{
		ID: "catalog-cache", Owner: "team-catalog", Description: "Read-through cache in front of the catalog database",
		ChangeService: "productcatalog", MeasureService: "productcatalog",
		Metric:      assign.Metric{Kind: assign.MetricLatencyMS, HigherIsBetter: false},
		Variants:    fiftyFifty("cached"),
		Emits:       []assign.Interference{{Kind: "latency", Scope: "change_upstream"}},
		Susceptible: []assign.Interference{{Kind: "resource", Scope: "change"}},
		Plan:        planOf(1, 3),
	},
	{
		ID: "ad-ranker", Owner: "team-ads", Description: "Contextual ad ranking",
		ChangeService: "ad", MeasureService: "ad",
		Metric:   assign.Metric{Kind: assign.MetricAttribute, Attribute: "ad.clicked", HigherIsBetter: true},
		Variants: fiftyFifty("contextual"),
		Plan:     planOf(0.1, 0.45),
	},
	{
		ID: "pay-button", Owner: "team-payments", Description: "One-click pay button (checkout layer, first half)",
		ChangeService: "payment", MeasureService: "checkout", Metric: orderValue,
		Variants:    fiftyFifty("one-click"),
		Layer:       "checkout-flow",
		Slice:       assign.Slice{Start: 0, End: 5000},
		Emits:       []assign.Interference{{Kind: "error_rate", Scope: "change"}},
		Susceptible: []assign.Interference{{Kind: "error_rate", Scope: "change"}},
		Plan:        planOf(6, 20),
	},
	{
		ID: "ship-promo", Owner: "team-shipping", Description: "Free-shipping banner (checkout layer, second half)",
		ChangeService: "shipping", MeasureService: "checkout", Metric: orderValue,
		Variants: fiftyFifty("free-shipping"),
		Layer:    "checkout-flow",
		Slice:    assign.Slice{Start: 5000, End: 10000},
		Plan:     planOf(6, 20),
	},
	{
		ID: "currency-rounding", Owner: "team-fx", Description: "Psychological price rounding for VIP users",
		ChangeService: "currency", MeasureService: "checkout", Metric: orderValue,
		Variants:    fiftyFifty("rounded"),
		Targeting:   []assign.Rule{{Attribute: "grade", Op: assign.OpIn, Values: []string{"vip", "gold"}}},
		Sticky:      true,
		Susceptible: []assign.Interference{{Kind: "user_experience", Scope: "measure"}},
		Plan:        planOf(6, 20),
	},
}

func TestReadFileShop(t *testing.T) {
	tests := []struct {
		file        string
		layers      []assign.Layer
		experiments []assign.Experiment
	}{
		{
			file:   "layers.yaml",
			layers: []assign.Layer{{ID: "checkout-flow", Description: "Tests of the checkout page that must not overlap"}},
		},
		{file: "experiments.yaml", experiments: shopExperiments},
	}
	all := &Set{}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			s, err := ReadFile(filepath.Join(shopDir, tt.file))
			if err != nil {
				t.Fatalf("ReadFile: %v", err)
			}
			if !reflect.DeepEqual(s.Layers, tt.layers) {
				t.Errorf("layers:\n got %+v\nwant %+v", s.Layers, tt.layers)
			}
			if len(s.Experiments) != len(tt.experiments) {
				t.Fatalf("got %d experiments, want %d", len(s.Experiments), len(tt.experiments))
			}
			for i, want := range tt.experiments {
				if got := s.Experiments[i]; !reflect.DeepEqual(got, want) {
					t.Errorf("experiment %d:\n got %+v\nwant %+v", i, got, want)
				}
				// Each parsed experiment is valid as the registry will see it.
				if err := s.Experiments[i].Validate(); err != nil {
					t.Errorf("experiment %s: Validate: %v", want.ID, err)
				}
			}
			all.Merge(s)
		})
	}
	if len(all.Layers) != 1 || len(all.Experiments) != len(shopExperiments) {
		t.Errorf("Merge: %d layers, %d experiments; want 1, %d", len(all.Layers), len(all.Experiments), len(shopExperiments))
	}
}

func TestReadFileMissing(t *testing.T) {
	s, err := ReadFile(filepath.Join(t.TempDir(), "nope.yaml"))
	if s != nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile(missing) = %v, %v; want nil, an error wrapping fs.ErrNotExist", s, err)
	}
}

// layerDoc is a valid document placed before the document under test, so
// that every bad case also checks that one invalid document voids the file.
const layerDoc = `apiVersion: abmesh.io/v1
kind: Layer
metadata:
  name: lay
spec:
  description: a layer
`

// baseExp is a valid experiment; the cases below break it one edit at a
// time.
const baseExp = `apiVersion: abmesh.io/v1
kind: Experiment
metadata:
  name: exp-a
spec:
  owner: team-a
  changeService: svc-a
  measureService: svc-b
  metric: {name: latency_ms, direction: lower}
  variants:
    - {name: control, weight: 50}
    - {name: treat, weight: 50}
  layer: lay
  slice: {start: 0, end: 5000}
  targeting:
    - {attribute: grade, op: in, values: [vip]}
  interference:
    emits: [{kind: latency, scope: change}]
    susceptible: [{kind: latency, scope: measure}]
  plan: {alpha: 0.05, power: 0.8, mde: 1, sd: 2}
`

func TestParseBaseIsValid(t *testing.T) {
	s, err := Parse("base.yaml", []byte(layerDoc+"---\n"+baseExp))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(s.Layers) != 1 || len(s.Experiments) != 1 {
		t.Fatalf("got %d layers, %d experiments; want 1, 1", len(s.Layers), len(s.Experiments))
	}
	e := s.Experiments[0]
	want := assign.Experiment{
		ID: "exp-a", Owner: "team-a", ChangeService: "svc-a", MeasureService: "svc-b",
		Metric:      assign.Metric{Kind: assign.MetricLatencyMS},
		Variants:    fiftyFifty("treat"),
		Layer:       "lay",
		Slice:       assign.Slice{Start: 0, End: 5000},
		Targeting:   []assign.Rule{{Attribute: "grade", Op: assign.OpIn, Values: []string{"vip"}}},
		Emits:       []assign.Interference{{Kind: "latency", Scope: "change"}},
		Susceptible: []assign.Interference{{Kind: "latency", Scope: "measure"}},
		Plan:        planOf(1, 2),
	}
	if !reflect.DeepEqual(e, want) {
		t.Errorf("got  %+v\nwant %+v", e, want)
	}
}

func TestParseDefaultsAndSpellings(t *testing.T) {
	tests := []struct {
		name, old, new string
		check          func(assign.Experiment) bool
	}{
		{"plan defaults", "plan: {alpha: 0.05, power: 0.8, mde: 1, sd: 2}", "plan: {mde: 1}",
			func(e assign.Experiment) bool {
				return reflect.DeepEqual(e.Plan, assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 1})
			}},
		{"plan interactions", "plan: {alpha: 0.05, power: 0.8, mde: 1, sd: 2}", "plan: {mde: 1, interactions: [{with: other, mde: 3}]}",
			func(e assign.Experiment) bool {
				return reflect.DeepEqual(e.Plan.Interactions, []assign.PlannedInteraction{{With: "other", MDE: 3}})
			}},
		{"direction higher_is_better", "direction: lower", "direction: higher_is_better",
			func(e assign.Experiment) bool { return e.Metric.HigherIsBetter }},
		{"direction up", "direction: lower", "direction: UP",
			func(e assign.Experiment) bool { return e.Metric.HigherIsBetter }},
		{"no direction is lower", "metric: {name: latency_ms, direction: lower}", "metric: {name: error}",
			func(e assign.Experiment) bool { return e.Metric == assign.Metric{Kind: assign.MetricError} }},
		{"no metric is latency", "  metric: {name: latency_ms, direction: lower}\n", "",
			func(e assign.Experiment) bool { return e.Metric == assign.Metric{Kind: assign.MetricLatencyMS} }},
		{"no metric name is latency", "metric: {name: latency_ms, direction: lower}", "metric: {direction: higher}",
			func(e assign.Experiment) bool {
				return e.Metric == assign.Metric{Kind: assign.MetricLatencyMS, HigherIsBetter: true}
			}},
		{"no aggregate is mean", "direction: lower", "direction: lower",
			func(e assign.Experiment) bool { return e.Metric.Aggregate == assign.AggregateMean }},
		{"aggregate mean", "direction: lower", "direction: lower, aggregate: mean",
			func(e assign.Experiment) bool { return e.Metric.Aggregate == assign.AggregateMean }},
		{"aggregate sum", "direction: lower", "direction: lower, aggregate: sum",
			func(e assign.Experiment) bool { return e.Metric.Aggregate == assign.AggregateSum }},
		{"aggregate any", "direction: lower", "direction: lower, aggregate: any",
			func(e assign.Experiment) bool { return e.Metric.Aggregate == assign.AggregateAny }},
		{"aggregate count", "direction: lower", "direction: lower, aggregate: count",
			func(e assign.Experiment) bool { return e.Metric.Aggregate == assign.AggregateCount }},
		{"aggregate RATIO", "direction: lower", "direction: lower, aggregate: RATIO",
			func(e assign.Experiment) bool { return e.Metric.Aggregate == assign.AggregateRatio }},
		{"op eq", "op: in, values: [vip]", "op: eq, values: [vip]",
			func(e assign.Experiment) bool { return e.Targeting[0].Op == assign.OpEq }},
		{"op ==", "op: in, values: [vip]", `op: "==", values: [vip]`,
			func(e assign.Experiment) bool { return e.Targeting[0].Op == assign.OpEq }},
		{"op notin", "op: in", "op: NotIn",
			func(e assign.Experiment) bool { return e.Targeting[0].Op == assign.OpNotIn }},
		{"numeric target values are strings", "values: [vip]", "values: [1, 2.5]",
			func(e assign.Experiment) bool { return reflect.DeepEqual(e.Targeting[0].Values, []string{"1", "2.5"}) }},
		{"weight zero", "{name: treat, weight: 50}", "{name: treat, weight: 0}",
			func(e assign.Experiment) bool { return e.Variants[1].Weight == 0 }},
		{"weight max uint32", "{name: control, weight: 50}\n    - {name: treat, weight: 50}",
			"{name: control, weight: 0}\n    - {name: treat, weight: 4294967295}",
			func(e assign.Experiment) bool { return e.Variants[1].Weight == 1<<32-1 }},
		{"three variants", "    - {name: treat, weight: 50}\n", "    - {name: treat, weight: 25}\n    - {name: treat-b, weight: 25}\n",
			func(e assign.Experiment) bool {
				return len(e.Variants) == 3 && e.Variants[2] == assign.Variant{Name: "treat-b", Weight: 25}
			}},
		{"labels and annotations", "  name: exp-a\n", "  name: exp-a\n  labels: {team: a}\n  annotations: {note: x}\n",
			func(e assign.Experiment) bool { return e.ID == "exp-a" }},
		{"salt and sticky", "  owner: team-a\n", "  owner: team-a\n  salt: s1\n  sticky: true\n",
			func(e assign.Experiment) bool { return e.Salt == "s1" && e.Sticky }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(baseExp, tt.old) {
				t.Fatalf("bad case: %q is not in the base document", tt.old)
			}
			s, err := Parse("ok.yaml", []byte(layerDoc+"---\n"+strings.Replace(baseExp, tt.old, tt.new, 1)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if e := s.Experiments[0]; !tt.check(e) {
				t.Errorf("unexpected experiment %+v", e)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	// Each case edits baseExp (document 2, after layerDoc) and expects one
	// error naming the document and the field.
	tests := []struct {
		name     string
		old, new string // edit of baseExp; new "" with old "" replaces the whole document by doc
		doc      string
		field    string
		msg      string // substring of the message
	}{
		{name: "unknown spec field", old: "  owner: team-a\n", new: "  owner: team-a\n  colour: red\n",
			field: "spec.colour", msg: "unknown field"},
		{name: "unknown top-level field", old: "kind: Experiment\n", new: "kind: Experiment\nstatus: {}\n",
			field: "status", msg: "unknown field"},
		{name: "unknown metadata field", old: "  name: exp-a\n", new: "  name: exp-a\n  namespace: x\n",
			field: "metadata.namespace", msg: "unknown field"},
		{name: "unknown field in a list entry", old: "{name: treat, weight: 50}", new: "{name: treat, weight: 50, share: 2}",
			field: "spec.variants[1].share", msg: "unknown field"},
		{name: "unknown field in a nested mapping", old: "mde: 1, sd: 2}", new: "mde: 1, sd: 2, beta: 0.2}",
			field: "spec.plan.beta", msg: "unknown field"},
		{name: "key in the wrong case", old: "kind: Experiment", new: "Kind: Experiment",
			field: "Kind", msg: "unknown field"},
		{name: "wrong apiVersion", old: "abmesh.io/v1", new: "abmesh.io/v2",
			field: "apiVersion", msg: `"abmesh.io/v2"`},
		{name: "missing apiVersion", old: "apiVersion: abmesh.io/v1\n", new: "",
			field: "apiVersion", msg: `got ""`},
		{name: "unknown kind", old: "kind: Experiment", new: "kind: Experimnt",
			field: "kind", msg: `"Experimnt"`},
		{name: "missing kind", old: "kind: Experiment\n", new: "",
			field: "kind", msg: `got ""`},
		{name: "missing variant weight", old: "{name: treat, weight: 50}", new: "{name: treat}",
			field: "spec.variants[1].weight", msg: "required"},
		{name: "negative weight", old: "{name: treat, weight: 50}", new: "{name: treat, weight: -1}",
			field: "spec.variants[1].weight", msg: "negative"},
		{name: "weight over uint32", old: "{name: control, weight: 50}", new: "{name: control, weight: 4294967296}",
			field: "spec.variants[0].weight", msg: "32 bits"},
		{name: "weights sum over uint32", old: "{name: control, weight: 50}", new: "{name: control, weight: 4294967295}",
			field: "spec.variants[1].weight", msg: "sum"},
		{name: "weight not a number", old: "{name: treat, weight: 50}", new: "{name: treat, weight: half}",
			field: "spec.variants.weight", msg: "string"},
		{name: "weight not an integer", old: "{name: treat, weight: 50}", new: "{name: treat, weight: 2.5}",
			field: "spec.variants.weight", msg: "2.5"},
		{name: "all weights zero", old: "weight: 50}\n    - {name: treat, weight: 50}", new: "weight: 0}\n    - {name: treat, weight: 0}",
			field: "spec.variants", msg: "zero"},
		{name: "one variant", old: "    - {name: treat, weight: 50}\n", new: "",
			field: "spec.variants", msg: "at least 2"},
		{name: "duplicate variant", old: "{name: treat,", new: "{name: control,",
			field: "spec.variants[1].name", msg: "duplicate"},
		{name: "bad variant name", old: "{name: treat,", new: "{name: Treat,",
			field: "spec.variants[1].name", msg: "DNS label"},
		{name: "bad metric name", old: "name: latency_ms", new: "name: latency",
			field: "spec.metric.name", msg: `"latency"`},
		{name: "empty attribute metric", old: "name: latency_ms", new: `name: "attribute:"`,
			field: "spec.metric.name", msg: "attribute:<key>"},
		{name: "bad direction", old: "direction: lower", new: "direction: sideways",
			field: "spec.metric.direction", msg: `"sideways"`},
		{name: "bad aggregate", old: "direction: lower", new: "direction: lower, aggregate: median",
			field: "spec.metric.aggregate", msg: `"median"`},
		{name: "aggregate not a string", old: "direction: lower", new: "direction: lower, aggregate: [sum]",
			field: "spec.metric.aggregate", msg: "string"},
		{name: "bad targeting op", old: "op: in", new: "op: like",
			field: "spec.targeting[0].op", msg: `"like"`},
		{name: "eq with two values", old: "op: in, values: [vip]", new: "op: eq, values: [vip, gold]",
			field: "spec.targeting[0].values", msg: "exactly one"},
		{name: "in without values", old: "values: [vip]", new: "values: []",
			field: "spec.targeting[0].values", msg: "at least one"},
		{name: "targeting without attribute", old: "attribute: grade, ", new: "",
			field: "spec.targeting[0].attribute", msg: "required"},
		{name: "slice past the layer", old: "end: 5000", new: "end: 10001",
			field: "spec.slice", msg: "10001"},
		{name: "negative slice start", old: "start: 0", new: "start: -1",
			field: "spec.slice", msg: "-1"},
		{name: "empty slice", old: "start: 0, end: 5000", new: "start: 5000, end: 5000",
			field: "spec.slice", msg: "not a range"},
		{name: "slice without layer", old: "  layer: lay\n", new: "",
			field: "spec.slice", msg: "layer is empty"},
		{name: "bad layer id", old: "layer: lay", new: "layer: Lay",
			field: "spec.layer", msg: "DNS label"},
		{name: "invalid id syntax", old: "name: exp-a", new: "name: Exp_A",
			field: "metadata.name", msg: "DNS label"},
		{name: "id ends with a dash", old: "name: exp-a", new: "name: exp-",
			field: "metadata.name", msg: "DNS label"},
		{name: "id too long", old: "name: exp-a", new: "name: " + strings.Repeat("a", 64),
			field: "metadata.name", msg: "DNS label"},
		{name: "missing name", old: "  name: exp-a\n", new: "",
			field: "metadata.name", msg: "required"},
		{name: "missing change service", old: "  changeService: svc-a\n", new: "",
			field: "spec.changeService", msg: "required"},
		{name: "missing measure service", old: "  measureService: svc-b\n", new: "",
			field: "spec.measureService", msg: "required"},
		{name: "bad emits scope", old: "scope: change}", new: "scope: everywhere}",
			field: "spec.interference.emits[0].scope", msg: `"everywhere"`},
		{name: "bad susceptible scope", old: "scope: measure}", new: "scope: downstream}",
			field: "spec.interference.susceptible[0].scope", msg: `"downstream"`},
		{name: "missing interference kind", old: "{kind: latency, scope: measure}", new: "{scope: measure}",
			field: "spec.interference.susceptible[0].kind", msg: "required"},
		{name: "alpha out of range", old: "alpha: 0.05", new: "alpha: 1.5",
			field: "spec.plan.alpha", msg: "1.5"},
		{name: "power out of range", old: "power: 0.8", new: "power: 1",
			field: "spec.plan.power", msg: "(0, 1)"},
		{name: "missing mde", old: "mde: 1, ", new: "",
			field: "spec.plan.mde", msg: "positive"},
		{name: "negative sd", old: "sd: 2", new: "sd: -2",
			field: "spec.plan.sd", msg: "non-negative"},
		{name: "interaction without mde", old: "sd: 2", new: "sd: 2, interactions: [{with: other}]",
			field: "spec.plan.interactions[0].mde", msg: "positive"},
		{name: "interaction with a bad id", old: "sd: 2", new: "sd: 2, interactions: [{with: Other, mde: 1}]",
			field: "spec.plan.interactions[0].with", msg: "Other"},
		{name: "plan not a mapping", old: "plan: {alpha: 0.05, power: 0.8, mde: 1, sd: 2}", new: "plan: fast",
			field: "spec.plan", msg: "string"},
		{name: "sticky not a bool", old: "  owner: team-a\n", new: "  owner: team-a\n  sticky: [true]\n",
			field: "spec.sticky", msg: "array"},
		{name: "duplicate key", old: "  owner: team-a\n", new: "  owner: team-a\n  owner: team-b\n",
			msg: `line 14: key "owner" already set`}, // line 14 of the file: layerDoc is 6 lines, then "---"
		{name: "YAML syntax error", old: "  metric: {name: latency_ms, direction: lower}\n", new: "  metric: {name: latency_ms, direction: lower\n",
			msg: "line 16"}, // the line after the unclosed mapping
		{name: "tab indentation", old: "  owner: team-a\n", new: "\towner: team-a\n",
			msg: "line 13"},
		{name: "document is a list", doc: "- a\n- b\n", msg: "want a mapping"},
		{name: "document is a scalar", doc: "just text\n", msg: "want a mapping"},
		{name: "layer with an experiment field", doc: strings.Replace(layerDoc, "lay", "lay-b", 1) + "  variants: []\n",
			field: "spec.variants", msg: "unknown field"},
		{name: "layer with an invalid id", doc: strings.Replace(layerDoc, "name: lay", "name: LAY", 1),
			field: "metadata.name", msg: "DNS label"},
		{name: "layer with an unknown metadata field", doc: strings.Replace(layerDoc, "  name: lay\n", "  name: lay-b\n  uid: 1\n", 1),
			field: "metadata.uid", msg: "unknown field"},
		{name: "duplicate name in one file", doc: strings.Replace(layerDoc, "a layer", "the same layer again", 1),
			field: "metadata.name", msg: "also defined in document 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc
			if doc == "" {
				if !strings.Contains(baseExp, tt.old) {
					t.Fatalf("bad case: %q is not in the base document", tt.old)
				}
				doc = strings.Replace(baseExp, tt.old, tt.new, 1)
			}
			const file = "shop/bad.yaml"
			s, err := Parse(file, []byte(layerDoc+"---\n"+doc))
			if s != nil {
				t.Errorf("Set = %+v, want nil: a file with an invalid document yields nothing", s)
			}
			if err == nil {
				t.Fatal("no error")
			}
			errs := manifestErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1: %v", len(errs), err)
			}
			e := errs[0]
			if e.File != file || e.Document != 2 || e.Field != tt.field || !strings.Contains(e.Msg, tt.msg) {
				t.Errorf("got %#v\nwant File %q, Document 2, Field %q, Msg containing %q", e, file, tt.field, tt.msg)
			}
			// The message a user reads names all three.
			for _, part := range []string{file, "document 2", tt.field} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not name %q", err, part)
				}
			}
		})
	}
}

// manifestErrors unwraps Parse's joined error into its *Error parts,
// failing the test on anything else.
func manifestErrors(t *testing.T, err error) []*Error {
	t.Helper()
	parts := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts = j.Unwrap()
	}
	var out []*Error
	for _, p := range parts {
		var e *Error
		if !errors.As(p, &e) {
			t.Fatalf("error %v (%T) is not a *manifest.Error", p, p)
		}
		out = append(out, e)
	}
	return out
}

func TestParseReportsEveryError(t *testing.T) {
	bad := func(old, new string) string { return strings.Replace(baseExp, old, new, 1) }
	docs := []string{
		bad("abmesh.io/v1", "abmesh.io/v0"), // 1
		layerDoc,                            // 2: valid
		bad("  name: exp-a\n", "  name: exp-b\n  extra: 1\n"), // 3
		"# only a comment\n", // 4: skipped
		strings.Replace(bad("name: exp-a", "name: exp-c"), "op: in", "op: like", 1), // 5
		bad("name: exp-a", "name: exp-d"),                                           // 6: valid
		bad("name: exp-a", "name: exp-d"),                                           // 7: duplicate of 6
	}
	s, err := Parse("many.yaml", []byte(strings.Join(docs, "---\n")))
	if s != nil {
		t.Errorf("Set = %+v, want nil", s)
	}
	errs := manifestErrors(t, err)
	want := []struct {
		doc   int
		field string
	}{{1, "apiVersion"}, {3, "metadata.extra"}, {5, "spec.targeting[0].op"}, {7, "metadata.name"}}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d: %v", len(errs), len(want), err)
	}
	for i, w := range want {
		if errs[i].File != "many.yaml" || errs[i].Document != w.doc || errs[i].Field != w.field {
			t.Errorf("error %d = %#v, want document %d field %q", i, errs[i], w.doc, w.field)
		}
		if !strings.Contains(err.Error(), "document "+strconv.Itoa(w.doc)+": "+w.field) {
			t.Errorf("joined error does not name document %d field %s:\n%v", w.doc, w.field, err)
		}
	}
}

func TestParseSkipsEmptyDocuments(t *testing.T) {
	tests := []struct {
		name, content string
		layers        int
		experiments   int
	}{
		{"empty file", "", 0, 0},
		{"only separators", "---\n---\n---\n", 0, 0},
		{"only comments", "# a\n# b\n---\n   # c\n", 0, 0},
		{"blank and comment documents around real ones",
			"# header\n---\n\n---\n" + layerDoc + "---\n# nothing here\n   \n---\n" + baseExp + "---\n", 1, 1},
		{"leading separator", "---\n" + layerDoc, 1, 0},
		{"separator with trailing blanks", layerDoc + "---   \n" + baseExp, 1, 1},
		{"CRLF line ends", strings.ReplaceAll(layerDoc+"---\n"+baseExp, "\n", "\r\n"), 1, 1},
		{"no final newline", layerDoc + "---\n" + strings.TrimSuffix(baseExp, "\n"), 1, 1},
		{"document start marker inside a value is not a separator", layerDoc + "---\n" +
			strings.Replace(baseExp, "  owner: team-a\n", "  owner: team-a\n  description: |\n    a --- b\n", 1), 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse("f.yaml", []byte(tt.content))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if s == nil || len(s.Layers) != tt.layers || len(s.Experiments) != tt.experiments {
				t.Fatalf("got %+v, want %d layers and %d experiments", s, tt.layers, tt.experiments)
			}
		})
	}
}

// TestParseDocumentNumbers pins how documents are counted: every chunk
// between separators, skipped ones included, so "document 4" is the fourth
// chunk of the file.
func TestParseDocumentNumbers(t *testing.T) {
	content := "# header\n---\n\n---\n" + layerDoc + "---\n" + strings.Replace(baseExp, "svc-a", "", 1)
	_, err := Parse("f.yaml", []byte(content))
	errs := manifestErrors(t, err)
	if len(errs) != 1 || errs[0].Document != 4 || errs[0].Field != "spec.changeService" {
		t.Fatalf("got %v, want one error in document 4 on spec.changeService", err)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Document: 3, Field: "spec.slice", Msg: "bad"}, "a.yaml: document 3: spec.slice: bad"},
		{Error{File: "a.yaml", Document: 1, Msg: "yaml: line 2: oops"}, "a.yaml: document 1: yaml: line 2: oops"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestReadFileInvalid(t *testing.T) {
	name := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(name, []byte(layerDoc+"---\n"+strings.Replace(baseExp, "op: in", "op: like", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := ReadFile(name)
	var e *Error
	if s != nil || !errors.As(err, &e) || e.File != name || e.Document != 2 {
		t.Fatalf("ReadFile = %v, %v; want nil and an error in %s document 2", s, err, name)
	}
}

// FuzzParse checks that Parse never panics, returns a Set exactly when it
// returns no error, and that every error is a *Error naming the file and a
// document of it.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"experiments.yaml", "layers.yaml"} {
		b, err := os.ReadFile(filepath.Join(shopDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(layerDoc + "---\n" + baseExp))
	f.Add([]byte("---\n- a\n---\nkind: Layer\n"))
	f.Add([]byte("apiVersion: abmesh.io/v1\nkind: Experiment\nmetadata: {name: x}\nspec: {variants: [{weight: -1}]}\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		s, err := Parse("fuzz.yaml", content)
		if (s == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one of a Set and an error", s, err)
		}
		if err == nil {
			for _, e := range s.Experiments {
				if verr := e.Validate(); verr != nil {
					t.Fatalf("accepted an invalid experiment %+v: %v", e, verr)
				}
			}
			return
		}
		docs := strings.Count("\n"+string(content), "\n---") + 1
		for _, e := range manifestErrors(t, err) {
			if e.File != "fuzz.yaml" || e.Document < 1 || e.Document > docs {
				t.Fatalf("error %#v: want File fuzz.yaml and a document in [1, %d]", e, docs)
			}
		}
	})
}
