// Package convert maps between the abmesh.v1 protobuf messages and the
// domain types of assign. It is the only place that knows both; the domain
// packages never import proto types.
package protoconv

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/abmesh/abmesh/assign"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

var statusToProto = map[assign.Status]pb.ExperimentStatus{
	assign.StatusDraft:     pb.ExperimentStatus_EXPERIMENT_STATUS_DRAFT,
	assign.StatusRunning:   pb.ExperimentStatus_EXPERIMENT_STATUS_RUNNING,
	assign.StatusPaused:    pb.ExperimentStatus_EXPERIMENT_STATUS_PAUSED,
	assign.StatusConcluded: pb.ExperimentStatus_EXPERIMENT_STATUS_CONCLUDED,
}

// StatusToProto maps a lifecycle status.
func StatusToProto(s assign.Status) pb.ExperimentStatus { return statusToProto[s] }

// StatusFromProto maps a lifecycle status; UNSPECIFIED is DRAFT.
func StatusFromProto(s pb.ExperimentStatus) assign.Status {
	for d, p := range statusToProto {
		if p == s {
			return d
		}
	}
	return assign.StatusDraft
}

var reasonToProto = map[assign.Reason]pb.AssignmentReason{
	assign.ReasonHash:        pb.AssignmentReason_ASSIGNMENT_REASON_HASH,
	assign.ReasonSticky:      pb.AssignmentReason_ASSIGNMENT_REASON_STICKY,
	assign.ReasonOverride:    pb.AssignmentReason_ASSIGNMENT_REASON_OVERRIDE,
	assign.ReasonWinner:      pb.AssignmentReason_ASSIGNMENT_REASON_WINNER,
	assign.ReasonPaused:      pb.AssignmentReason_ASSIGNMENT_REASON_PAUSED,
	assign.ReasonNotTargeted: pb.AssignmentReason_ASSIGNMENT_REASON_NOT_TARGETED,
	assign.ReasonNotInSlice:  pb.AssignmentReason_ASSIGNMENT_REASON_NOT_IN_SLICE,
	assign.ReasonFallback:    pb.AssignmentReason_ASSIGNMENT_REASON_FALLBACK,
}

// ReasonToProto maps an assignment reason.
func ReasonToProto(r assign.Reason) pb.AssignmentReason { return reasonToProto[r] }

// ReasonFromProto maps an assignment reason; UNSPECIFIED is FALLBACK.
func ReasonFromProto(r pb.AssignmentReason) assign.Reason {
	for d, p := range reasonToProto {
		if p == r {
			return d
		}
	}
	return assign.ReasonFallback
}

var opToProto = map[assign.Op]pb.TargetingOperator{
	assign.OpEq:    pb.TargetingOperator_TARGETING_OPERATOR_EQ,
	assign.OpIn:    pb.TargetingOperator_TARGETING_OPERATOR_IN,
	assign.OpNotIn: pb.TargetingOperator_TARGETING_OPERATOR_NOT_IN,
}

var aggregateToProto = map[assign.Aggregate]pb.MetricAggregate{
	assign.AggregateMean:  pb.MetricAggregate_METRIC_AGGREGATE_MEAN,
	assign.AggregateSum:   pb.MetricAggregate_METRIC_AGGREGATE_SUM,
	assign.AggregateAny:   pb.MetricAggregate_METRIC_AGGREGATE_ANY,
	assign.AggregateCount: pb.MetricAggregate_METRIC_AGGREGATE_COUNT,
	assign.AggregateRatio: pb.MetricAggregate_METRIC_AGGREGATE_RATIO,
}

// AggregateToProto maps a per-unit aggregate; the default, mean, is
// spelled MEAN (never UNSPECIFIED), so that what is shown says it.
func AggregateToProto(a assign.Aggregate) pb.MetricAggregate { return aggregateToProto[a] }

