package server

import (
	"context"
	"fmt"
	"math"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// Windows is what the report service reads of the subsetter.
type Windows interface {
	Subsets() []subset.Subset
	Subset(viewpoint string) (subset.Subset, bool)
	Windows(viewpoint string) []subset.WindowCells
	Current(viewpoint string) (subset.WindowCells, bool)
}

// Reports implements abmesh.v1.ReportService.
type Reports struct {
	pb.UnimplementedReportServiceServer
	cfg      ConfigSource
	windows  Windows
	graph    func() tracing.GraphSnapshot
	counters func() []Counter
}

// Counter is one named count shown by GetStatus.
type Counter struct {
	Name  string
	Value int64
}

var _ pb.ReportServiceServer = (*Reports)(nil)

// NewReports returns the service. graph returns the current service graph
// and counters every counter of the trace consumer.
func NewReports(cfg ConfigSource, w Windows, graph func() tracing.GraphSnapshot, counters func() []Counter) *Reports {
	return &Reports{cfg: cfg, windows: w, graph: graph, counters: counters}
}

// BuildReport returns the report of test's window (0: the current one, or
// for a test no longer running — paused, concluded, deleted — its last
// window that counted requests, frozen). Errors: NotFound for an unknown
// test or window, FailedPrecondition for a test with no window yet.
func BuildReport(cfg ConfigSource, ws Windows, test string, window int, typ analysis.SSType) (*report.Report, error) {
	eng := cfg.Snapshot()
	var w subset.WindowCells
	found, last := false, false
	if window == 0 {
		w, found = ws.Current(test)
		if !found {
			if all := ws.Windows(test); len(all) > 0 {
				w, found, last = all[len(all)-1], true, true
			}
		}
	} else {
		for _, x := range ws.Windows(test) {
			if x.Seq == window {
				w, found = x, true
			}
		}
	}
	if !found {
		if _, ok := eng.Experiment(test); !ok {
			return nil, status.Errorf(codes.NotFound, "test_id: experiment %q not found", test)
		}
		if window != 0 {
			return nil, status.Errorf(codes.NotFound, "window: experiment %q has no window %d", test, window)
		}
		return nil, status.Errorf(codes.FailedPrecondition, "experiment %q has no analysis window: it is not running", test)
	}
	r := report.Build(w, eng.Experiment, report.Options{Type: typ})
	if last {
		r.Notes = append(r.Notes, fmt.Sprintf("%s is not running: this is its last window (%d), frozen", test, w.Seq))
	}
	return r, nil
}

// GetReport implements ReportService.GetReport.
func (s *Reports) GetReport(_ context.Context, req *pb.GetReportRequest) (*pb.GetReportResponse, error) {
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
	r, err := BuildReport(s.cfg, s.windows, req.GetTestId(), int(req.GetWindow()), typ)
	if err != nil {
		return nil, err
	}
	return &pb.GetReportResponse{Report: ReportToProto(r)}, nil
}

// ListSubsets implements ReportService.ListSubsets.
func (s *Reports) ListSubsets(context.Context, *pb.ListSubsetsRequest) (*pb.ListSubsetsResponse, error) {
	resp := &pb.ListSubsetsResponse{}
	for _, sub := range s.windows.Subsets() {
		resp.Subsets = append(resp.Subsets, s.subsetToProto(sub))
	}
	return resp, nil
}

// GetSubset implements ReportService.GetSubset.
func (s *Reports) GetSubset(_ context.Context, req *pb.GetSubsetRequest) (*pb.GetSubsetResponse, error) {
	if err := idArg("test_id", req.GetTestId()); err != nil {
		return nil, err
	}
	sub, ok := s.windows.Subset(req.GetTestId())
	if !ok {
		if _, known := s.cfg.Snapshot().Experiment(req.GetTestId()); !known {
			return nil, status.Errorf(codes.NotFound, "test_id: experiment %q not found", req.GetTestId())
		}
		return nil, status.Errorf(codes.FailedPrecondition, "experiment %q has no subset: it is not running", req.GetTestId())
	}
	return &pb.GetSubsetResponse{Subset: s.subsetToProto(sub)}, nil
}

func (s *Reports) subsetToProto(sub subset.Subset) *pb.Subset {
	out := &pb.Subset{Viewpoint: sub.Viewpoint, Services: sub.Services}
	for _, m := range sub.Members {
		out.Members = append(out.Members, memberToProto(m))
	}
	for _, m := range sub.NotModelled {
		out.NotModelled = append(out.NotModelled, memberToProto(m))
	}
	if w, ok := s.windows.Current(sub.Viewpoint); ok {
		out.Window = int32(w.Seq)
		out.WindowStart = timestamppb.New(w.Start)
	}
	return out
}

func memberToProto(m subset.Member) *pb.SubsetMember {
	out := &pb.SubsetMember{TestId: m.Test, CallVolume: m.Volume}
	for _, r := range m.Reasons {
		out.Reasons = append(out.Reasons, &pb.SubsetReason{Kind: r.Kind, MemberScope: string(r.EmitScope),
			ViewpointScope: string(r.SusceptibleScope), SharedServices: r.Shared})
	}
	return out
}

// SubsetFromProto maps an API subset back to the domain type (for the
// CLI's renderers).
func SubsetFromProto(p *pb.Subset) subset.Subset {
	out := subset.Subset{Viewpoint: p.GetViewpoint(), Services: p.GetServices()}
	conv := func(m *pb.SubsetMember) subset.Member {
		sm := subset.Member{Test: m.GetTestId(), Volume: m.GetCallVolume()}
		for _, r := range m.GetReasons() {
			sm.Reasons = append(sm.Reasons, subset.Reason{Kind: r.GetKind(), EmitScope: subset.Scope(r.GetMemberScope()),
				SusceptibleScope: subset.Scope(r.GetViewpointScope()), Shared: r.GetSharedServices()})
		}
		return sm
	}
	for _, m := range p.GetMembers() {
		out.Members = append(out.Members, conv(m))
	}
	for _, m := range p.GetNotModelled() {
		out.NotModelled = append(out.NotModelled, conv(m))
	}
	return out
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
	for _, c := range s.counters() {
		resp.Counters = append(resp.Counters, &pb.Counter{Name: c.Name, Value: c.Value})
	}
	return resp, nil
}

// finite replaces NaN and ±Inf (which JSON cannot carry) with 0.
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// ReportToProto maps a report to its API message.
func ReportToProto(r *report.Report) *pb.Report {
	out := &pb.Report{
		TestId: r.Test, Metric: r.Metric,
		Status:              pb.ReportStatus_REPORT_STATUS_COLLECTING,
		GenerateTime:        timestamppb.New(r.Generated),
		Notes:               r.Notes,
		Subset:              &pb.Subset{Viewpoint: r.Test, Window: int32(r.Window.Seq), WindowStart: timestamppb.New(r.Window.Start)},
		SampleRatioMismatch: r.SRMFlagged,
	}
	if r.Status == report.Complete {
		out.Status = pb.ReportStatus_REPORT_STATUS_COMPLETE
	}
	for _, m := range r.Window.Members {
		out.Factors = append(out.Factors, m.Test)
		out.Subset.Members = append(out.Subset.Members, memberToProto(subset.Member{Test: m.Test, Reasons: m.Reasons}))
	}
	for _, m := range r.Window.NotModelled {
		out.Subset.NotModelled = append(out.Subset.NotModelled, memberToProto(m))
	}
	if r.Estimates != nil {
		for _, c := range r.Estimates.Cells {
			out.Cells = append(out.Cells, &pb.Cell{Variants: c.Levels, N: c.N, Mean: finite(c.Mean), Sd: cellSD(r, c.Levels),
				CiLow: finite(c.CI.Lo), CiHigh: finite(c.CI.Hi)})
		}
		for _, e := range r.Estimates.Effects {
			out.Estimates = append(out.Estimates, &pb.Estimate{TestId: e.Factor, Variant: e.Variant, Control: e.Control,
				ControlMean: finite(e.ControlMean), VariantMean: finite(e.VariantMean), Difference: finite(e.Diff),
				CiLow: finite(e.DiffCI.Lo), CiHigh: finite(e.DiffCI.Hi), Relative: finite(e.Rel),
				RelativeCiLow: finite(e.RelCI.Lo), RelativeCiHigh: finite(e.RelCI.Hi), P: finite(e.P)})
		}
		for _, c := range r.Estimates.Interactions {
			out.Interactions = append(out.Interactions, &pb.InteractionContrast{Term: c.Term, Estimate: finite(c.Estimate),
				CiLow: finite(c.CI.Lo), CiHigh: finite(c.CI.Hi), P: finite(c.P)})
		}
	} else if r.Table != nil {
		levels := make([]int, len(r.Table.Factors))
		for i, c := range r.Table.Cells {
			r.Table.Levels(i, levels)
			names := make([]string, len(levels))
			for f, l := range levels {
				names[f] = r.Table.Factors[f].Levels[l]
			}
			out.Cells = append(out.Cells, &pb.Cell{Variants: names, N: c.N, Mean: finite(c.Mean), Sd: finite(c.SD())})
		}
	}
	if a := r.Anova; a != nil {
		out.Anova = &pb.AnovaTable{Type: int32(a.Type), ResidualDf: int32(a.Residual.DF), ResidualSs: finite(a.Residual.SS)}
		for _, t := range a.Terms {
			out.Anova.Terms = append(out.Anova.Terms, &pb.AnovaTerm{Term: t.Name, Df: int32(t.DF), Ss: finite(t.SS), Ms: finite(t.MS),
				F: finite(t.F), P: finite(t.P), PartialEta2: finite(t.PartialEta2), Estimable: t.Estimable, Reason: t.Note})
		}
	}
	for _, c := range r.SRM {
		chk := &pb.SampleRatioCheck{TestId: c.Test, Variants: c.Variants, Observed: c.Observed,
			ChiSquare: finite(c.Result.ChiSquare), P: finite(c.Result.P), Mismatch: c.Result.Flagged}
		if c.Note != "" {
			chk.P = 1 // not computed (the note says why): as analysis reports it, not "p = 0"
		}
		for _, e := range c.Result.Expected {
			chk.Expected = append(chk.Expected, finite(e))
		}
		if c.Note != "" {
			out.Notes = append(out.Notes, "sample ratio of "+c.Test+": "+c.Note)
		}
		out.SampleRatio = append(out.SampleRatio, chk)
	}
	out.DataQuality = QualityCounters(r.Window.Quality)
	p := r.Progress
	out.Progress = &pb.Progress{NeededPerCell: p.NeededPerCell, MinCellN: p.MinCellN, CellsReady: int32(p.CellsReady),
		CellsTotal: int32(p.CellsTotal), Fraction: finite(p.Fraction), EtaSeconds: -1}
	if p.ETA >= 0 {
		out.Progress.EtaSeconds = p.ETA.Round(time.Second).Seconds()
	}
	return out
}

func cellSD(r *report.Report, levels []string) float64 {
	if r.Table == nil {
		return 0
	}
	idx := make([]int, len(levels))
	for f, name := range levels {
		_, l, err := r.Table.LevelIndex(r.Table.Factors[f].Name, name)
		if err != nil {
			return 0
		}
		idx[f] = l
	}
	return finite(r.Table.Cells[r.Table.Index(idx...)].SD())
}

// QualityCounters lists a window's data-quality counters by name.
func QualityCounters(q subset.Quality) []*pb.Counter {
	pairs := []struct {
		name string
		v    int64
	}{
		{"seen", q.Seen}, {"counted", q.Counted}, {"missing_unit", q.MissingUnit}, {"before_window", q.BeforeWindow},
		{"conflict", q.Conflict}, {"override", q.Override}, {"not_targeted", q.NotTargeted}, {"not_in_slice", q.NotInSlice},
		{"paused", q.Paused}, {"winner", q.Winner}, {"fallback", q.Fallback}, {"stale_phase", q.StalePhase},
		{"assignment_mismatch", q.Mismatch}, {"not_assigned", q.NotAssigned}, {"missing_metric", q.MissingMetric},
		{"too_many_cells", q.TooManyCells},
	}
	out := make([]*pb.Counter, 0, len(pairs))
	for _, p := range pairs {
		out = append(out, &pb.Counter{Name: p.name, Value: p.v})
	}
	return out
}

// lookupFrom adapts an engine to report.Lookup.
var _ report.Lookup = (*assign.Engine)(nil).Experiment
