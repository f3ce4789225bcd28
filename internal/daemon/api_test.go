package daemon_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// startDaemon starts a real abmeshd and a client to it.
func startDaemon(t *testing.T, opts ...daemontest.Option) (*daemon.Daemon, *grpc.ClientConn) {
	t.Helper()
	d := daemontest.Start(t, opts...)
	return d, daemontest.Dial(t, d.Addr())
}

func exp(id string) *pb.Experiment {
	return &pb.Experiment{
		Id: id, Owner: "team", ChangeService: "svc-a", MeasureService: "svc-a",
		Metric:   &pb.Metric{Name: "latency_ms"},
		Variants: []*pb.Variant{{Name: "control", Weight: 50}, {Name: "treatment", Weight: 50}},
		Plan:     &pb.AnalysisPlan{MinimumDetectableEffect: 1},
	}
}

func TestAPIValidation(t *testing.T) {
	_, conn := startDaemon(t)
	ctx := context.Background()
	ec := pb.NewExperimentServiceClient(conn)
	ac := pb.NewAssignmentServiceClient(conn)
	if _, err := ec.CreateLayer(ctx, &pb.CreateLayerRequest{Layer: &pb.Layer{Id: "checkout"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp("base")}); err != nil {
		t.Fatal(err)
	}
	inLayer := exp("in-layer")
	inLayer.Layer, inLayer.Slice = "checkout", &pb.Slice{Start: 0, End: 6000}
	if _, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: inLayer}); err != nil {
		t.Fatal(err)
	}
	if _, err := ec.StartExperiment(ctx, &pb.StartExperimentRequest{Id: "in-layer"}); err != nil {
		t.Fatal(err)
	}
	with := func(f func(*pb.Experiment)) *pb.Experiment { e := exp("bad"); f(e); return e }
	bigAttrs := map[string]string{}
	for i := 0; i < 65; i++ {
		bigAttrs[strings.Repeat("k", 1+i%5)+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	cases := []struct {
		name  string
		call  func() error
		code  codes.Code
		field string
	}{
		{"empty unit", func() error { _, err := ac.Assign(ctx, &pb.AssignRequest{}); return err }, codes.InvalidArgument, "unit_id"},
		{"long unit", func() error {
			_, err := ac.Assign(ctx, &pb.AssignRequest{UnitId: strings.Repeat("u", 257)})
			return err
		}, codes.InvalidArgument, "unit_id"},
		{"mint with unit", func() error {
			_, err := ac.Assign(ctx, &pb.AssignRequest{UnitId: "x", MintUnit: true})
			return err
		}, codes.InvalidArgument, "unit_id"},
		{"too many attributes", func() error {
			_, err := ac.Assign(ctx, &pb.AssignRequest{UnitId: "u1", Attributes: bigAttrs})
			return err
		}, codes.InvalidArgument, "attributes"},
		{"oversized attribute value", func() error {
			_, err := ac.Assign(ctx, &pb.AssignRequest{UnitId: "u1", Attributes: map[string]string{"grade": strings.Repeat("x", 5000)}})
			return err
		}, codes.InvalidArgument, "attributes"},
		{"bad test id filter", func() error {
			_, err := ac.Assign(ctx, &pb.AssignRequest{UnitId: "u1", TestIds: []string{"Bad Id"}})
			return err
		}, codes.InvalidArgument, "test_ids[0]"},
		{"unknown experiment", func() error {
			_, err := ec.GetExperiment(ctx, &pb.GetExperimentRequest{Id: "nope"})
			return err
		}, codes.NotFound, "nope"},
		{"duplicate id", func() error {
			_, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp("base")})
			return err
		}, codes.AlreadyExists, "base"},
		{"missing experiment", func() error {
			_, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{})
			return err
		}, codes.InvalidArgument, "experiment"},
		{"invalid id syntax", func() error {
			_, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp("Not_Valid")})
			return err
		}, codes.InvalidArgument, "experiment.id"},
		{"all-zero weights", func() error {
			_, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: with(func(e *pb.Experiment) {
				e.Variants[0].Weight, e.Variants[1].Weight = 0, 0
			})})
			return err
		}, codes.InvalidArgument, "experiment.variants"},
		{"overflowing weights", func() error {
			_, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: with(func(e *pb.Experiment) {
				e.Variants[0].Weight, e.Variants[1].Weight = 1<<32-1, 1<<32-1
			})})
			return err
		}, codes.InvalidArgument, "experiment.variants"},
		{"one variant", func() error {
			_, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: with(func(e *pb.Experiment) { e.Variants = e.Variants[:1] })})
			return err
		}, codes.InvalidArgument, "experiment.variants"},
		{"bad metric", func() error {
			_, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: with(func(e *pb.Experiment) { e.Metric.Name = "speed" })})
			return err
		}, codes.InvalidArgument, "experiment.metric"},
		{"bad scope", func() error {
			_, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: with(func(e *pb.Experiment) {
				e.Emits = []*pb.Interference{{Kind: "latency", Scope: "everywhere"}}
			})})
			return err
		}, codes.InvalidArgument, "experiment.emits[0].scope"},
		{"overlapping slice", func() error {
			_, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: with(func(e *pb.Experiment) {
				e.Layer, e.Slice = "checkout", &pb.Slice{Start: 5000, End: 8000}
			})})
			if err != nil {
				return err
			}
			_, err = ec.StartExperiment(ctx, &pb.StartExperimentRequest{Id: "bad"})
			return err
		}, codes.FailedPrecondition, "overlaps"},
		{"unknown winner", func() error {
			_, err := ec.ConcludeExperiment(ctx, &pb.ConcludeExperimentRequest{Id: "in-layer", Winner: "nobody"})
			return err
		}, codes.InvalidArgument, "winner"},
		{"unknown override variant", func() error {
			_, err := ec.SetOverride(ctx, &pb.SetOverrideRequest{Override: &pb.Override{ExperimentId: "base", UnitId: "u1", Variant: "nobody"}})
			return err
		}, codes.InvalidArgument, "override.variant"},
		{"override unknown experiment", func() error {
			_, err := ec.SetOverride(ctx, &pb.SetOverrideRequest{Override: &pb.Override{ExperimentId: "nope", UnitId: "u1", Variant: "control"}})
			return err
		}, codes.NotFound, "nope"},
		{"delete layer in use", func() error {
			_, err := ec.DeleteLayer(ctx, &pb.DeleteLayerRequest{Id: "checkout"})
			return err
		}, codes.FailedPrecondition, "checkout"},
		{"pause a draft", func() error {
			_, err := ec.PauseExperiment(ctx, &pb.PauseExperimentRequest{Id: "base"})
			return err
		}, codes.FailedPrecondition, "base"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st := status.Convert(err)
			if st.Code() != tc.code {
				t.Fatalf("code = %v (%v), want %v", st.Code(), err, tc.code)
			}
			if !strings.Contains(st.Message(), tc.field) {
				t.Errorf("message %q does not name %q", st.Message(), tc.field)
			}
		})
	}
}

