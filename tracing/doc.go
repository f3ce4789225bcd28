// Package tracing turns distributed traces into abmesh observations: which
// unit a request was for, which services it went through, which variant of
// which test each service served, and what it measured.
//
// The pieces, in the order a span travels:
//
//   - Span is abmesh's own span model. Converters in sub-packages fill it
//     from OTLP (otlp), Jaeger's api_v2 model (jaeger) and trace files
//     (files); they keep only what the consumer reads (KeepAttr, KeepEvent)
//     and count what they cannot convert in a Batch.
//   - Assembler groups spans by trace id, completes a trace after an idle
//     timeout (or a maximum age), bounds memory by traces and spans in
//     flight (Add returns ErrFull rather than drop), and counts every span
//     under one outcome (AssemblyStats).
//   - BuildObservation turns one trace's spans into an Observation: sorted
//     services, call edges, feature-flag exposures and conflicts, the unit,
//     and per-service metrics. The Assembler hands each to a Consumer.
//   - Graph aggregates observations' edges (and Jaeger dependency links)
//     into the service dependency graph over a sliding window.
//
// Sources live in sub-packages: otlpreceiver (OTLP/gRPC TraceService),
// jaeger (Jaeger query API reader and model conversion), files (Jaeger UI
// JSON and OTLP JSON files); otlpload generates OTLP load for benchmarks.
// This package has no protobuf types.
package tracing
