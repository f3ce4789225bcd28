// Package otlpreceiver is abmeshd's OTLP/gRPC trace receiver: an
// implementation of the OpenTelemetry collector TraceService whose Export
// converts spans (package otlp) and adds them to a tracing.Assembler.
//
// Back-pressure is explicit: when the assembler is full, Export accepts
// nothing of the request and answers RESOURCE_EXHAUSTED with a RetryInfo
// delay, which OpenTelemetry exporters retry. Malformed and late spans are
// reported in the response's partial_success.
package otlpreceiver
