// Package otlp converts OpenTelemetry OTLP trace data — protobuf
// ResourceSpans and the OTLP JSON encoding — into tracing.Span values.
// It is the only place that knows OTLP's shape; the receiver
// (otlpreceiver) and the file reader (files) both use it.
package otlp
