package protoconv

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

func TestExperimentRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	in := assign.Experiment{
		ID: "rec-model", Owner: "team", Description: "d", ChangeService: "recommendation", MeasureService: "frontend",
		Metric:   assign.Metric{Kind: assign.MetricAttribute, Attribute: "shop.order.value", HigherIsBetter: true, Aggregate: assign.AggregateSum},
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "ml", Weight: 3}},
		Layer:    "l", Slice: assign.Slice{Start: 10, End: 20},
		Targeting: []assign.Rule{{Attribute: "grade", Op: assign.OpIn, Values: []string{"vip"}},
			{Attribute: "country", Op: assign.OpNotIn, Values: []string{"xx"}}, {Attribute: "app", Op: assign.OpEq, Values: []string{"ios"}}},
		Sticky: true, Salt: "s",
		Emits:       []assign.Interference{{Kind: "latency", Scope: "change_downstream"}},
		Susceptible: []assign.Interference{{Kind: "user_experience", Scope: "measure"}},
		Plan:        assign.Plan{Alpha: 0.01, Power: 0.9, MDE: 2, SD: 7},
		Status:      assign.StatusConcluded, Winner: "ml", Phase: 2,
		Phases:    []assign.Phase{{Number: 1, Weights: []uint32{1, 1}, StartedAt: at}, {Number: 2, Weights: []uint32{1, 3}, StartedAt: at.Add(time.Hour)}},
		CreatedAt: at, UpdatedAt: at.Add(2 * time.Hour),
	}
	out, err := ExperimentFromProto(ExperimentToProto(&in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip changed the experiment:\n in  %+v\n out %+v", in, out)
	}
}

func TestMetricFromProto(t *testing.T) {
	for name, want := range map[string]assign.Metric{
		"":              {Kind: assign.MetricLatencyMS},
		"error":         {Kind: assign.MetricError},
		"attribute:x.y": {Kind: assign.MetricAttribute, Attribute: "x.y"},
	} {
		e, err := ExperimentFromProto(&pb.Experiment{Id: "x", Metric: &pb.Metric{Name: name}})
		if err != nil || e.Metric != want {
			t.Errorf("metric name %q → %+v, %v; want %+v", name, e.Metric, err, want)
		}
	}
	_, err := ExperimentFromProto(&pb.Experiment{Id: "x", Metric: &pb.Metric{Name: "speed"}})
	var fe *assign.FieldError
	if !errors.As(err, &fe) || fe.Field != "metric.name" {
		t.Errorf("bad metric error = %v", err)
	}
	_, err = ExperimentFromProto(&pb.Experiment{Id: "x", Targeting: []*pb.TargetingRule{{Attribute: "a"}}})
	if !errors.As(err, &fe) || fe.Field != "targeting[0].operator" {
		t.Errorf("unspecified operator error = %v", err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	cfg := assign.Config{Version: 9,
		Experiments: []assign.Experiment{{ID: "a", ChangeService: "s", MeasureService: "s",
			Variants: []assign.Variant{{Name: "c", Weight: 1}, {Name: "t", Weight: 1}}}},
		Layers:    []assign.Layer{{ID: "l"}},
		Overrides: []assign.Override{{Experiment: "a", Unit: "u", Variant: "t"}}}
	got, err := SnapshotFromProto(SnapshotToProto(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, got) {
		t.Errorf("snapshot round trip:\n in  %+v\n out %+v", cfg, got)
	}
}

// TestAggregateProto: every aggregate maps both ways, mean is spelled
// MEAN, UNSPECIFIED reads as mean, and an unknown value is an error
// naming metric.aggregate.
func TestAggregateProto(t *testing.T) {
	seen := map[pb.MetricAggregate]bool{}
	for a := assign.AggregateMean; a <= assign.AggregateRatio; a++ {
		x := &assign.Experiment{ID: "x", Metric: assign.Metric{Aggregate: a}}
		p := ExperimentToProto(x)
		got := p.GetMetric().GetAggregate()
		if got == pb.MetricAggregate_METRIC_AGGREGATE_UNSPECIFIED || seen[got] {
			t.Errorf("%v → %v: want a distinct specified value", a, got)
		}
		seen[got] = true
		if want := "METRIC_AGGREGATE_" + strings.ToUpper(a.String()); got.String() != want {
			t.Errorf("%v → %v, want %s", a, got, want)
		}
		back, err := ExperimentFromProto(p)
		if err != nil || back.Metric.Aggregate != a {
			t.Errorf("%v → %v → %v, %v", a, got, back.Metric.Aggregate, err)
		}
	}
	e, err := ExperimentFromProto(&pb.Experiment{Id: "x", Metric: &pb.Metric{Name: "error"}})
	if err != nil || e.Metric.Aggregate != assign.AggregateMean {
		t.Errorf("UNSPECIFIED aggregate → %v, %v; want mean", e.Metric.Aggregate, err)
	}
	_, err = ExperimentFromProto(&pb.Experiment{Id: "x", Metric: &pb.Metric{Aggregate: pb.MetricAggregate(42)}})
	var fe *assign.FieldError
	if !errors.As(err, &fe) || fe.Field != "metric.aggregate" || !errors.Is(err, assign.ErrInvalid) {
		t.Errorf("unknown aggregate error = %v, want a FieldError on metric.aggregate", err)
	}
}
