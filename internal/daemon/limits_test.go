package daemon_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/abmesh/abmesh/assign"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// TestAPILimits checks over real gRPC that the control plane's limits and
// text rules answer InvalidArgument naming the request field (and the
// limit, where there is one), and that nothing refused was stored.
func TestAPILimits(t *testing.T) {
	_, conn := startDaemon(t)
	ctx := context.Background()
	ec := pb.NewExperimentServiceClient(conn)
	ac := pb.NewAssignmentServiceClient(conn)
	if _, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp("base")}); err != nil {
		t.Fatal(err)
	}
	create := func(f func(*pb.Experiment)) func() error {
		return func() error {
			e := exp("bad")
			f(e)
			_, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: e})
			return err
		}
	}
	variants := func(n int) []*pb.Variant {
		vs := make([]*pb.Variant, n)
		for i := range vs {
			vs[i] = &pb.Variant{Name: fmt.Sprintf("v%d", i), Weight: 1}
		}
		return vs
	}
	interference := func(n int) []*pb.Interference {
		in := make([]*pb.Interference, n)
		for i := range in {
			in[i] = &pb.Interference{Kind: fmt.Sprintf("k%d", i), Scope: "all"}
		}
		return in
	}
	cases := []struct {
		name, field, limit string
		call               func() error
	}{
		{"too many variants", "experiment.variants", "100", create(func(e *pb.Experiment) { e.Variants = variants(assign.MaxVariants + 1) })},
		{"too many emits", "experiment.emits", "64", create(func(e *pb.Experiment) { e.Emits = interference(assign.MaxInterference + 1) })},
		{"too many susceptible", "experiment.susceptible", "64", create(func(e *pb.Experiment) { e.Susceptible = interference(assign.MaxInterference + 1) })},
		{"too many rules", "experiment.targeting", "64", create(func(e *pb.Experiment) {
			for i := range assign.MaxRules + 1 {
				e.Targeting = append(e.Targeting, &pb.TargetingRule{Attribute: fmt.Sprint("a", i), Operator: pb.TargetingOperator_TARGETING_OPERATOR_EQ, Values: []string{"x"}})
			}
		})},
		{"unknown direction", "experiment.metric.direction", "99", create(func(e *pb.Experiment) { e.Metric.Direction = 99 })},
		{"unknown aggregate", "experiment.metric.aggregate", "99", create(func(e *pb.Experiment) { e.Metric.Aggregate = 99 })},
		{"escape in owner", "experiment.owner", `'\x1b'`, create(func(e *pb.Experiment) { e.Owner = "team\x1b[2J" })},
		{"bidi override in description", "experiment.description", `'\u202e'`, create(func(e *pb.Experiment) { e.Description = "costs \u202e001$" })},
		{"C1 control in service", "experiment.change_service", `'\u009b'`, create(func(e *pb.Experiment) { e.ChangeService = "svc\u009b" })},
		{"control in rule value", "experiment.targeting[0].values[0]", `'\a'`, create(func(e *pb.Experiment) {
			e.Targeting = []*pb.TargetingRule{{Attribute: "a", Operator: pb.TargetingOperator_TARGETING_OPERATOR_EQ, Values: []string{"\a"}}}
		})},
		{"control in layer description", "layer.description", `'\x1b'`, func() error {
			_, err := ec.CreateLayer(ctx, &pb.CreateLayerRequest{Layer: &pb.Layer{Id: "l", Description: "\x1b]0;x\a"}})
			return err
		}},
		{"control in override unit", "override.unit_id", `'\n'`, func() error {
			_, err := ec.SetOverride(ctx, &pb.SetOverrideRequest{Override: &pb.Override{ExperimentId: "base", UnitId: "u\nfake", Variant: "control"}})
			return err
		}},
		{"control in Assign unit", "unit_id", `'\x1b'`, func() error {
			_, err := ac.Assign(ctx, &pb.AssignRequest{UnitId: "user\x1b[1m"})
			return err
		}},
		{"bidi in Assign unit", "unit_id", `'\u2066'`, func() error {
			_, err := ac.Assign(ctx, &pb.AssignRequest{UnitId: "\u2066user"})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st, _ := status.FromError(err)
			if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field+":") || !strings.Contains(st.Message(), tc.limit) {
				t.Fatalf("%v: want InvalidArgument on %q mentioning %q", err, tc.field, tc.limit)
			}
		})
	}
	list, err := ec.ListExperiments(ctx, &pb.ListExperimentsRequest{})
	if err != nil || len(list.GetExperiments()) != 1 {
		t.Fatalf("experiments after the refusals: %v, %v; want base alone", list, err)
	}
}
