package flagd_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/flagd"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
)

// assigned is one test's assignment as Assign answered it.
type assigned struct {
	variant string
	reason  assign.Reason
}

// assignAll is Assign's answer for a unit: every test's assignment.
func assignAll(t *testing.T, s served, unit string, attrs map[string]string) map[string]assigned {
	t.Helper()
	resp, err := s.assign.Assign(context.Background(), &pb.AssignRequest{UnitId: unit, Attributes: attrs})
	if err != nil {
		t.Fatalf("Assign %s: %v", unit, err)
	}
	out := make(map[string]assigned, len(resp.GetAssignments()))
	for _, a := range resp.GetAssignments() {
		out[a.GetTestId()] = assigned{a.GetVariant(), protoconv.ReasonFromProto(a.GetReason())}
	}
	return out
}

// evaluation is the common part of flagd's responses.
type evaluation interface {
	GetReason() string
	GetVariant() string
	GetMetadata() *structpb.Struct
}

// checkEvaluation fails unless e is want as flagd reports it: the same
// variant, the mapped reason and metadata whose abmeshReason maps to it
// (a sticky test answers HASH first, STICKY after).
func checkEvaluation(t *testing.T, what string, e evaluation, want assigned) {
	t.Helper()
	if e.GetVariant() != want.variant || e.GetReason() != flagd.Reason(want.reason) {
		t.Fatalf("%s: variant %q reason %q, Assign gave %q %v (flagd reason %s)", what, e.GetVariant(), e.GetReason(), want.variant, want.reason, flagd.Reason(want.reason))
	}
	md := e.GetMetadata().GetFields()
	r, ok := assign.ParseReason(md["abmeshReason"].GetStringValue())
	if !ok || flagd.Reason(r) != e.GetReason() {
		t.Fatalf("%s: metadata %v: abmeshReason does not give reason %s", what, md, e.GetReason())
	}
	if _, ok := md["phase"].GetKind().(*structpb.Value_NumberValue); !ok || md["configVersion"].GetNumberValue() < 1 {
		t.Fatalf("%s: metadata %v: want numeric phase and configVersion", what, md)
	}
}

// TestEvaluationIsAssign: for 1,000 units with string, numeric and
// boolean attributes, ResolveString, ResolveBoolean and ResolveAll give
// every test exactly the variant Assign gives, with Assign's reason
// mapped to flagd's; ResolveAll has exactly Assign's tests (no draft).
func TestEvaluationIsAssign(t *testing.T) {
	s := serve(t)
	ctx := context.Background()
	countries := []string{"de", "us", "fr"}
	seen := map[string]map[string]int{} // test → variant → units
	reasons := map[string]int{}
	for i := range 1000 {
		unit, country, tier, beta := fmt.Sprintf("u-%d", i), countries[i%3], float64(i%5), i%2 == 0
		c := unitContext(t, unit, country, tier, beta)
		want := assignAll(t, s, unit, attrsOf(country, fmt.Sprint(i%5), beta))
		for _, test := range []string{checkout, banner, pricing, paused, winner} {
			r, err := s.flagd.ResolveString(ctx, &evalpb.ResolveStringRequest{FlagKey: test, Context: c})
			if err != nil {
				t.Fatalf("ResolveString %s %s: %v", test, unit, err)
			}
			checkEvaluation(t, "ResolveString "+test+" "+unit, r, want[test])
			if r.GetValue() != want[test].variant {
				t.Fatalf("ResolveString %s %s: value %q, want the variant %q", test, unit, r.GetValue(), want[test].variant)
			}
			if seen[test] == nil {
				seen[test] = map[string]int{}
			}
			seen[test][r.GetValue()]++
			reasons[r.GetReason()]++
		}
		b, err := s.flagd.ResolveBoolean(ctx, &evalpb.ResolveBooleanRequest{FlagKey: banner, Context: c})
		if err != nil {
			t.Fatalf("ResolveBoolean %s: %v", unit, err)
		}
		checkEvaluation(t, "ResolveBoolean "+unit, b, want[banner])
		if b.GetValue() != (want[banner].variant == "on") {
			t.Fatalf("ResolveBoolean %s: %v for variant %q", unit, b.GetValue(), want[banner].variant)
		}
		checkResolveAll(t, s, unit, c, want)
	}
	for test, n := range map[string]int{checkout: 3, banner: 2, pricing: 2, paused: 1, winner: 1} {
		if len(seen[test]) != n {
			t.Errorf("%s: variants served %v, want %d distinct", test, seen[test], n)
		}
	}
	for _, r := range []string{flagd.ReasonSplit, flagd.ReasonDefault, flagd.ReasonTargetingMatch, flagd.ReasonDisabled, flagd.ReasonStatic} {
		if reasons[r] == 0 {
			t.Errorf("reason %s never served (%v): the fixture misses a case", r, reasons)
		}
	}
	t.Logf("variants %v; reasons %v", seen, reasons)
}

