package grpcapi

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/subset"
)

// experimentClient serves an ExperimentService over a fresh registry on a
// loopback listener and returns a client connected to it.
func experimentClient(t *testing.T) pb.ExperimentServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterExperimentServiceServer(srv, NewExperiments(newRegistry(t)))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewExperimentServiceClient(conn)
}

// TestAggregateOverTheWire: an aggregate value the API does not define
// (sent raw, as a newer or broken client would) is InvalidArgument naming
// experiment.metric.aggregate, on create and on update; a running
// experiment's aggregate may change (it opens a new analysis window),
// and what is stored is what Get returns.
func TestAggregateOverTheWire(t *testing.T) {
	ctx := context.Background()
	c := experimentClient(t)
	exp := func(agg pb.MetricAggregate) *pb.Experiment {
		return &pb.Experiment{Id: "conv", ChangeService: "a", MeasureService: "a",
			Metric:   &pb.Metric{Name: "attribute:order.placed", Direction: pb.MetricDirection_METRIC_DIRECTION_HIGHER_IS_BETTER, Aggregate: agg},
			Variants: []*pb.Variant{{Name: "control", Weight: 1}, {Name: "t", Weight: 1}},
			Plan:     &pb.AnalysisPlan{MinimumDetectableEffect: 0.01}}
	}
	wantInvalid := func(what string, err error) {
		t.Helper()
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "experiment.metric.aggregate:") {
			t.Errorf("%s: %v, want InvalidArgument on experiment.metric.aggregate", what, err)
		}
	}
	_, err := c.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp(pb.MetricAggregate(9))})
	wantInvalid("create with aggregate 9", err)

	created, err := c.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp(pb.MetricAggregate_METRIC_AGGREGATE_UNSPECIFIED)})
	if err != nil {
		t.Fatal(err)
	}
	if got := created.GetExperiment().GetMetric().GetAggregate(); got != pb.MetricAggregate_METRIC_AGGREGATE_MEAN {
		t.Errorf("created with UNSPECIFIED: aggregate %v, want MEAN", got)
	}
	if _, err := c.StartExperiment(ctx, &pb.StartExperimentRequest{Id: "conv"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateExperiment(ctx, &pb.UpdateExperimentRequest{Experiment: exp(pb.MetricAggregate(-1))})
	wantInvalid("update with aggregate -1", err)

	up, err := c.UpdateExperiment(ctx, &pb.UpdateExperimentRequest{Experiment: exp(pb.MetricAggregate_METRIC_AGGREGATE_ANY)})
	if err != nil {
		t.Fatalf("changing a running experiment's aggregate: %v", err)
	}
	if up.GetExperiment().GetStatus() != pb.ExperimentStatus_EXPERIMENT_STATUS_RUNNING || up.GetExperiment().GetPhase() != 1 {
		t.Errorf("after the aggregate change: status %v phase %d, want still RUNNING in phase 1 (the assignment is unchanged)",
			up.GetExperiment().GetStatus(), up.GetExperiment().GetPhase())
	}
	got, err := c.GetExperiment(ctx, &pb.GetExperimentRequest{Id: "conv"})
	if err != nil || got.GetExperiment().GetMetric().GetAggregate() != pb.MetricAggregate_METRIC_AGGREGATE_ANY {
		t.Errorf("get after update: %v, %v; want ANY", got.GetExperiment().GetMetric(), err)
	}
}

// TestGetReportUnits: GetReport carries the window's aggregate, each
// cell's units and requests, the per-test checks on units with requests
// beside them, and the joint check over the cells.
func TestGetReportUnits(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	for _, id := range []string{"vp", "mem"} {
		if _, err := reg.Create(ctx, testExperiment(id)); err != nil {
			t.Fatal(err)
		}
	}
	w := subset.WindowCells{Viewpoint: "vp", Seq: 1, Start: time.Unix(0, 0), End: time.Unix(60, 0), Aggregate: assign.AggregateCount,
		Members: []subset.WindowMember{{Test: "vp", Variants: []string{"control", "treatment"}}, {Test: "mem", Variants: []string{"control", "treatment"}}}}
	for i := range 4 {
		units := int64(100 + 10*i)
		w.Cells = append(w.Cells, subset.Cell{Variants: []int{i / 2, i % 2}, Stats: analysis.CellStats{N: units, Mean: 3, M2: float64(units)},
			Requests: 3 * units})
	}
	ws := fakeWindows{windows: map[string][]subset.WindowCells{"vp": {w}}}
	resp, err := NewReports(reg, report.NewReader(reg, report.Local(ws)), ws, ws, nil, nil).GetReport(ctx, &pb.GetReportRequest{TestId: "vp"})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetReport()
	if r.GetAggregate() != pb.MetricAggregate_METRIC_AGGREGATE_COUNT {
		t.Errorf("aggregate %v, want COUNT", r.GetAggregate())
	}
	for _, c := range r.GetCells() {
		if c.GetRequests() != 3*c.GetN() || c.GetN() < 100 {
			t.Errorf("cell %v: %d units, %d requests; want 3 requests per unit", c.GetVariants(), c.GetN(), c.GetRequests())
		}
	}
	if s := r.GetSampleRatio()[0]; len(s.GetObserved()) != 2 || s.GetObserved()[0] != 210 || s.GetRequests()[0] != 630 {
		t.Errorf("vp's check %v, want 210 units and 630 requests in control", s)
	}
	if j := r.GetJointSampleRatio(); len(j.GetCells()) != 4 || j.GetDf() != 3 || j.GetCells()[3].GetObserved() != 130 {
		t.Errorf("joint check %v, want 4 cells, 3 df", j)
	}
}

// TestGetReportAnytimeOverTheWire: over a real gRPC connection GetReport
// carries the anytime-valid results, the stopping rule with the planned
// interaction, the needs per term and the status line, and their JSON
// (what `abmesh report -o json` prints) names them.
func TestGetReportAnytimeOverTheWire(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	for _, id := range []string{"mem", "vp"} {
		x := testExperiment(id)
		x.Plan = assign.Plan{MDE: 1, SD: 3}
		if id == "vp" {
			x.Plan.Interactions = []assign.PlannedInteraction{{With: "mem", MDE: 10}}
		}
		if _, err := reg.Create(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	w := subset.WindowCells{Viewpoint: "vp", Seq: 1, Start: time.Unix(0, 0), End: time.Unix(60, 0),
		Members: []subset.WindowMember{{Test: "vp", Variants: []string{"control", "treatment"}}, {Test: "mem", Variants: []string{"control", "treatment"}}}}
	for i := range 4 {
		w.Cells = append(w.Cells, subset.Cell{Variants: []int{i / 2, i % 2}, Stats: analysis.CellStats{N: 20, Mean: float64(5 * (i / 2)), M2: 9 * 19}, Requests: 20})
	}
	ws := fakeWindows{windows: map[string][]subset.WindowCells{"vp": {w}}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterReportServiceServer(srv, NewReports(reg, report.NewReader(reg, report.Local(ws)), ws, ws, nil, nil))
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	resp, err := pb.NewReportServiceClient(conn).GetReport(ctx, &pb.GetReportRequest{TestId: "vp"})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetReport()
	a := r.GetAnytime()
	if a == nil || len(a.GetTerms()) != 3 || len(a.GetEffects()) != 2 || len(a.GetInteractions()) != 1 || a.GetPhi() <= 0 {
		t.Fatalf("anytime %v", a)
	}
	d := r.GetDecision()
	if r.GetStatus() != pb.ReportStatus_REPORT_STATUS_DECIDED || !d.GetDecided() || len(d.GetTerms()) != 2 || d.GetTerms()[1].GetTerm() != "vp:mem" ||
		r.GetFixedHorizonReached() || !strings.HasPrefix(r.GetStatusLine(), "DECIDED (anytime-valid") || len(r.GetProgress().GetNeeds()) != 2 {
		t.Errorf("status %v, decision %v, reached %v, line %q, needs %v", r.GetStatus(), d, r.GetFixedHorizonReached(), r.GetStatusLine(), r.GetProgress().GetNeeds())
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r) // as the CLI prints it
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"anytime"`, `"cs_low"`, `"decision"`, `"verdict":"significant"`, `"status_line"`, `"REPORT_STATUS_DECIDED"`, `"needed_per_cell"`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s: %s", want, js)
		}
	}
}