// AggregateFromProto maps a per-unit aggregate; UNSPECIFIED is mean. An
// unknown value (a newer client's, or a number sent raw) is a
// *assign.FieldError naming "metric.aggregate".
func AggregateFromProto(p pb.MetricAggregate) (assign.Aggregate, error) {
	if p == pb.MetricAggregate_METRIC_AGGREGATE_UNSPECIFIED {
		return assign.AggregateMean, nil
	}
	for d, x := range aggregateToProto {
		if x == p {
			return d, nil
		}
	}
	return 0, &assign.FieldError{Field: "metric.aggregate", Msg: fmt.Sprintf("unknown aggregate %d (want MEAN, SUM, ANY, COUNT or RATIO)", int32(p))}
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func tm(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func interferenceToProto(in []assign.Interference) []*pb.Interference {
	out := make([]*pb.Interference, len(in))
	for i, x := range in {
		out[i] = &pb.Interference{Kind: x.Kind, Scope: x.Scope}
	}
	return out
}

func interferenceFromProto(in []*pb.Interference) []assign.Interference {
	if len(in) == 0 {
		return nil
	}
	out := make([]assign.Interference, len(in))
	for i, x := range in {
		out[i] = assign.Interference{Kind: x.GetKind(), Scope: x.GetScope()}
	}
	return out
}

func metricToProto(m assign.Metric) *pb.Metric {
	out := &pb.Metric{Name: m.String(), Direction: pb.MetricDirection_METRIC_DIRECTION_LOWER_IS_BETTER,
		Aggregate: AggregateToProto(m.Aggregate)}
	if m.HigherIsBetter {
		out.Direction = pb.MetricDirection_METRIC_DIRECTION_HIGHER_IS_BETTER
	}
	return out
}

// ExperimentToProto maps a domain experiment to its API message.
func ExperimentToProto(e *assign.Experiment) *pb.Experiment {
	out := &pb.Experiment{
		Id:             e.ID,
		Owner:          e.Owner,
		Description:    e.Description,
		ChangeService:  e.ChangeService,
		MeasureService: e.MeasureService,
		Metric:         metricToProto(e.Metric),
		Layer:          e.Layer,
		Sticky:         e.Sticky,
		Salt:           e.Salt,
		Emits:          interferenceToProto(e.Emits),
		Susceptible:    interferenceToProto(e.Susceptible),
		Plan: &pb.AnalysisPlan{
			Alpha: e.Plan.Alpha, Power: e.Plan.Power,
			MinimumDetectableEffect: e.Plan.MDE, StandardDeviation: e.Plan.SD,
			Interactions: plannedToProto(e.Plan.Interactions),
		},
		Status:     StatusToProto(e.Status),
		Winner:     e.Winner,
		Phase:      int32(e.Phase),
		CreateTime: ts(e.CreatedAt),
		UpdateTime: ts(e.UpdatedAt),
	}
	for _, v := range e.Variants {
		out.Variants = append(out.Variants, &pb.Variant{Name: v.Name, Weight: v.Weight})
	}
	if e.Layer != "" {
		out.Slice = &pb.Slice{Start: e.Slice.Start, End: e.Slice.End}
	}
	for _, r := range e.Targeting {
		out.Targeting = append(out.Targeting, &pb.TargetingRule{Attribute: r.Attribute, Operator: opToProto[r.Op], Values: append([]string(nil), r.Values...)})
	}
	for _, p := range e.Phases {
		out.Phases = append(out.Phases, &pb.Phase{Number: int32(p.Number), Weights: append([]uint32(nil), p.Weights...), StartedAt: ts(p.StartedAt)})
	}
	return out
}

// ExperimentFromProto maps an API experiment to the domain type. It fails
// only on values the domain cannot represent (an unknown metric name,
// direction, aggregate or targeting operator), naming the field;
// everything else is left to assign's validation.
func ExperimentFromProto(p *pb.Experiment) (assign.Experiment, error) {
	e := assign.Experiment{
		ID:             p.GetId(),
		Owner:          p.GetOwner(),
		Description:    p.GetDescription(),
		ChangeService:  p.GetChangeService(),
		MeasureService: p.GetMeasureService(),
		Layer:          p.GetLayer(),
		Sticky:         p.GetSticky(),
		Salt:           p.GetSalt(),
		Emits:          interferenceFromProto(p.GetEmits()),
		Susceptible:    interferenceFromProto(p.GetSusceptible()),
		Plan: assign.Plan{
			Alpha: p.GetPlan().GetAlpha(), Power: p.GetPlan().GetPower(),
			MDE: p.GetPlan().GetMinimumDetectableEffect(), SD: p.GetPlan().GetStandardDeviation(),
			Interactions: plannedFromProto(p.GetPlan().GetInteractions()),
		},
		Status:    StatusFromProto(p.GetStatus()),
		Winner:    p.GetWinner(),
		Phase:     int(p.GetPhase()),
		CreatedAt: tm(p.GetCreateTime()),
		UpdatedAt: tm(p.GetUpdateTime()),
	}
	var m assign.Metric // an unset name is the zero Metric, latency_ms
	if name := p.GetMetric().GetName(); name != "" {
		var err error
		if m, err = assign.ParseMetric(name); err != nil {
			return e, &assign.FieldError{Field: "metric.name", Msg: err.Error()}
		}
	}
	switch d := p.GetMetric().GetDirection(); d {
	case pb.MetricDirection_METRIC_DIRECTION_HIGHER_IS_BETTER:
		m.HigherIsBetter = true
	case pb.MetricDirection_METRIC_DIRECTION_UNSPECIFIED, pb.MetricDirection_METRIC_DIRECTION_LOWER_IS_BETTER:
	default:
		return e, &assign.FieldError{Field: "metric.direction", Msg: fmt.Sprintf("unknown direction %d (want HIGHER_IS_BETTER or LOWER_IS_BETTER)", int32(d))}
	}
	agg, err := AggregateFromProto(p.GetMetric().GetAggregate())
	if err != nil {
		return e, err
	}
	m.Aggregate = agg
	e.Metric = m
	for _, v := range p.GetVariants() {
		e.Variants = append(e.Variants, assign.Variant{Name: v.GetName(), Weight: v.GetWeight()})
	}
	if s := p.GetSlice(); s != nil {
		e.Slice = assign.Slice{Start: s.GetStart(), End: s.GetEnd()}
	}
	for i, r := range p.GetTargeting() {
		var op assign.Op
		found := false
		for d, o := range opToProto {
			if o == r.GetOperator() {
				op, found = d, true
			}
		}
		if !found {
			return e, &assign.FieldError{Field: fmt.Sprintf("targeting[%d].operator", i), Msg: "want eq, in or not_in"}
		}
		e.Targeting = append(e.Targeting, assign.Rule{Attribute: r.GetAttribute(), Op: op, Values: append([]string(nil), r.GetValues()...)})
	}
	for _, ph := range p.GetPhases() {
		e.Phases = append(e.Phases, assign.Phase{Number: int(ph.GetNumber()), Weights: append([]uint32(nil), ph.GetWeights()...), StartedAt: tm(ph.GetStartedAt())})
	}
	return e, nil
}

// LayerToProto maps a layer.
func LayerToProto(l *assign.Layer) *pb.Layer {
	return &pb.Layer{Id: l.ID, Description: l.Description, CreateTime: ts(l.CreatedAt)}
}

// LayerFromProto maps a layer.
func LayerFromProto(p *pb.Layer) assign.Layer {
	return assign.Layer{ID: p.GetId(), Description: p.GetDescription(), CreatedAt: tm(p.GetCreateTime())}
}

// OverrideToProto maps an override.
func OverrideToProto(o assign.Override) *pb.Override {
	return &pb.Override{ExperimentId: o.Experiment, UnitId: o.Unit, Variant: o.Variant}
}

// OverrideFromProto maps an override.
func OverrideFromProto(p *pb.Override) assign.Override {
	return assign.Override{Experiment: p.GetExperimentId(), Unit: p.GetUnitId(), Variant: p.GetVariant()}
}

// SnapshotToProto maps a whole assignment config to the Watch message.
func SnapshotToProto(c assign.Config) *pb.ConfigSnapshot {
	out := &pb.ConfigSnapshot{Version: c.Version}
	for i := range c.Experiments {
		out.Experiments = append(out.Experiments, ExperimentToProto(&c.Experiments[i]))
	}
	for i := range c.Layers {
		out.Layers = append(out.Layers, LayerToProto(&c.Layers[i]))
	}
	for _, o := range c.Overrides {
		out.Overrides = append(out.Overrides, OverrideToProto(o))
	}
	return out
}

// SnapshotFromProto maps a Watch message back to a config (what an SDK
// compiles to evaluate locally). Errors name the experiment's field.
func SnapshotFromProto(p *pb.ConfigSnapshot) (assign.Config, error) {
	c := assign.Config{Version: p.GetVersion()}
	for i, x := range p.GetExperiments() {
		e, err := ExperimentFromProto(x)
		if err != nil {
			return c, fmt.Errorf("experiments[%d]: %w", i, err)
		}
		c.Experiments = append(c.Experiments, e)
	}
	for _, l := range p.GetLayers() {
		c.Layers = append(c.Layers, LayerFromProto(l))
	}
	for _, o := range p.GetOverrides() {
		c.Overrides = append(c.Overrides, OverrideFromProto(o))
	}
	return c, nil
}

func plannedToProto(in []assign.PlannedInteraction) []*pb.PlannedInteraction {
	var out []*pb.PlannedInteraction
	for _, x := range in {
		out = append(out, &pb.PlannedInteraction{With: x.With, MinimumDetectableEffect: x.MDE})
	}
	return out
}

func plannedFromProto(in []*pb.PlannedInteraction) []assign.PlannedInteraction {
	var out []assign.PlannedInteraction
	for _, x := range in {
		out = append(out, assign.PlannedInteraction{With: x.GetWith(), MDE: x.GetMinimumDetectableEffect()})
	}
	return out
}
