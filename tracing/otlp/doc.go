// Package otlp converts OpenTelemetry OTLP trace data into tracing.Span
// values: generated protobuf messages (Convert), the protobuf wire bytes
// of an ExportTraceServiceRequest or TracesData decoded directly, without
// intermediate messages (DecodeProto, the receiver's hot path), and the
// OTLP JSON encoding with hex ids (DecodeJSON). All three give the same
// spans and count the same rejections. It is the only place that knows
// OTLP's shape; the receiver (otlpreceiver) and the file reader (files)
// use it.
package otlp
