package daemon

import "github.com/abmesh/abmesh/internal/auth"

// methodRoles is the role each gRPC method of abmeshd needs, on the API
// port and the OTLP port, when authentication is on (--auth-file). A
// method missing here is refused to everyone; TestMethodRoles fails when
// a registered method has no entry. The Connect protocol's paths for the
// flagd API are the same names. docs/operations.md shows this table.
var methodRoles = map[string]auth.Role{
	// Assignment: SDKs and proxies.
	"/abmesh.v1.AssignmentService/Assign": auth.Client,
	"/abmesh.v1.AssignmentService/Watch":  auth.Client,

	// Experiments and layers: changes are admin's, reads reader's.
	"/abmesh.v1.ExperimentService/CreateExperiment":   auth.Admin,
	"/abmesh.v1.ExperimentService/UpdateExperiment":   auth.Admin,
	"/abmesh.v1.ExperimentService/DeleteExperiment":   auth.Admin,
	"/abmesh.v1.ExperimentService/StartExperiment":    auth.Admin,
	"/abmesh.v1.ExperimentService/PauseExperiment":    auth.Admin,
	"/abmesh.v1.ExperimentService/ConcludeExperiment": auth.Admin,
	"/abmesh.v1.ExperimentService/SetOverride":        auth.Admin,
	"/abmesh.v1.ExperimentService/DeleteOverride":     auth.Admin,
	"/abmesh.v1.ExperimentService/CreateLayer":        auth.Admin,
	"/abmesh.v1.ExperimentService/UpdateLayer":        auth.Admin,
	"/abmesh.v1.ExperimentService/DeleteLayer":        auth.Admin,
	"/abmesh.v1.ExperimentService/GetExperiment":      auth.Reader,
	"/abmesh.v1.ExperimentService/ListExperiments":    auth.Reader,
	"/abmesh.v1.ExperimentService/ListOverrides":      auth.Reader,
	"/abmesh.v1.ExperimentService/GetLayer":           auth.Reader,
	"/abmesh.v1.ExperimentService/ListLayers":         auth.Reader,
	"/abmesh.v1.ExperimentService/ListChanges":        auth.Reader,

	// Reports, subsets, cells, the graph and status.
	"/abmesh.v1.ReportService/GetReport":       auth.Reader,
	"/abmesh.v1.ReportService/ListSubsets":     auth.Reader,
	"/abmesh.v1.ReportService/GetSubset":       auth.Reader,
	"/abmesh.v1.ReportService/GetServiceGraph": auth.Reader,
	"/abmesh.v1.ReportService/GetStatus":       auth.Reader,

	// OpenFeature's flagd evaluation API: assignment for flagd providers.
	"/flagd.evaluation.v1.Service/ResolveAll":     auth.Client,
	"/flagd.evaluation.v1.Service/ResolveBoolean": auth.Client,
	"/flagd.evaluation.v1.Service/ResolveString":  auth.Client,
	"/flagd.evaluation.v1.Service/ResolveFloat":   auth.Client,
	"/flagd.evaluation.v1.Service/ResolveInt":     auth.Client,
	"/flagd.evaluation.v1.Service/ResolveObject":  auth.Client,
	"/flagd.evaluation.v1.Service/EventStream":    auth.Client,
	"/flagd.evaluation.v2.Service/ResolveAll":     auth.Client,
	"/flagd.evaluation.v2.Service/ResolveBoolean": auth.Client,
	"/flagd.evaluation.v2.Service/ResolveString":  auth.Client,
	"/flagd.evaluation.v2.Service/ResolveFloat":   auth.Client,
	"/flagd.evaluation.v2.Service/ResolveInt":     auth.Client,
	"/flagd.evaluation.v2.Service/ResolveObject":  auth.Client,
	"/flagd.evaluation.v2.Service/EventStream":    auth.Client,

	// Envoy's gRPC ext_authz: forward-auth assigns units, as Assign does.
	"/envoy.service.auth.v3.Authorization/Check": auth.Client,

	// Health is open, for load balancers' and orchestrators' probes; it
	// tells only SERVING or NOT_SERVING.
	"/grpc.health.v1.Health/Check": auth.Public,
	"/grpc.health.v1.Health/List":  auth.Public,
	"/grpc.health.v1.Health/Watch": auth.Public,

	// Reflection describes the API (grpcurl): a reader's.
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      auth.Reader,
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": auth.Reader,

	// The OTLP receiver's port.
	"/opentelemetry.proto.collector.trace.v1.TraceService/Export": auth.Ingest,
}
