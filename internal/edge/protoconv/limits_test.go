package protoconv

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/abmesh/abmesh/assign"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// TestMetricDirectionProto: both directions map, UNSPECIFIED reads as
// lower is better, an unknown value is an error naming metric.direction.
func TestMetricDirectionProto(t *testing.T) {
	for d, higher := range map[pb.MetricDirection]bool{
		pb.MetricDirection_METRIC_DIRECTION_UNSPECIFIED:      false,
		pb.MetricDirection_METRIC_DIRECTION_LOWER_IS_BETTER:  false,
		pb.MetricDirection_METRIC_DIRECTION_HIGHER_IS_BETTER: true,
	} {
		e, err := ExperimentFromProto(&pb.Experiment{Id: "x", Metric: &pb.Metric{Direction: d}})
		if err != nil || e.Metric.HigherIsBetter != higher {
			t.Errorf("%v → higher %v, %v; want %v", d, e.Metric.HigherIsBetter, err, higher)
		}
	}
	_, err := ExperimentFromProto(&pb.Experiment{Id: "x", Metric: &pb.Metric{Direction: 99}})
	var fe *assign.FieldError
	if !errors.As(err, &fe) || fe.Field != "metric.direction" || !strings.Contains(fe.Msg, "99") {
		t.Errorf("direction 99: %v, want a field error on metric.direction", err)
	}
}

// TestEncodedSizeBoundsProto checks that assign's Config.EncodedSize is an
// upper bound of the ConfigSnapshot's protobuf size (so a configuration
// under assign.MaxConfigBytes encodes under it), and a close one.
func TestEncodedSizeBoundsProto(t *testing.T) {
	at := time.Date(2026, 5, 1, 0, 0, 0, 123, time.UTC)
	full := func(i int) assign.Experiment {
		x := assign.Experiment{
			ID: fmt.Sprintf("exp-%d", i), Owner: "team-é", Description: strings.Repeat("d", 300*i),
			ChangeService: "svc", MeasureService: "frontend", Layer: "l", Slice: assign.Slice{Start: 0, End: 10000},
			Metric:    assign.Metric{Kind: assign.MetricAttribute, Attribute: "shop.order.value", HigherIsBetter: true, Aggregate: assign.AggregateRatio},
			Targeting: []assign.Rule{{Attribute: "country", Op: assign.OpNotIn, Values: []string{"xx", strings.Repeat("y", 200)}}},
			Sticky:    true, Salt: "salt",
			Emits:       []assign.Interference{{Kind: "latency", Scope: "change_downstream"}},
			Susceptible: []assign.Interference{{Kind: "user_experience", Scope: "measure"}},
			Plan:        assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 1.5, SD: 3},
			Status:      assign.StatusConcluded, Winner: "v1", Phase: 2,
			Phases:    []assign.Phase{{Number: 1, Weights: []uint32{1, 1}, StartedAt: at}, {Number: 2, Weights: []uint32{4000000000, 7}, StartedAt: at}},
			CreatedAt: at, UpdatedAt: at,
		}
		for v := range 1 + i*20 {
			x.Variants = append(x.Variants, assign.Variant{Name: fmt.Sprintf("v%d", v), Weight: uint32(v * 1000)})
		}
		return x
	}
	configs := map[string]assign.Config{
		"empty":   {},
		"minimal": {Experiments: []assign.Experiment{{ID: "a", ChangeService: "s", MeasureService: "s"}}},
		"full": {Version: 1 << 40, Layers: []assign.Layer{{ID: "l", Description: "layer", CreatedAt: at}, {ID: "m"}},
			Experiments: []assign.Experiment{full(0), full(1), full(4)},
			Overrides:   []assign.Override{{Experiment: "exp-1", Unit: strings.Repeat("u", 256), Variant: "v1"}}},
	}
	for name, cfg := range configs {
		est, wire := cfg.EncodedSize(), proto.Size(SnapshotToProto(cfg))
		t.Logf("%s: EncodedSize %d, protobuf %d", name, est, wire)
		if est < wire || est > wire+wire/5+64 {
			t.Errorf("%s: EncodedSize %d, protobuf %d: want an upper bound within 20%%", name, est, wire)
		}
	}
}
