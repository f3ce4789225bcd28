package openfeature

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
)

// Flag metadata keys of every resolution that evaluated a test, and of
// the provider's events: the keys abmeshd's flagd API uses, so that a
// service sees the same metadata through either.
const (
	// ReasonKey is abmesh's own reason, the wire name of assign.Reason
	// ("HASH", "OVERRIDE", …), as the span event's abmesh.reason.
	ReasonKey = "abmeshReason"
	// PhaseKey is the test's phase (an int), as the span event's
	// feature_flag.version; 0 for an unknown test.
	PhaseKey = "phase"
	// ConfigVersionKey is the version of the configuration that evaluated
	// (an int64; 0 before the first), and in events the version in use.
	ConfigVersionKey = "configVersion"
)

// reasons maps assign.Reason to the OpenFeature reason: the span event's
// feature_flag.result.reason (client.FeatureFlagReason), upper-cased.
var reasons = func() (r [assign.ReasonFallback + 1]of.Reason) {
	for i := range r {
		r[i] = of.Reason(strings.ToUpper(client.FeatureFlagReason(assign.Reason(i))))
	}
	return r
}()

// Reason returns the OpenFeature reason of an abmesh reason (see the
// package documentation); of.UnknownReason for a reason out of range.
func Reason(r assign.Reason) of.Reason {
	if r >= 0 && int(r) < len(reasons) {
		return reasons[r]
	}
	return of.UnknownReason
}

// StringEvaluation implements of.FeatureProvider: the variant of test
// flag for the context's targeting key, recorded on ctx's span.
func (p *Provider) StringEvaluation(ctx context.Context, flag string, defaultValue string, flatCtx of.FlattenedContext) of.StringResolutionDetail {
	variant, d := p.resolve(ctx, p.c.Snapshot(), flag, flatCtx)
	if d.Error() != nil {
		variant = defaultValue
	}
	return of.StringResolutionDetail{Value: variant, ProviderResolutionDetail: d}
}

// BooleanEvaluation implements of.FeatureProvider for tests with two
// variants named on/off or true/false: true for "on" and "true". Other
// tests answer TYPE_MISMATCH with defaultValue and record nothing.
func (p *Provider) BooleanEvaluation(ctx context.Context, flag string, defaultValue bool, flatCtx of.FlattenedContext) of.BoolResolutionDetail {
	snap := p.c.Snapshot()
	if x, ok := snap.Engine().Experiment(flag); ok && !assign.IsBoolean(x) {
		return of.BoolResolutionDetail{Value: defaultValue, ProviderResolutionDetail: mismatch(
			fmt.Sprintf("test %q has variants %s, not on/off or true/false", flag, variantNames(x)))}
	}
	variant, d := p.resolve(ctx, snap, flag, flatCtx)
	if d.Error() != nil {
		return of.BoolResolutionDetail{Value: defaultValue, ProviderResolutionDetail: d}
	}
	return of.BoolResolutionDetail{Value: assign.BoolValue(variant), ProviderResolutionDetail: d}
}

// FloatEvaluation implements of.FeatureProvider: abmesh variants are
// names, so it answers TYPE_MISMATCH (FLAG_NOT_FOUND, PROVIDER_NOT_READY)
// with defaultValue and records nothing.
func (p *Provider) FloatEvaluation(_ context.Context, flag string, defaultValue float64, _ of.FlattenedContext) of.FloatResolutionDetail {
	return of.FloatResolutionDetail{Value: defaultValue, ProviderResolutionDetail: p.unsupported(flag, "float")}
}

// IntEvaluation implements of.FeatureProvider: TYPE_MISMATCH, as
// FloatEvaluation.
func (p *Provider) IntEvaluation(_ context.Context, flag string, defaultValue int64, _ of.FlattenedContext) of.IntResolutionDetail {
	return of.IntResolutionDetail{Value: defaultValue, ProviderResolutionDetail: p.unsupported(flag, "integer")}
}

// ObjectEvaluation implements of.FeatureProvider: TYPE_MISMATCH, as
// FloatEvaluation.
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, defaultValue any, _ of.FlattenedContext) of.InterfaceResolutionDetail {
	return of.InterfaceResolutionDetail{Value: defaultValue, ProviderResolutionDetail: p.unsupported(flag, "object")}
}