func TestAssignWatchAndRestart(t *testing.T) {
	dir := t.TempDir()
	d, conn := startDaemon(t, daemontest.DataDir(dir))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ec := pb.NewExperimentServiceClient(conn)
	ac := pb.NewAssignmentServiceClient(conn)

	hc := healthpb.NewHealthClient(conn)
	if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", r, err)
	}

	stream, err := ac.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(first.GetExperiments()) != 0 {
		t.Fatalf("first snapshot has %d experiments", len(first.GetExperiments()))
	}
	if _, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp("rec")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ec.StartExperiment(ctx, &pb.StartExperimentRequest{Id: "rec"}); err != nil {
		t.Fatal(err)
	}
	// The stream delivers the latest config; read until it has the start.
	for {
		s, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(s.GetExperiments()) == 1 && s.GetExperiments()[0].GetStatus() == pb.ExperimentStatus_EXPERIMENT_STATUS_RUNNING {
			break
		}
	}
	r1, err := ac.Assign(ctx, &pb.AssignRequest{UnitId: "user-42"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r1.GetAssignments()) != 1 || r1.GetHeaders()["x-abmesh-rec"] != r1.GetAssignments()[0].GetVariant() ||
		r1.GetAssignments()[0].GetReason() != pb.AssignmentReason_ASSIGNMENT_REASON_HASH {
		t.Fatalf("assign = %v", r1)
	}
	minted, err := ac.Assign(ctx, &pb.AssignRequest{MintUnit: true})
	if err != nil || !strings.HasPrefix(minted.GetUnitId(), "u-") || len(minted.GetAssignments()) != 1 {
		t.Fatalf("mint = %v, %v", minted, err)
	}

	// Restart on the same data dir: same config, same answer.
	conn.Close()
	d.Stop()
	_, conn2 := startDaemon(t, daemontest.DataDir(dir))
	r2, err := pb.NewAssignmentServiceClient(conn2).Assign(ctx, &pb.AssignRequest{UnitId: "user-42"})
	if err != nil {
		t.Fatal(err)
	}
	if r2.GetAssignments()[0].GetVariant() != r1.GetAssignments()[0].GetVariant() || r2.GetConfigVersion() != r1.GetConfigVersion() {
		t.Errorf("after restart %v, before %v", r2, r1)
	}
}

