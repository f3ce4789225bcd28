package protoconv

import (
	"math"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/internal/report"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// finite replaces NaN and ±Inf (which JSON cannot carry) with 0.
func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

// SubsetToProto maps a subset to its API message; w, when not nil, is the
// viewpoint's active window (its number and start are shown).
func SubsetToProto(sub subset.Subset, w *subset.WindowCells) *pb.Subset {
	out := &pb.Subset{Viewpoint: sub.Viewpoint, Services: sub.Services}
	for _, m := range sub.Members {
		out.Members = append(out.Members, memberToProto(m))
	}
	for _, m := range sub.NotModelled {
		out.NotModelled = append(out.NotModelled, memberToProto(m))
	}
	if w != nil {
		out.Window = int32(w.Seq)
		out.WindowStart = timestamppb.New(w.Start)
	}
	return out
}

func memberToProto(m subset.Member) *pb.SubsetMember {
	out := &pb.SubsetMember{TestId: m.Test, CallVolume: m.Volume, Layer: m.Layer}
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
		sm := subset.Member{Test: m.GetTestId(), Volume: m.GetCallVolume(), Layer: m.GetLayer()}
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

// QualityToProto lists a window's data-quality counters by name, in the
// order subset.Quality.Counts gives them.
func QualityToProto(q subset.Quality) []*pb.Counter {
	var out []*pb.Counter
	for name, v := range q.Counts() {
		out = append(out, &pb.Counter{Name: name, Value: v})
	}
	return out
}

// ReportToProto maps a report to its API message. NaN and infinite
// statistics (which JSON cannot carry) become 0; a sample-ratio check that
// could not run has p = 1 and its reason in the notes.
func ReportToProto(r *report.Report) *pb.Report {
	out := &pb.Report{
		TestId: r.Test, Metric: r.Metric,
		Status:              pb.ReportStatus_REPORT_STATUS_COLLECTING,
		GenerateTime:        timestamppb.New(r.Generated),
		Notes:               r.Notes,
		Subset:              &pb.Subset{Viewpoint: r.Test, Window: int32(r.Window.Seq), WindowStart: timestamppb.New(r.Window.Start)},
		SampleRatioMismatch: r.SRMFlagged,
		Aggregate:           AggregateToProto(r.Aggregate),
		StatusLine:          r.StatusLine(),
	}
	switch r.Status {
	case report.Complete:
		out.Status = pb.ReportStatus_REPORT_STATUS_COMPLETE
		out.FixedHorizonReached = true
	case report.Decided:
		out.Status = pb.ReportStatus_REPORT_STATUS_DECIDED
	}
	for _, m := range r.Window.Members {
		out.Factors = append(out.Factors, m.Test)
		if !m.IsLayer() {
			out.Subset.Members = append(out.Subset.Members, memberToProto(subset.Member{Test: m.Test, Reasons: m.Reasons}))
		}
		for _, t := range m.Tests { // a layer factor: its tests
			out.Subset.Members = append(out.Subset.Members, memberToProto(subset.Member{Test: t.Test, Reasons: t.Reasons, Layer: m.Layer}))
		}
	}
	for _, m := range r.Window.NotModelled {
		out.Subset.NotModelled = append(out.Subset.NotModelled, memberToProto(m))
	}
	out.Cells = cellsToProto(r)
	if e := r.Estimates; e != nil {
		out.EstimateTest = e.Test
		for _, e := range e.Effects {
			out.Estimates = append(out.Estimates, &pb.Estimate{TestId: e.Factor, Variant: e.Variant, Control: e.Control,
				ControlMean: finite(e.ControlMean), VariantMean: finite(e.VariantMean), Difference: finite(e.Diff),
				CiLow: finite(e.DiffCI.Lo), CiHigh: finite(e.DiffCI.Hi), Relative: finite(e.Rel),
				RelativeCiLow: finite(e.RelCI.Lo), RelativeCiHigh: finite(e.RelCI.Hi), P: finite(e.P)})
		}
		for _, c := range e.Interactions {
			out.Interactions = append(out.Interactions, &pb.InteractionContrast{Term: c.Term, Estimate: finite(c.Estimate),
				CiLow: finite(c.CI.Lo), CiHigh: finite(c.CI.Hi), P: finite(c.P)})
		}
	}
	if a := r.Anova; a != nil {
		out.Anova = &pb.AnovaTable{Type: int32(a.Type), ResidualDf: int32(a.Residual.DF), ResidualSs: finite(a.Residual.SS), Test: a.Test}
		for _, t := range a.Terms {
			out.Anova.Terms = append(out.Anova.Terms, &pb.AnovaTerm{Term: t.Name, Df: int32(t.DF), Ss: finite(t.SS), Ms: finite(t.MS),
				F: finite(t.F), P: finite(t.P), PartialEta2: finite(t.PartialEta2), Estimable: t.Estimable, Reason: t.Note,
				ChiSquare: finite(t.Chisq)})
		}
	}
	for _, c := range r.SRM {
		out.SampleRatio = append(out.SampleRatio, srmToProto(c))
		if c.Note != "" {
			out.Notes = append(out.Notes, "sample ratio of "+c.Test+": "+c.Note)
		}
	}
	if j := r.JointSRM; j != nil {
		out.JointSampleRatio = jointSRMToProto(j)
		if j.Note != "" {
			out.Notes = append(out.Notes, "joint sample ratio: "+j.Note)
		}
	}
	out.DataQuality = QualityToProto(r.Window.Quality)
	p := r.Progress
	out.Progress = &pb.Progress{NeededPerCell: p.NeededPerCell, MinCellN: p.MinCellN, CellsReady: int32(p.CellsReady),
		CellsTotal: int32(p.CellsTotal), Fraction: finite(p.Fraction), EtaSeconds: -1}
	if p.ETA >= 0 {
		out.Progress.EtaSeconds = p.ETA.Round(time.Second).Seconds()
	}
	for _, n := range p.Needs {
		out.Progress.Needs = append(out.Progress.Needs, &pb.TermNeed{Term: n.Name, Mde: finite(n.MDE), NeededPerCell: n.NeededPerCell})
	}
	if r.Anytime != nil {
		out.Anytime = anytimeToProto(r.Anytime)
		out.Decision = &pb.Decision{Decided: r.Decision.Decided, FirstDecidedUnits: r.Decision.FirstUnits}
		if !r.Decision.FirstTime.IsZero() {
			out.Decision.FirstDecidedTime = timestamppb.New(r.Decision.FirstTime)
		}
		for _, d := range r.Decision.Terms {
			out.Decision.Terms = append(out.Decision.Terms, &pb.TermDecision{Term: d.Term, Mde: finite(d.MDE), P: finite(d.P), Verdict: d.Verdict, Note: d.Note})
		}
	}
	for _, l := range r.Looks {
		look := &pb.Look{Time: timestamppb.New(l.Time), Units: l.Units, MinCellN: l.MinCellN}
		for _, x := range l.Intervals {
			look.Intervals = append(look.Intervals, &pb.LookInterval{Name: x.Name, Estimate: finite(x.Estimate), CsLow: finite(x.Lo), CsHigh: finite(x.Hi), Bounded: x.Bounded})
		}
		out.Looks = append(out.Looks, look)
	}
	return out
}

// anytimeToProto maps the anytime-valid results.
func anytimeToProto(a *analysis.AnytimeResults) *pb.AnytimeResults {
	out := &pb.AnytimeResults{Method: a.Method, Alpha: a.Alpha, Phi: finite(a.Phi)}
	for _, t := range a.Terms {
		out.Terms = append(out.Terms, &pb.AnytimeTerm{Term: t.Name, Df: int32(t.DF), P: finite(t.P), LogE: finite(t.LogE), Tested: t.Tested, Note: t.Note})
	}
	cs := func(e analysis.AnytimeEstimate) *pb.ConfidenceSequence {
		return &pb.ConfidenceSequence{TestId: e.Factor, Variant: e.Variant, Control: e.Control, Term: e.Term, Estimate: finite(e.Estimate),
			CsLow: finite(e.CS.Lo), CsHigh: finite(e.CS.Hi), Bounded: e.Bounded, P: finite(e.P), Note: e.Note}
	}
	for _, e := range a.Effects {
		out.Effects = append(out.Effects, cs(e))
	}
	for _, e := range a.Interactions {
		out.Interactions = append(out.Interactions, cs(e))
	}
	return out
}

// cellsToProto lists the report's cells: with their intervals when the
// estimates were computed, else from the cell table.
func cellsToProto(r *report.Report) []*pb.Cell {
	var out []*pb.Cell
	if r.Estimates != nil {
		for _, c := range r.Estimates.Cells {
			out = append(out, &pb.Cell{Variants: c.Levels, N: c.N, Mean: finite(c.Mean), Sd: cellSD(r, c.Levels),
				CiLow: finite(c.CI.Lo), CiHigh: finite(c.CI.Hi), Requests: cellRequests(r, c.Levels)})
		}
		return out
	}
	if r.Table == nil {
		return nil
	}
	levels := make([]int, len(r.Table.Factors))
	for i, c := range r.Table.Cells {
		r.Table.Levels(i, levels)
		names := make([]string, len(levels))
		for f, l := range levels {
			names[f] = r.Table.Factors[f].Levels[l]
		}
		out = append(out, &pb.Cell{Variants: names, N: c.N, Mean: finite(c.Mean), Sd: finite(c.SD()), Requests: cellRequests(r, names)})
	}
	return out
}

func cellRequests(r *report.Report, levels []string) int64 {
	_, req := r.CellCounts(levels)
	return req
}

// cellSD is the SD of the table cell with the given level names; 0 when
// there is no such cell.
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

func srmToProto(c report.SRMCheck) *pb.SampleRatioCheck {
	chk := &pb.SampleRatioCheck{TestId: c.Test, Variants: c.Variants, Observed: c.Observed, Requests: c.Requests,
		ChiSquare: finite(c.Result.ChiSquare), P: finite(c.Result.P), Mismatch: c.Result.Flagged}
	if c.Note != "" {
		chk.P = 1 // not computed (the note says why): as analysis reports it, not "p = 0"
	}
	for _, e := range c.Result.Expected {
		chk.Expected = append(chk.Expected, finite(e))
	}
	return chk
}

func jointSRMToProto(j *report.JointSRMCheck) *pb.JointSampleRatioCheck {
	out := &pb.JointSampleRatioCheck{ChiSquare: finite(j.Result.ChiSquare), Df: int32(j.Result.DF), P: finite(j.Result.P),
		Mismatch: j.Result.Flagged, Note: j.Note}
	if j.Note != "" {
		out.P = 1 // not computed, as srmToProto
	}
	for i, c := range j.Cells {
		cell := &pb.JointSampleRatioCell{Variants: c.Variants, Observed: c.Units, Requests: c.Requests}
		if i < len(j.Result.Expected) {
			cell.Expected = finite(j.Result.Expected[i])
		}
		out.Cells = append(out.Cells, cell)
	}
	return out
}

// EdgesFromProto maps the API's service graph to its domain edges.
func EdgesFromProto(g *pb.GetServiceGraphResponse) []tracing.Edge {
	var edges []tracing.Edge
	for _, x := range g.GetEdges() {
		edges = append(edges, tracing.Edge{Caller: x.GetCaller(), Callee: x.GetCallee(), Calls: uint64(max(x.GetCalls(), 0))})
	}
	return edges
}
