// Package otlpload generates OTLP/gRPC trace load for benchmarks: Run
// sends realistic traces (five services, flag evaluations, the usual
// attributes) at a target rate, bounded in time and count, and reports the
// spans per second the receiver accepted. abmesh exposes it as
// "abmesh bench otlp".
package otlpload