// TestLiveConfigChangesDropNoRPC keeps Assign busy from several callers
// while the config changes under it (weights, pause, start, new tests):
// every call must succeed and see a consistent config.
func TestLiveConfigChangesDropNoRPC(t *testing.T) {
	d, conn := startDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ec := pb.NewExperimentServiceClient(conn)
	ac := pb.NewAssignmentServiceClient(conn)
	if _, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp("live")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ec.StartExperiment(ctx, &pb.StartExperimentRequest{Id: "live"}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	errs := make(chan error, 8)
	calls := make(chan int, 8)
	for w := 0; w < 4; w++ {
		go func(w int) {
			n := 0
			for {
				select {
				case <-stop:
					calls <- n
					errs <- nil
					return
				default:
				}
				r, err := ac.Assign(ctx, &pb.AssignRequest{UnitId: "user-" + strings.Repeat("x", w) + time.Now().String()})
				if err != nil {
					calls <- n
					errs <- err
					return
				}
				if len(r.GetAssignments()) == 0 || r.GetConfigVersion() == 0 {
					calls <- n
					errs <- status.Errorf(codes.Internal, "inconsistent response %v", r)
					return
				}
				n++
			}
		}(w)
	}
	for i := 1; i <= 30; i++ {
		e := exp("live")
		e.Variants[1].Weight = uint32(10 + i)
		if _, err := ec.UpdateExperiment(ctx, &pb.UpdateExperimentRequest{Experiment: e}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			if _, err := ec.PauseExperiment(ctx, &pb.PauseExperimentRequest{Id: "live"}); err != nil {
				t.Fatal(err)
			}
			if _, err := ec.StartExperiment(ctx, &pb.StartExperimentRequest{Id: "live"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp("extra-" + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	total := 0
	for w := 0; w < 4; w++ {
		if err := <-errs; err != nil {
			t.Errorf("Assign failed during config changes: %v", err)
		}
		total += <-calls
	}
	if total == 0 {
		t.Fatal("no Assign call completed")
	}
	x, err := d.Registry().Experiment("live")
	if err != nil || x.Phase != 31 {
		t.Errorf("live is in phase %d (%v), want 31 (one per weight change)", x.Phase, err)
	}
}
