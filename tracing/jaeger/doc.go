// Package jaeger reads traces from Jaeger: it converts Jaeger's api_v2
// model spans (and Jaeger UI JSON exports) into tracing.Span values, and
// Reader polls a Jaeger query service (FindTraces over a sliding window,
// GetDependencies) into a trace sink and a tracing.Graph.
//
// In Jaeger's model a span's kind is its span.kind tag, an error is the
// tag error=true (or otel.status_code=ERROR), and span events are logs
// whose `event` field is the event name; Convert maps all three.
package jaeger
