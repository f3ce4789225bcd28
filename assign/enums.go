package assign

import (
	"fmt"
	"strconv"
)

var statusNames = [...]string{
	StatusDraft:     "DRAFT",
	StatusRunning:   "RUNNING",
	StatusPaused:    "PAUSED",
	StatusConcluded: "CONCLUDED",
}

// String returns DRAFT, RUNNING, PAUSED or CONCLUDED, or "Status(n)" for
// values out of range.
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// ParseStatus is the inverse of Status.String; ok is false for unknown
// names.
func ParseStatus(name string) (s Status, ok bool) {
	return parseEnum[Status](statusNames[:], name)
}

var reasonNames = [...]string{
	ReasonHash:        "HASH",
	ReasonSticky:      "STICKY",
	ReasonOverride:    "OVERRIDE",
	ReasonWinner:      "WINNER",
	ReasonPaused:      "PAUSED",
	ReasonNotTargeted: "NOT_TARGETED",
	ReasonNotInSlice:  "NOT_IN_SLICE",
	ReasonFallback:    "FALLBACK",
}

// String returns the reason's wire name (HASH, STICKY, OVERRIDE, WINNER,
// PAUSED, NOT_TARGETED, NOT_IN_SLICE, FALLBACK), the value SDKs record as
// feature_flag.result.reason, or "Reason(n)" for values out of range.
func (r Reason) String() string {
	if r >= 0 && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// ParseReason is the inverse of Reason.String; ok is false for unknown
// names.
func ParseReason(name string) (r Reason, ok bool) {
	return parseEnum[Reason](reasonNames[:], name)
}

// Randomized reports whether an assignment with this reason was made by the
// hash (ReasonHash, or ReasonSticky: a stored hash assignment), so that it
// counts in analysis. Overrides, winners, paused, untargeted, out-of-slice
// and fallback assignments are not randomized and are excluded.
func (r Reason) Randomized() bool {
	return r == ReasonHash || r == ReasonSticky
}

var opNames = [...]string{OpEq: "eq", OpIn: "in", OpNotIn: "not_in"}

// String returns eq, in or not_in, or "Op(n)" for values out of range.
func (o Op) String() string {
	if o >= 0 && int(o) < len(opNames) {
		return opNames[o]
	}
	return "Op(" + strconv.Itoa(int(o)) + ")"
}

// ParseOp is the inverse of Op.String; ok is false for unknown names.
func ParseOp(name string) (o Op, ok bool) {
	return parseEnum[Op](opNames[:], name)
}

var metricKindNames = [...]string{
	MetricLatencyMS: "latency_ms",
	MetricError:     "error",
	MetricAttribute: "attribute",
}

// String returns latency_ms, error or attribute, or "MetricKind(n)" for
// values out of range.
func (k MetricKind) String() string {
	if k >= 0 && int(k) < len(metricKindNames) {
		return metricKindNames[k]
	}
	return "MetricKind(" + strconv.Itoa(int(k)) + ")"
}

// ParseMetricKind is the inverse of MetricKind.String; ok is false for
// unknown names.
func ParseMetricKind(name string) (k MetricKind, ok bool) {
	return parseEnum[MetricKind](metricKindNames[:], name)
}

var aggregateNames = [...]string{
	AggregateMean:  "mean",
	AggregateSum:   "sum",
	AggregateAny:   "any",
	AggregateCount: "count",
	AggregateRatio: "ratio",
}

// String returns mean, sum, any, count or ratio, or "Aggregate(n)" for
// values out of range.
func (a Aggregate) String() string {
	if a >= 0 && int(a) < len(aggregateNames) {
		return aggregateNames[a]
	}
	return "Aggregate(" + strconv.Itoa(int(a)) + ")"
}

// ParseAggregate is the inverse of Aggregate.String, and also takes ""
// as AggregateMean (the default); ok is false for unknown names.
func ParseAggregate(name string) (a Aggregate, ok bool) {
	if name == "" {
		return AggregateMean, true
	}
	return parseEnum[Aggregate](aggregateNames[:], name)
}

// MarshalText encodes a as its name, so that JSON carries "sum", not 1.
func (a Aggregate) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText is the inverse of MarshalText; "" is AggregateMean.
func (a *Aggregate) UnmarshalText(b []byte) error {
	v, ok := ParseAggregate(string(b))
	if !ok {
		return fmt.Errorf("metric.aggregate %q: want mean, sum, any, count or ratio", b)
	}
	*a = v
	return nil
}

func parseEnum[T ~int](names []string, name string) (T, bool) {
	for i, n := range names {
		if n == name {
			return T(i), true
		}
	}
	return 0, false
}

// Interference scopes: regions of the service dependency graph (see
// Interference.Scope).
const (
	ScopeChange            = "change"             // the change service
	ScopeMeasure           = "measure"            // the measure service
	ScopeChangeToMeasure   = "change_to_measure"  // services on a call path from change to measure
	ScopeChangeDownstream  = "change_downstream"  // the change service and everything it calls
	ScopeMeasureDownstream = "measure_downstream" // the measure service and everything it calls
	ScopeChangeUpstream    = "change_upstream"    // the change service and everything that calls it
	ScopeMeasureUpstream   = "measure_upstream"   // the measure service and everything that calls it
	ScopeAll               = "all"                // every service
)

// Scopes lists the valid interference scopes. It must not be modified.
var Scopes = []string{
	ScopeChange, ScopeMeasure, ScopeChangeToMeasure,
	ScopeChangeDownstream, ScopeMeasureDownstream,
	ScopeChangeUpstream, ScopeMeasureUpstream, ScopeAll,
}

// ValidScope reports whether s is one of Scopes.
func ValidScope(s string) bool {
	for _, v := range Scopes {
		if s == v {
			return true
		}
	}
	return false
}
