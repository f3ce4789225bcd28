package grpcapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	"github.com/abmesh/abmesh/internal/report"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/subset"
)

func newRegistry(t *testing.T) *assign.Registry {
	t.Helper()
	reg, err := assign.NewRegistry(context.Background(), &assign.MemStore{})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func testExperiment(id string) *assign.Experiment {
	return &assign.Experiment{ID: id, ChangeService: "a", MeasureService: "a",
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "treatment", Weight: 1}},
		Plan:     assign.Plan{MDE: 1}}
}

// TestListOverridesAll: an empty experiment_id lists every override (the
// proto's contract; `abmesh get overrides` relies on it).
func TestListOverridesAll(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	for _, id := range []string{"b-test", "a-test"} {
		if _, err := reg.Create(ctx, testExperiment(id)); err != nil {
			t.Fatal(err)
		}
		if err := reg.SetOverride(ctx, assign.Override{Experiment: id, Unit: "u1", Variant: "treatment"}); err != nil {
			t.Fatal(err)
		}
	}
	s := NewExperiments(reg)
	all, err := s.ListOverrides(ctx, &pb.ListOverridesRequest{})
	if err != nil {
		t.Fatalf("ListOverrides of all: %v", err)
	}
	if got := all.GetOverrides(); len(got) != 2 || got[0].GetExperimentId() != "a-test" || got[1].GetExperimentId() != "b-test" {
		t.Errorf("all overrides = %v, want a-test's then b-test's", got)
	}
	one, err := s.ListOverrides(ctx, &pb.ListOverridesRequest{ExperimentId: "b-test"})
	if err != nil || len(one.GetOverrides()) != 1 {
		t.Errorf("overrides of b-test = %v, %v", one, err)
	}
	_, err = s.ListOverrides(ctx, &pb.ListOverridesRequest{ExperimentId: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("overrides of an unknown experiment: %v, want NotFound", err)
	}
}

// fakeWindows has stored windows and no active one.
type fakeWindows struct {
	windows map[string][]subset.WindowCells
}

func (f fakeWindows) Subsets() []subset.Subset                  { return nil }
func (f fakeWindows) Subset(string) (subset.Subset, bool)       { return subset.Subset{}, false }
func (f fakeWindows) List(vp string) []subset.WindowCells       { return f.windows[vp] }
func (f fakeWindows) Current(string) (subset.WindowCells, bool) { return subset.WindowCells{}, false }

// TestReportOfStoppedTest: a paused or concluded test's report (window 0)
// is its last window, frozen, not an error; a test that never counted a
// request gets FailedPrecondition, an unknown test or window NotFound,
// each naming the field.
func TestReportOfStoppedTest(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	for _, id := range []string{"done", "fresh"} {
		if _, err := reg.Create(ctx, testExperiment(id)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	win := func(seq int) subset.WindowCells {
		return subset.WindowCells{Viewpoint: "done", Seq: seq, Start: start, End: start.Add(time.Hour),
			Members: []subset.WindowMember{{Test: "done", Phase: 1, Variants: []string{"control", "treatment"}}},
			Quality: subset.Quality{Seen: 10}}
	}
	ws := fakeWindows{windows: map[string][]subset.WindowCells{"done": {win(1), win(2)}}}
	srv := NewReports(reg, report.NewReader(reg, report.Local(ws)), ws, ws, nil, nil)
	get := func(test string, window int32) (*pb.Report, error) {
		resp, err := srv.GetReport(ctx, &pb.GetReportRequest{TestId: test, Window: window})
		return resp.GetReport(), err
	}
	r, err := get("done", 0)
	if err != nil {
		t.Fatalf("report of a stopped test: %v", err)
	}
	if r.GetSubset().GetWindow() != 2 || !strings.Contains(strings.Join(r.GetNotes(), "\n"), "not running") {
		t.Errorf("report of window %d, notes %q: want window 2 and a note that the test is not running", r.GetSubset().GetWindow(), r.GetNotes())
	}
	// No request in any cell: the sample-ratio check cannot run, and its p
	// must not read as a highly significant 0.
	for _, c := range r.GetSampleRatio() {
		if c.GetP() != 1 || c.GetMismatch() {
			t.Errorf("sample ratio check without data = %v, want p = 1, no mismatch", c)
		}
	}
	if r, err := get("done", 1); err != nil || r.GetSubset().GetWindow() != 1 {
		t.Errorf("window 1: %v", err)
	}
	for _, tc := range []struct {
		test   string
		window int32
		code   codes.Code
		msg    string
	}{
		{"fresh", 0, codes.FailedPrecondition, "not running"},
		{"nope", 0, codes.NotFound, "test_id: "},
		{"done", 9, codes.NotFound, "window: "},
		{"Bad!", 0, codes.InvalidArgument, "test_id: "},
		{"done", -1, codes.InvalidArgument, "window: "},
	} {
		_, err := get(tc.test, tc.window)
		if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
			t.Errorf("report of %q window %d: %v, want %v containing %q", tc.test, tc.window, err, tc.code, tc.msg)
		}
	}
}

// TestAssignmentValidatesService: Assign and Watch reject an oversized
// service name, naming the field.
func TestAssignmentValidatesService(t *testing.T) {
	s := NewAssignment(context.Background(), newRegistry(t))
	long := strings.Repeat("s", 300)
	_, err := s.Assign(context.Background(), &pb.AssignRequest{UnitId: "u1", Service: long})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "service") {
		t.Errorf("Assign with a %d-byte service: %v, want InvalidArgument naming service", len(long), err)
	}
	if err := s.Watch(&pb.WatchRequest{Service: long}, nil); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Watch with a %d-byte service: %v, want InvalidArgument", len(long), err)
	}
	if _, err := s.Assign(context.Background(), &pb.AssignRequest{UnitId: "u1", Service: "checkout"}); err != nil {
		t.Errorf("Assign with a service: %v", err)
	}
}

