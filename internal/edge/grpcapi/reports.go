package grpcapi

import (
	"context"
	"iter"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	"github.com/abmesh/abmesh/internal/report"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// Subsets is what the report service reads of the subsetter.
type Subsets interface {
	Subsets() []subset.Subset
	Subset(viewpoint string) (subset.Subset, bool)
}

// CurrentWindows gives a viewpoint's active window (a *subset.Windows).
type CurrentWindows interface {
	Current(viewpoint string) (subset.WindowCells, bool)
}

// Reports implements abmesh.v1.ReportService.
type Reports struct {
	pb.UnimplementedReportServiceServer
	cfg     ConfigSource
	reports *report.Reader
	subsets Subsets
	windows CurrentWindows
	graph   func() tracing.GraphSnapshot
	counts  func() iter.Seq2[string, int64]
}

var _ pb.ReportServiceServer = (*Reports)(nil)

// NewReports returns the service. reports builds the reports, subsets and
// windows give the current subsets and their active windows, graph the
// current service graph, and counts every counter GetStatus shows, by
// name.
func NewReports(cfg ConfigSource, reports *report.Reader, subsets Subsets, windows CurrentWindows,
	graph func() tracing.GraphSnapshot, counts func() iter.Seq2[string, int64]) *Reports {
	return &Reports{cfg: cfg, reports: reports, subsets: subsets, windows: windows, graph: graph, counts: counts}
}

// GetReport implements ReportService.GetReport.
func (s *Reports) GetReport(ctx context.Context, req *pb.GetReportRequest) (*pb.GetReportResponse, error) {
	if err := idArg("test_id", req.GetTestId()); err != nil {
		return nil, err
	}
	if req.GetWindow() < 0 {
		return nil, invalid("window", "%d is negative", req.GetWindow())
	}
	typ := analysis.TypeIII
	switch req.GetAnovaType() {
	case 0, 3:
	case 1:
		typ = analysis.TypeI
	case 2:
		typ = analysis.TypeII
	default:
		return nil, invalid("anova_type", "%d: want 1, 2 or 3", req.GetAnovaType())
	}
	r, err := s.reports.Report(ctx, req.GetTestId(), int(req.GetWindow()), report.Options{Type: typ})
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetReportResponse{Report: protoconv.ReportToProto(r)}, nil
}

// ListSubsets implements ReportService.ListSubsets.
func (s *Reports) ListSubsets(context.Context, *pb.ListSubsetsRequest) (*pb.ListSubsetsResponse, error) {
	resp := &pb.ListSubsetsResponse{}
	for _, sub := range s.subsets.Subsets() {
		resp.Subsets = append(resp.Subsets, s.subsetToProto(sub))
	}
	return resp, nil
}

// GetSubset implements ReportService.GetSubset.
func (s *Reports) GetSubset(_ context.Context, req *pb.GetSubsetRequest) (*pb.GetSubsetResponse, error) {
	if err := idArg("test_id", req.GetTestId()); err != nil {
		return nil, err
	}
	sub, ok := s.subsets.Subset(req.GetTestId())
	if !ok {
		if _, known := s.cfg.Snapshot().Experiment(req.GetTestId()); !known {
			return nil, status.Errorf(codes.NotFound, "test_id: experiment %q not found", req.GetTestId())
		}
		return nil, status.Errorf(codes.FailedPrecondition, "experiment %q has no subset: it is not running", req.GetTestId())
	}
	return &pb.GetSubsetResponse{Subset: s.subsetToProto(sub)}, nil
}

// subsetToProto maps sub with its viewpoint's active window, if any.
func (s *Reports) subsetToProto(sub subset.Subset) *pb.Subset {
	if w, ok := s.windows.Current(sub.Viewpoint); ok {
		return protoconv.SubsetToProto(sub, &w)
	}
	return protoconv.SubsetToProto(sub, nil)
}

// GetServiceGraph implements ReportService.GetServiceGraph.
func (s *Reports) GetServiceGraph(context.Context, *pb.GetServiceGraphRequest) (*pb.GetServiceGraphResponse, error) {
	g := s.graph()
	resp := &pb.GetServiceGraphResponse{Services: g.Services}
	for _, e := range g.Edges {
		resp.Edges = append(resp.Edges, &pb.ServiceEdge{Caller: e.Caller, Callee: e.Callee, Calls: int64(e.Calls)})
	}
	return resp, nil
}

// GetStatus implements ReportService.GetStatus.
func (s *Reports) GetStatus(context.Context, *pb.GetStatusRequest) (*pb.GetStatusResponse, error) {
	resp := &pb.GetStatusResponse{ConfigVersion: s.cfg.Snapshot().Version()}
	for name, v := range s.counts() {
		resp.Counters = append(resp.Counters, &pb.Counter{Name: name, Value: v})
	}
	return resp, nil
}