// checkResolveAll fails unless ResolveAll answers exactly want.
func checkResolveAll(t *testing.T, s served, unit string, c *structpb.Struct, want map[string]assigned) {
	t.Helper()
	all, err := s.flagd.ResolveAll(context.Background(), &evalpb.ResolveAllRequest{Context: c})
	if err != nil {
		t.Fatalf("ResolveAll %s: %v", unit, err)
	}
	if len(all.GetFlags()) != len(want) {
		t.Fatalf("ResolveAll %s: %d flags, Assign gave %d (%v)", unit, len(all.GetFlags()), len(want), want)
	}
	for test, f := range all.GetFlags() {
		checkEvaluation(t, "ResolveAll "+test+" "+unit, f, want[test])
		switch v := f.GetValue().(type) {
		case *evalpb.AnyFlag_BoolValue:
			if test != banner || v.BoolValue != (f.GetVariant() == "on") {
				t.Fatalf("ResolveAll %s %s: bool value %v for variant %q", test, unit, v.BoolValue, f.GetVariant())
			}
		case *evalpb.AnyFlag_StringValue:
			if test == banner || v.StringValue != f.GetVariant() {
				t.Fatalf("ResolveAll %s %s: string value %q for variant %q", test, unit, v.StringValue, f.GetVariant())
			}
		default:
			t.Fatalf("ResolveAll %s %s: value %T", test, unit, v)
		}
	}
}

// TestNotFoundAndTypeMismatch: an unknown flag key is flagd's NotFound
// "Flag not found" on every resolver; tests that are not boolean flags
// are flagd's TYPE_MISMATCH (InvalidArgument "Type mismatch error…") on
// ResolveBoolean, and every test is on the numeric and object resolvers.
// A boolean draft test answers its control, DISABLED.
func TestNotFoundAndTypeMismatch(t *testing.T) {
	s := serve(t)
	ctx := context.Background()
	c := unitContext(t, "u-1", "de", 1, true)
	calls := map[string]func(key string) error{
		"ResolveString": func(k string) error {
			_, err := s.flagd.ResolveString(ctx, &evalpb.ResolveStringRequest{FlagKey: k, Context: c})
			return err
		},
		"ResolveBoolean": func(k string) error {
			_, err := s.flagd.ResolveBoolean(ctx, &evalpb.ResolveBooleanRequest{FlagKey: k, Context: c})
			return err
		},
		"ResolveInt": func(k string) error {
			_, err := s.flagd.ResolveInt(ctx, &evalpb.ResolveIntRequest{FlagKey: k, Context: c})
			return err
		},
		"ResolveFloat": func(k string) error {
			_, err := s.flagd.ResolveFloat(ctx, &evalpb.ResolveFloatRequest{FlagKey: k, Context: c})
			return err
		},
		"ResolveObject": func(k string) error {
			_, err := s.flagd.ResolveObject(ctx, &evalpb.ResolveObjectRequest{FlagKey: k, Context: c})
			return err
		},
	}
	for name, call := range calls {
		for _, key := range []string{"no-such-test", "", "Not A Valid Id"} {
			err := call(key)
			if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "Flag not found" {
				t.Errorf("%s(%q): %v, want NotFound \"Flag not found\"", name, key, err)
			}
		}
		if name == "ResolveString" {
			continue
		}
		for _, key := range []string{checkout, banner} {
			err := call(key)
			wantMismatch := name != "ResolveBoolean" || key == checkout
			st, _ := status.FromError(err)
			if wantMismatch && (st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "Type mismatch error: ")) {
				t.Errorf("%s(%s): %v, want InvalidArgument \"Type mismatch error: …\"", name, key, err)
			}
			if !wantMismatch && err != nil {
				t.Errorf("%s(%s): %v", name, key, err)
			}
		}
	}
	r, err := s.flagd.ResolveBoolean(ctx, &evalpb.ResolveBooleanRequest{FlagKey: draft, Context: c})
	if err != nil || r.GetValue() || r.GetVariant() != "false" || r.GetReason() != flagd.ReasonDisabled {
		t.Errorf("ResolveBoolean(draft) = %v, %v; want false, variant \"false\", DISABLED", r, err)
	}
}

