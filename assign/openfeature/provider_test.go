package openfeature_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
	abmeshof "github.com/abmesh/abmesh/assign/openfeature"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

// wantReason is the documented reason mapping, written out (not derived)
// so that a change of either side fails here.
var wantReason = map[assign.Reason]of.Reason{
	assign.ReasonHash:        of.SplitReason,
	assign.ReasonSticky:      of.CachedReason,
	assign.ReasonOverride:    of.TargetingMatchReason,
	assign.ReasonWinner:      of.StaticReason,
	assign.ReasonPaused:      of.DisabledReason,
	assign.ReasonNotTargeted: of.DefaultReason,
	assign.ReasonNotInSlice:  of.DefaultReason,
	assign.ReasonFallback:    of.ErrorReason,
}

func TestReasonMapping(t *testing.T) {
	for r := assign.Reason(0); r <= assign.ReasonFallback; r++ {
		if got := abmeshof.Reason(r); got != wantReason[r] {
			t.Errorf("%v → %q, want %q", r, got, wantReason[r])
		}
		// The application and the trace say the same.
		if got := abmeshof.Reason(r); strings.ToLower(string(got)) != client.FeatureFlagReason(r) {
			t.Errorf("%v: OpenFeature reason %q, span event %q", r, got, client.FeatureFlagReason(r))
		}
	}
	if got := abmeshof.Reason(-1); got != of.UnknownReason {
		t.Errorf("out of range → %q", got)
	}
}

// shopTests registers, on abmeshd's registry, one test for every reason a
// unit can get, and returns their ids.
func shopTests(t *testing.T, r *assign.Registry) {
	t.Helper()
	ctx := context.Background()
	daemontest.CreateStarted(t, r, exp("rec-model", "v1", "v2", "v3"))
	daemontest.CreateStarted(t, r, exp("dark-mode", "off", "on"))
	daemontest.CreateStarted(t, r, exp("legacy-flag", "true", "false"))
	beta := exp("beta")
	beta.Targeting = []assign.Rule{{Attribute: "grade", Op: assign.OpIn, Values: []string{"vip"}}}
	daemontest.CreateStarted(t, r, beta)
	if _, err := r.CreateLayer(ctx, &assign.Layer{ID: "checkout"}); err != nil {
		t.Fatal(err)
	}
	layered := exp("layered")
	layered.Layer, layered.Slice = "checkout", assign.Slice{Start: 0, End: 5000}
	daemontest.CreateStarted(t, r, layered)
	daemontest.CreateStarted(t, r, exp("old-hero", "control", "big"))
	if _, err := r.Conclude(ctx, "old-hero", "big"); err != nil {
		t.Fatal(err)
	}
	daemontest.CreateStarted(t, r, exp("paused-one"))
	if _, err := r.Pause(ctx, "paused-one"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetOverride(ctx, assign.Override{Experiment: "rec-model", Unit: "pinned-user", Variant: "v3"}); err != nil {
		t.Fatal(err)
	}
}

// wantEvent is the span event the SDK records for a.
func wantEvent(unit string, a assign.Assignment) map[string]string {
	m := map[string]string{
		"feature_flag.key": a.Test, "feature_flag.provider.name": "abmesh", "feature_flag.version": strconv.Itoa(a.Phase),
		"feature_flag.result.reason": client.FeatureFlagReason(a.Reason), "abmesh.reason": a.Reason.String(),
	}
	if a.Variant != "" {
		m["feature_flag.result.variant"] = a.Variant
	}
	if unit != "" {
		m["feature_flag.context.id"] = unit
	}
	return m
}

func sameEvents(got []map[string]string, want ...map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			return false
		}
		for k, v := range want[i] {
			if got[i][k] != v {
				return false
			}
		}
	}
	return true
}

