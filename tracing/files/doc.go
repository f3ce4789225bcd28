// Package files reads trace files for offline analysis: Jaeger UI JSON
// exports and OTLP JSON (one document, or one per line as the
// OpenTelemetry collector's file exporter writes), detecting the format
// from the content. Errors name the file and the line and column of the
// problem.
package files