// TestBadContext: a missing, non-string, empty, over-long or
// control-character targetingKey, and attributes over assign's limits,
// are InvalidArgument naming the field, on ResolveString and ResolveAll;
// the daemon goes on serving.
func TestBadContext(t *testing.T) {
	s := serve(t)
	ctx := context.Background()
	many := map[string]any{"targetingKey": "u-1"}
	for i := range assign.MaxAttributes + 1 {
		many[fmt.Sprintf("a%d", i)] = "x"
	}
	cases := []struct {
		name  string
		ctx   map[string]any
		field string
	}{
		{"no context", nil, "targetingKey: required"},
		{"no targetingKey", map[string]any{"country": "de"}, "targetingKey: required"},
		{"null targetingKey", map[string]any{"targetingKey": nil}, "targetingKey: required"},
		{"numeric targetingKey", map[string]any{"targetingKey": 42}, "targetingKey: must be a string"},
		{"empty targetingKey", map[string]any{"targetingKey": ""}, "targetingKey: required"},
		{"long targetingKey", map[string]any{"targetingKey": strings.Repeat("u", assign.MaxUnitLen+1)}, "targetingKey: 257 bytes, over the limit of 256"},
		{"newline", map[string]any{"targetingKey": "u\n1"}, `targetingKey: control character '\n' at byte 1`},
		{"NUL", map[string]any{"targetingKey": "u\x00"}, `targetingKey: control character '\x00' at byte 1`},
		{"C1 control", map[string]any{"targetingKey": "u\u0085"}, `targetingKey: control character '\u0085' at byte 1`},
		{"bidi override", map[string]any{"targetingKey": "u\u202e1"}, `targetingKey: formatting character '\u202e' at byte 1`},
		{"long attribute", map[string]any{"targetingKey": "u-1", "big": strings.Repeat("x", assign.MaxAttributeValueLen+1)}, `context["big"]: value is 1025 bytes`},
		{"too many attributes", many, "context: 65 attributes, over the limit of 64"},
	}
	for _, tc := range cases {
		var c *structpb.Struct
		if tc.ctx != nil {
			var err error
			if c, err = structpb.NewStruct(tc.ctx); err != nil {
				t.Fatal(err)
			}
		}
		_, err := s.flagd.ResolveString(ctx, &evalpb.ResolveStringRequest{FlagKey: checkout, Context: c})
		_, errAll := s.flagd.ResolveAll(ctx, &evalpb.ResolveAllRequest{Context: c})
		for _, e := range []error{err, errAll} {
			if st, _ := status.FromError(e); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field) {
				t.Errorf("%s: %v, want InvalidArgument %q…", tc.name, e, tc.field)
			}
		}
	}
	if _, err := s.flagd.ResolveString(ctx, &evalpb.ResolveStringRequest{FlagKey: checkout, Context: unitContext(t, "u-1", "de", 1, true)}); err != nil {
		t.Errorf("a good request after the bad ones: %v", err)
	}
}