// TestStringValues: through the OpenFeature client, every test gives the
// variant abmeshd's Assign gives, with the mapped reason, abmesh's reason
// and phase in the flag metadata, and the SDK's span event.
func TestStringValues(t *testing.T) {
	d := daemontest.Start(t)
	shopTests(t, d.Registry())
	p := newProvider(t, d.Addr())
	flags := install(t, p)
	eng := d.Registry().Snapshot()
	rec := newRecorder(t)
	seen := map[of.Reason]int{}
	units := []string{"pinned-user", "42"}
	for i := range 200 {
		units = append(units, "user-"+strconv.Itoa(i))
	}
	for i, unit := range units {
		attrs := map[string]any{"grade": []string{"basic", "vip"}[i%2], "ignored": map[string]int{"x": 1}, "age": 30 + i}
		for _, test := range []string{"rec-model", "dark-mode", "legacy-flag", "beta", "layered", "old-hero", "paused-one"} {
			want, err := eng.EvaluateTest(test, unit, map[string]string{"grade": attrs["grade"].(string), "age": strconv.Itoa(30 + i)})
			if err != nil {
				t.Fatal(err)
			}
			var got of.StringEvaluationDetails
			events := rec.events(func(ctx context.Context) {
				got, err = flags.StringValueDetails(ctx, test, "default", of.NewEvaluationContext(unit, attrs))
			})
			if err != nil || got.Value != want.Variant || got.Variant != want.Variant || got.Reason != wantReason[want.Reason] {
				t.Fatalf("%s for %s: %+v, %v; want %+v", test, unit, got, err, want)
			}
			if r, _ := got.FlagMetadata.GetString(abmeshof.ReasonKey); r != want.Reason.String() {
				t.Fatalf("%s for %s: metadata reason %q, want %v", test, unit, r, want.Reason)
			}
			ph, _ := got.FlagMetadata.GetInt(abmeshof.PhaseKey)
			cv, _ := got.FlagMetadata.GetInt(abmeshof.ConfigVersionKey)
			if ph != int64(want.Phase) || cv != int64(eng.Version()) {
				t.Fatalf("%s for %s: metadata %v, want phase %d, version %d", test, unit, got.FlagMetadata, want.Phase, eng.Version())
			}
			if !sameEvents(events, wantEvent(unit, want)) {
				t.Fatalf("%s for %s: span events %v, want %v", test, unit, events, wantEvent(unit, want))
			}
			seen[got.Reason]++
		}
	}
	for _, r := range []of.Reason{of.SplitReason, of.TargetingMatchReason, of.StaticReason, of.DisabledReason, of.DefaultReason} {
		if seen[r] == 0 {
			t.Errorf("no evaluation gave %s: %v", r, seen)
		}
	}

	// The SDK's own Variant records the same event for the same unit.
	sdk := rec.events(func(ctx context.Context) { p.Client().Variant(client.WithUnit(ctx, "user-7"), "rec-model") })
	of1 := rec.events(func(ctx context.Context) { flags.String(ctx, "rec-model", "", of.NewEvaluationContext("user-7", nil)) })
	if !sameEvents(of1, sdk...) || len(sdk) != 1 {
		t.Errorf("OpenFeature recorded %v, the SDK %v", of1, sdk)
	}
}

// TestBooleanAndTypes: on/off and true/false tests are booleans; other
// tests and other types answer TYPE_MISMATCH with the default value and
// record nothing.
func TestBooleanAndTypes(t *testing.T) {
	d := daemontest.Start(t)
	shopTests(t, d.Registry())
	flags := install(t, newProvider(t, d.Addr()))
	eng := d.Registry().Snapshot()
	rec := newRecorder(t)
	ctxOf := func(unit string) of.EvaluationContext { return of.NewEvaluationContext(unit, nil) }
	trues := map[string]int{}
	for i := range 100 {
		unit := "user-" + strconv.Itoa(i)
		for _, test := range []string{"dark-mode", "legacy-flag"} {
			want, _ := eng.EvaluateTest(test, unit, nil)
			got, err := flags.BooleanValueDetails(context.Background(), test, false, ctxOf(unit))
			if err != nil || got.Value != (want.Variant == "on" || want.Variant == "true") || got.Variant != want.Variant || got.Reason != of.SplitReason {
				t.Fatalf("%s for %s: %+v, %v; want %+v", test, unit, got, err, want)
			}
			if got.Value {
				trues[test]++
			}
		}
	}
	for _, test := range []string{"dark-mode", "legacy-flag"} {
		if trues[test] == 0 || trues[test] == 100 {
			t.Errorf("%s: %d of 100 true", test, trues[test])
		}
	}

	mismatch := func(what string, code of.ErrorCode, eval func(ctx context.Context) (of.ResolutionDetail, any, error), wantValue any) {
		t.Helper()
		var d of.ResolutionDetail
		var v any
		var err error
		events := rec.events(func(ctx context.Context) { d, v, err = eval(ctx) })
		if err == nil || d.ErrorCode != code || d.Reason != of.ErrorReason || v != wantValue {
			t.Errorf("%s: value %v, %+v, %v; want %s and %v", what, v, d, err, code, wantValue)
		}
		if code == of.TypeMismatchCode && len(events) != 0 {
			t.Errorf("%s: a type mismatch recorded %v", what, events)
		}
	}
	for _, flag := range []string{"rec-model", "no-such-test"} {
		code := of.TypeMismatchCode
		if flag == "no-such-test" {
			code = of.FlagNotFoundCode
		}
		mismatch("int "+flag, code, func(ctx context.Context) (of.ResolutionDetail, any, error) {
			r, err := flags.IntValueDetails(ctx, flag, 7, ctxOf("user-1"))
			return r.ResolutionDetail, r.Value, err
		}, int64(7))
		mismatch("float "+flag, code, func(ctx context.Context) (of.ResolutionDetail, any, error) {
			r, err := flags.FloatValueDetails(ctx, flag, 1.5, ctxOf("user-1"))
			return r.ResolutionDetail, r.Value, err
		}, 1.5)
		mismatch("object "+flag, code, func(ctx context.Context) (of.ResolutionDetail, any, error) {
			r, err := flags.ObjectValueDetails(ctx, flag, "obj", ctxOf("user-1"))
			return r.ResolutionDetail, r.Value, err
		}, "obj")
	}
	mismatch("bool on a three-variant test", of.TypeMismatchCode, func(ctx context.Context) (of.ResolutionDetail, any, error) {
		r, err := flags.BooleanValueDetails(ctx, "rec-model", true, ctxOf("user-1"))
		return r.ResolutionDetail, r.Value, err
	}, true)
	mismatch("bool on control/treatment", of.TypeMismatchCode, func(ctx context.Context) (of.ResolutionDetail, any, error) {
		r, err := flags.BooleanValueDetails(ctx, "beta", true, ctxOf("user-1"))
		return r.ResolutionDetail, r.Value, err
	}, true)
	mismatch("bool unknown", of.FlagNotFoundCode, func(ctx context.Context) (of.ResolutionDetail, any, error) {
		r, err := flags.BooleanValueDetails(ctx, "no-such-test", true, ctxOf("user-1"))
		return r.ResolutionDetail, r.Value, err
	}, true)
}