// resolve evaluates test flag in snap for the unit and attributes of
// flatCtx, records it on ctx's span (client.Snapshot.Evaluate) and returns
// the variant with the resolution detail; on a fallback the detail has
// reason ERROR and the error, and the variant is "".
func (p *Provider) resolve(ctx context.Context, snap client.Snapshot, flag string, flatCtx of.FlattenedContext) (string, of.ProviderResolutionDetail) {
	unit, attrs := fromContext(flatCtx)
	a, errType := snap.Evaluate(ctx, flag, unit, attrs)
	d := of.ProviderResolutionDetail{
		Reason:       Reason(a.Reason),
		FlagMetadata: of.FlagMetadata{ReasonKey: a.Reason.String(), PhaseKey: a.Phase, ConfigVersionKey: int64(snap.Engine().Version())},
	}
	if errType != "" {
		d.Reason = of.ErrorReason
		d.ResolutionError = resolutionError(errType, flag, unit, attrs)
		return "", d
	}
	d.Variant = a.Variant
	return a.Variant, d
}

// resolutionError is the OpenFeature error for a fallback's error.type.
func resolutionError(errType, flag, unit string, attrs map[string]string) of.ResolutionError {
	switch errType {
	case client.ErrorProviderNotReady:
		return of.NewProviderNotReadyResolutionError("no configuration from abmeshd yet")
	case client.ErrorFlagNotFound:
		return of.NewFlagNotFoundResolutionError(fmt.Sprintf("no test %.80q in the configuration", flag))
	case client.ErrorTargetingKeyMissing:
		return of.NewTargetingKeyMissingResolutionError("the evaluation context has no targeting key (the unit)")
	case client.ErrorInvalidContext:
		if err := assign.ValidateUnit(unit); err != nil {
			return of.NewInvalidContextResolutionError("targeting key: " + err.Error())
		}
		if err := assign.ValidateAttributes(attrs); err != nil {
			return of.NewInvalidContextResolutionError(err.Error())
		}
		return of.NewInvalidContextResolutionError("invalid evaluation context")
	}
	return of.NewGeneralResolutionError(errType)
}

// unsupported is the answer to a flag type abmesh does not serve.
func (p *Provider) unsupported(flag, kind string) of.ProviderResolutionDetail {
	eng := p.c.Snapshot().Engine()
	switch _, ok := eng.Experiment(flag); {
	case eng == nil:
		return of.ProviderResolutionDetail{Reason: of.ErrorReason, ResolutionError: resolutionError(client.ErrorProviderNotReady, flag, "", nil)}
	case !ok:
		return of.ProviderResolutionDetail{Reason: of.ErrorReason, ResolutionError: resolutionError(client.ErrorFlagNotFound, flag, "", nil)}
	}
	return mismatch(fmt.Sprintf("test %q has variant names; evaluate it as a string, not as %s", flag, kind))
}

func mismatch(msg string) of.ProviderResolutionDetail {
	return of.ProviderResolutionDetail{Reason: of.ErrorReason, ResolutionError: of.NewTypeMismatchResolutionError(msg)}
}

func variantNames(x *assign.Experiment) string {
	names := make([]string, len(x.Variants))
	for i, v := range x.Variants {
		names[i] = v.Name
	}
	return strings.Join(names, "/")
}

// fromContext returns the unit (the targeting key) and the targeting
// attributes (every other convertible attribute; nil when there is none)
// of a flattened evaluation context.
func fromContext(flat of.FlattenedContext) (unit string, attrs map[string]string) {
	for k, v := range flat {
		s, ok := scalar(v)
		switch {
		case k == of.TargetingKey:
			unit = s
		case ok:
			if attrs == nil {
				attrs = make(map[string]string, len(flat))
			}
			attrs[k] = s
		}
	}
	return unit, attrs
}

// scalar converts an attribute value to the string targeting rules
// compare; ok is false for kinds that have none (maps, slices, nil, …).
func scalar(v any) (string, bool) {
	if t, ok := v.(time.Time); ok {
		return t.Format(time.RFC3339Nano), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), true
	case reflect.Bool:
		return strconv.FormatBool(rv.Bool()), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), true
	case reflect.Float32:
		return strconv.FormatFloat(rv.Float(), 'f', -1, 32), true
	case reflect.Float64:
		return strconv.FormatFloat(rv.Float(), 'f', -1, 64), true
	}
	return "", false
}
