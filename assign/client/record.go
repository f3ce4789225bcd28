package client

import (
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/abmesh/abmesh/assign"
)

// Span and event vocabulary. The event and its feature_flag.* attributes
// follow the OpenTelemetry semantic conventions for feature flags
// (semconv v1.43.0); the abmesh.* names are abmesh's own.
const (
	// EventName is the name of the span event that records one
	// evaluation.
	EventName = "feature_flag.evaluation"
	// ProviderName is the value of feature_flag.provider.name.
	ProviderName = "abmesh"
	// UnitKey is the span attribute set once per request on the span that
	// served it (the server span): the unit id.
	UnitKey = attribute.Key("abmesh.unit")
	// ReasonKey is the event attribute with abmesh's own reason, the wire
	// name of assign.Reason (assign.Reason.String: "HASH", "STICKY", …),
	// because feature_flag.result.reason maps several abmesh reasons to
	// one semconv value. assign.ParseReason reads it back.
	ReasonKey = attribute.Key("abmesh.reason")
)

// Values of error.type on an event with reason assign.ReasonFallback (the
// lower-case OpenFeature error codes).
const (
	ErrorProviderNotReady    = "provider_not_ready"    // no snapshot received yet
	ErrorFlagNotFound        = "flag_not_found"        // the test is not in the snapshot
	ErrorTargetingKeyMissing = "targeting_key_missing" // the request has no (valid) unit
	ErrorInvalidContext      = "invalid_context"       // the unit is over assign.MaxUnitLen bytes, or its attributes are invalid
	ErrorGeneral             = "general"               // any other cause
)

// reasonValues maps assign.Reason to feature_flag.result.reason. See
// FeatureFlagReason.
var reasonValues = [...]attribute.KeyValue{
	assign.ReasonHash:        semconv.FeatureFlagResultReasonSplit,
	assign.ReasonSticky:      semconv.FeatureFlagResultReasonCached,
	assign.ReasonOverride:    semconv.FeatureFlagResultReasonTargetingMatch,
	assign.ReasonWinner:      semconv.FeatureFlagResultReasonStatic,
	assign.ReasonPaused:      semconv.FeatureFlagResultReasonDisabled,
	assign.ReasonNotTargeted: semconv.FeatureFlagResultReasonDefault,
	assign.ReasonNotInSlice:  semconv.FeatureFlagResultReasonDefault,
	assign.ReasonFallback:    semconv.FeatureFlagResultReasonError,
}

// abmeshReasons holds the precomputed abmesh.reason attributes.
var abmeshReasons = func() (kv [len(reasonValues)]attribute.KeyValue) {
	for r := range kv {
		kv[r] = ReasonKey.String(assign.Reason(r).String())
	}
	return kv
}()

var providerAttr = semconv.FeatureFlagProviderName(ProviderName)

// FeatureFlagReason returns the feature_flag.result.reason value recorded
// for an abmesh reason:
//
//	HASH          → "split"            pseudorandom assignment (randomized)
//	STICKY        → "cached"           a stored hash assignment (randomized)
//	OVERRIDE      → "targeting_match"  an admin pinned this unit
//	WINNER        → "static"           concluded: everyone gets the winner
//	PAUSED        → "disabled"         paused or draft: control
//	NOT_TARGETED  → "default"          unit misses the targeting rules: control
//	NOT_IN_SLICE  → "default"          unit outside the layer slice: control
//	FALLBACK      → "error"            no config, unknown test or no unit: control
//
// and "unknown" for a reason out of range. The map is not one to one, so
// the event also carries abmesh.reason (ReasonKey). A unit was randomized
// (counts in analysis) exactly when the reason is "split" or "cached";
// abmesh.reason "HASH" or "STICKY" says the same (assign.Reason.Randomized).
func FeatureFlagReason(r assign.Reason) string {
	return reasonAttr(r).Value.AsString()
}

func reasonAttr(r assign.Reason) attribute.KeyValue {
	if r >= 0 && int(r) < len(reasonValues) {
		return reasonValues[r]
	}
	return semconv.FeatureFlagResultReasonUnknown
}

func abmeshReasonAttr(r assign.Reason) attribute.KeyValue {
	if r >= 0 && int(r) < len(abmeshReasons) {
		return abmeshReasons[r]
	}
	return ReasonKey.String(r.String())
}

// RecordEvaluation records a as one OpenTelemetry feature-flag evaluation
// event on span, for handlers that do not go through the interceptors or
// Evaluate. The event is named EventName and has the attributes
//
//	feature_flag.key             a.Test
//	feature_flag.result.variant  a.Variant (omitted when empty)
//	feature_flag.context.id      unit (omitted when empty)
//	feature_flag.provider.name   "abmesh"
//	feature_flag.version         a.Phase in decimal, e.g. "2" (a string, as semconv types it)
//	feature_flag.result.reason   FeatureFlagReason(a.Reason)
//	abmesh.reason                a.Reason.String(), e.g. "HASH"
//	error.type                   only for assign.ReasonFallback: ErrorTargetingKeyMissing
//	                             when unit is empty, ErrorInvalidContext when it is
//	                             over assign.MaxUnitLen, else ErrorGeneral
//
// It does nothing when span is nil or not recording. It does not set
// UnitKey on the span; Evaluate and the server interceptors do.
func RecordEvaluation(span trace.Span, unit string, a assign.Assignment) {
	errType := ""
	if a.Reason == assign.ReasonFallback {
		if errType = unitError(unit); errType == "" {
			errType = ErrorGeneral
		}
	}
	if span != nil && span.IsRecording() {
		kv := getScratch()
		record(span, kv, unit, a, errType)
		putScratch(kv)
	}
}

// scratch is the attribute buffer of one event. Span.AddEvent copies the
// attributes out of its options (trace.NewEventConfig appends them to a
// new slice), so the buffer is reused across events and requests instead
// of escaping to the heap on every event.
type scratch [8]attribute.KeyValue

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(kv *scratch) {
	*kv = scratch{} // drop references to strings of the request
	scratchPool.Put(kv)
}

// record adds the evaluation event to a recording span, building its
// attributes in kv. errType, when set, becomes error.type.
func record(span trace.Span, kv *scratch, unit string, a assign.Assignment, errType string) {
	kv[0] = semconv.FeatureFlagKey(a.Test)
	kv[1] = providerAttr
	kv[2] = semconv.FeatureFlagVersion(strconv.Itoa(a.Phase))
	kv[3] = reasonAttr(a.Reason)
	kv[4] = abmeshReasonAttr(a.Reason)
	n := 5
	if a.Variant != "" {
		kv[n] = semconv.FeatureFlagResultVariant(a.Variant)
		n++
	}
	if unit != "" {
		kv[n] = semconv.FeatureFlagContextID(unit)
		n++
	}
	if errType != "" {
		kv[n] = semconv.ErrorTypeKey.String(errType)
		n++
	}
	span.AddEvent(EventName, trace.WithAttributes(kv[:n]...))
}