// TestErrors: an unknown flag, a missing, over-long or non-scalar
// targeting key and invalid attributes give OpenFeature errors with the
// default value, never a panic, and record what the SDK records.
func TestErrors(t *testing.T) {
	d := daemontest.Start(t)
	shopTests(t, d.Registry())
	flags := install(t, newProvider(t, d.Addr()))
	rec := newRecorder(t)
	long := strings.Repeat("u", assign.MaxUnitLen+1)
	many := map[string]any{}
	for i := range assign.MaxAttributes + 1 {
		many["a"+strconv.Itoa(i)] = i
	}
	control := assign.Assignment{Test: "rec-model", Variant: "v1", Reason: assign.ReasonFallback, Phase: 1}
	cases := []struct {
		name   string
		flag   string
		evalCx of.EvaluationContext
		code   of.ErrorCode
		event  map[string]string // nil: nothing recorded
	}{
		{"unknown flag", "no-such-test", of.NewEvaluationContext("user-1", nil), of.FlagNotFoundCode,
			withErr(wantEvent("user-1", assign.Assignment{Test: "no-such-test", Reason: assign.ReasonFallback}), "flag_not_found")},
		{"no targeting key", "rec-model", of.NewEvaluationContext("", map[string]any{"grade": "vip"}), of.TargetingKeyMissingCode,
			withErr(wantEvent("", control), "targeting_key_missing")},
		{"map as targeting key", "rec-model", of.NewTargetlessEvaluationContext(map[string]any{of.TargetingKey: map[string]any{}}), of.TargetingKeyMissingCode,
			withErr(wantEvent("", control), "targeting_key_missing")},
		{"targeting key over the limit", "rec-model", of.NewEvaluationContext(long, nil), of.InvalidContextCode,
			withErr(wantEvent("", control), "invalid_context")},
		{"too many attributes", "rec-model", of.NewEvaluationContext("user-1", many), of.InvalidContextCode,
			withErr(wantEvent("user-1", control), "invalid_context")},
		{"attribute value over the limit", "rec-model", of.NewEvaluationContext("user-1", map[string]any{"x": strings.Repeat("v", assign.MaxAttributeValueLen+1)}), of.InvalidContextCode,
			withErr(wantEvent("user-1", control), "invalid_context")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got of.StringEvaluationDetails
			var err error
			events := rec.events(func(ctx context.Context) { got, err = flags.StringValueDetails(ctx, tc.flag, "dflt", tc.evalCx) })
			if err == nil || got.ErrorCode != tc.code || got.Reason != of.ErrorReason || got.Value != "dflt" || got.Variant != "" || got.ErrorMessage == "" {
				t.Fatalf("%+v, %v; want %s with the default value", got, err, tc.code)
			}
			if r, _ := got.FlagMetadata.GetString(abmeshof.ReasonKey); r != "FALLBACK" {
				t.Errorf("metadata %v", got.FlagMetadata)
			}
			if !sameEvents(events, tc.event) {
				t.Errorf("span events %v, want %v", events, tc.event)
			}
		})
	}

	// Tests that need no unit answer without one, with no error.
	for _, tc := range []struct{ flag, value string }{{"old-hero", "big"}, {"paused-one", "control"}} {
		got, err := flags.StringValueDetails(context.Background(), tc.flag, "dflt", of.NewEvaluationContext("", nil))
		if err != nil || got.Value != tc.value {
			t.Errorf("%s without a unit: %+v, %v", tc.flag, got, err)
		}
	}
}

func withErr(m map[string]string, errType string) map[string]string {
	m["error.type"] = errType
	return m
}