// TestInvalidArgumentNamesProtoField: the fields named in InvalidArgument
// messages are the request's, not the domain's short names.
func TestInvalidArgumentNamesProtoField(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	if _, err := reg.Create(ctx, testExperiment("base")); err != nil {
		t.Fatal(err)
	}
	s := NewExperiments(reg)
	exp := func(f func(*pb.Experiment)) *pb.Experiment {
		e := &pb.Experiment{Id: "x", ChangeService: "a", MeasureService: "a", Metric: &pb.Metric{Name: "latency_ms"},
			Variants: []*pb.Variant{{Name: "control", Weight: 1}, {Name: "t", Weight: 1}},
			Plan:     &pb.AnalysisPlan{MinimumDetectableEffect: 1}}
		f(e)
		return e
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"mde", func() error {
			_, err := s.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp(func(e *pb.Experiment) { e.Plan.MinimumDetectableEffect = 0 })})
			return err
		}, "experiment.plan.minimum_detectable_effect"},
		{"sd", func() error {
			_, err := s.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp(func(e *pb.Experiment) { e.Plan.StandardDeviation = -1 })})
			return err
		}, "experiment.plan.standard_deviation"},
		{"interaction with an unknown test", func() error {
			_, err := s.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp(func(e *pb.Experiment) {
				e.Plan.Interactions = []*pb.PlannedInteraction{{With: "base", MinimumDetectableEffect: 1}, {With: "nobody", MinimumDetectableEffect: 1}}
			})})
			return err
		}, "experiment.plan.interactions[1].with"},
		{"interaction without mde", func() error {
			_, err := s.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp(func(e *pb.Experiment) {
				e.Plan.Interactions = []*pb.PlannedInteraction{{With: "base"}}
			})})
			return err
		}, "experiment.plan.interactions[0].minimum_detectable_effect"},
		{"interaction with itself", func() error {
			_, err := s.UpdateExperiment(ctx, &pb.UpdateExperimentRequest{Experiment: func() *pb.Experiment {
				e := protoconv.ExperimentToProto(testExperiment("base"))
				e.Plan.Interactions = []*pb.PlannedInteraction{{With: "base", MinimumDetectableEffect: 1}}
				return e
			}()})
			return err
		}, "experiment.plan.interactions[0].with"},
		{"override experiment", func() error {
			_, err := s.SetOverride(ctx, &pb.SetOverrideRequest{Override: &pb.Override{ExperimentId: "Bad_Id", UnitId: "u", Variant: "control"}})
			return err
		}, "override.experiment_id"},
	} {
		err := tc.call()
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tc.field+":") {
			t.Errorf("%s: %v, want InvalidArgument on %s", tc.name, err, tc.field)
		}
	}
}
