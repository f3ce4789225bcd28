package grpcapi

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
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
