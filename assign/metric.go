package assign

import (
	"fmt"
	"strings"
)

// String returns the metric's name, the one syntax the API, manifests,
// subset.Test and tracing.Observation.Metric share: "latency_ms", "error"
// or "attribute:<key>" with the span attribute key. The direction is not
// part of the name. A Kind out of range gives its MetricKind.String.
func (m Metric) String() string {
	if m.Kind == MetricAttribute {
		return m.Kind.String() + ":" + m.Attribute
	}
	return m.Kind.String()
}

// ParseMetric is the inverse of Metric.String: it accepts exactly
// "latency_ms", "error" and "attribute:<key>" with a non-empty key, and
// returns a Metric with HigherIsBetter false. It checks the syntax only;
// Metric.Validate checks the attribute key's length. The error names the
// field, metric.
func ParseMetric(name string) (Metric, error) {
	kindName, attr, hasAttr := strings.Cut(name, ":")
	if kind, ok := ParseMetricKind(kindName); ok {
		switch {
		case kind == MetricAttribute && attr != "":
			return Metric{Kind: kind, Attribute: attr}, nil
		case kind != MetricAttribute && !hasAttr:
			return Metric{Kind: kind}, nil
		}
	}
	return Metric{}, fmt.Errorf("metric %q: want latency_ms, error or attribute:<key>", name)
}
