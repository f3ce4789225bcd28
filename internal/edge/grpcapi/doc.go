// Package server is the thin gRPC layer of abmeshd: it implements the
// abmesh.v1 AssignmentService, ExperimentService and ReportService over
// the domain packages (assign, subset, report), validates every request,
// maps proto ↔ domain (with internal/edge/protoconv) and maps domain errors to
// gRPC status codes (toStatus is the only place that knows the mapping).
// Bad input is InvalidArgument with a message that names the field.
package grpcapi
