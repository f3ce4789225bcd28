package grpcapi

import (
	"context"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// Experiments implements abmesh.v1.ExperimentService over an
// *assign.Registry. Every method validates its input; errors are mapped by
// toStatus, with field paths prefixed by the request field. Every
// mutating method passes the call's actor (withActor) to the Registry,
// which records the change in its audit log (ListChanges).
type Experiments struct {
	pb.UnimplementedExperimentServiceServer
	reg *assign.Registry
}

var _ pb.ExperimentServiceServer = (*Experiments)(nil)

// NewExperiments returns the service over reg.
func NewExperiments(reg *assign.Registry) *Experiments { return &Experiments{reg: reg} }

func (s *Experiments) experimentArg(p *pb.Experiment) (*assign.Experiment, error) {
	if p == nil {
		return nil, invalid("experiment", "is required")
	}
	e, err := protoconv.ExperimentFromProto(p)
	if err != nil {
		return nil, toStatus(prefixed("experiment.", err))
	}
	return &e, nil
}

func idArg(field, id string) error {
	if id == "" {
		return invalid(field, "is required")
	}
	if !assign.ValidID(id) {
		return invalid(field, "%q is not a valid id (lowercase letters, digits and '-', at most 63)", clip(id))
	}
	return nil
}

func expResp(x *assign.Experiment, err error) (*pb.Experiment, error) {
	if err != nil {
		return nil, toStatus(prefixed("experiment.", err))
	}
	return protoconv.ExperimentToProto(x), nil
}

// CreateExperiment registers a DRAFT experiment.
func (s *Experiments) CreateExperiment(ctx context.Context, req *pb.CreateExperimentRequest) (*pb.CreateExperimentResponse, error) {
	ctx, err := withActor(ctx)
	if err != nil {
		return nil, err
	}
	e, err := s.experimentArg(req.GetExperiment())
	if err != nil {
		return nil, err
	}
	x, err := expResp(s.reg.Create(ctx, e))
	if err != nil {
		return nil, err
	}
	return &pb.CreateExperimentResponse{Experiment: x}, nil
}

// GetExperiment returns one experiment.
func (s *Experiments) GetExperiment(_ context.Context, req *pb.GetExperimentRequest) (*pb.GetExperimentResponse, error) {
	if err := idArg("id", req.GetId()); err != nil {
		return nil, err
	}
	x, err := s.reg.Experiment(req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetExperimentResponse{Experiment: protoconv.ExperimentToProto(x)}, nil
}

// ListExperiments returns every experiment, sorted by id.
func (s *Experiments) ListExperiments(context.Context, *pb.ListExperimentsRequest) (*pb.ListExperimentsResponse, error) {
	resp := &pb.ListExperimentsResponse{}
	for _, x := range s.reg.Experiments() {
		resp.Experiments = append(resp.Experiments, protoconv.ExperimentToProto(x))
	}
	return resp, nil
}

// UpdateExperiment replaces an experiment's definition.
func (s *Experiments) UpdateExperiment(ctx context.Context, req *pb.UpdateExperimentRequest) (*pb.UpdateExperimentResponse, error) {
	ctx, err := withActor(ctx)
	if err != nil {
		return nil, err
	}
	e, err := s.experimentArg(req.GetExperiment())
	if err != nil {
		return nil, err
	}
	x, err := expResp(s.reg.Update(ctx, e))
	if err != nil {
		return nil, err
	}
	return &pb.UpdateExperimentResponse{Experiment: x}, nil
}

// DeleteExperiment deletes an experiment and its overrides.
func (s *Experiments) DeleteExperiment(ctx context.Context, req *pb.DeleteExperimentRequest) (*pb.DeleteExperimentResponse, error) {
	ctx, err := withActor(ctx)
	if err != nil {
		return nil, err
	}
	if err := idArg("id", req.GetId()); err != nil {
		return nil, err
	}
	if err := s.reg.Delete(ctx, req.GetId()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeleteExperimentResponse{}, nil
}

// StartExperiment moves a DRAFT or PAUSED experiment to RUNNING.
func (s *Experiments) StartExperiment(ctx context.Context, req *pb.StartExperimentRequest) (*pb.StartExperimentResponse, error) {
	ctx, err := withActor(ctx)
	if err != nil {
		return nil, err
	}
	if err := idArg("id", req.GetId()); err != nil {
		return nil, err
	}
	x, err := s.reg.Start(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.StartExperimentResponse{Experiment: protoconv.ExperimentToProto(x)}, nil
}

// PauseExperiment moves a RUNNING experiment to PAUSED.
func (s *Experiments) PauseExperiment(ctx context.Context, req *pb.PauseExperimentRequest) (*pb.PauseExperimentResponse, error) {
	ctx, err := withActor(ctx)
	if err != nil {
		return nil, err
	}
	if err := idArg("id", req.GetId()); err != nil {
		return nil, err
	}
	x, err := s.reg.Pause(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.PauseExperimentResponse{Experiment: protoconv.ExperimentToProto(x)}, nil
}

// ConcludeExperiment concludes an experiment with a winner.
func (s *Experiments) ConcludeExperiment(ctx context.Context, req *pb.ConcludeExperimentRequest) (*pb.ConcludeExperimentResponse, error) {
	ctx, err := withActor(ctx)
	if err != nil {
		return nil, err
	}
	if err := idArg("id", req.GetId()); err != nil {
		return nil, err
	}
	if req.GetWinner() == "" {
		return nil, invalid("winner", "is required")
	}
	x, err := s.reg.Conclude(ctx, req.GetId(), req.GetWinner())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.ConcludeExperimentResponse{Experiment: protoconv.ExperimentToProto(x)}, nil
}

// SetOverride pins a unit to a variant.
func (s *Experiments) SetOverride(ctx context.Context, req *pb.SetOverrideRequest) (*pb.SetOverrideResponse, error) {
	ctx, err := withActor(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetOverride() == nil {
		return nil, invalid("override", "is required")
	}
	if err := s.reg.SetOverride(ctx, protoconv.OverrideFromProto(req.GetOverride())); err != nil {
		return nil, toStatus(prefixed("override.", err))
	}
	return &pb.SetOverrideResponse{}, nil
}

// DeleteOverride removes a unit's override.
func (s *Experiments) DeleteOverride(ctx context.Context, req *pb.DeleteOverrideRequest) (*pb.DeleteOverrideResponse, error) {
	ctx, err := withActor(ctx)
	if err != nil {
		return nil, err
	}
	if err := idArg("experiment_id", req.GetExperimentId()); err != nil {
		return nil, err
	}
	if err := assign.ValidateUnit(req.GetUnitId()); err != nil {
		return nil, toStatus(err)
	}
	if err := s.reg.DeleteOverride(ctx, req.GetExperimentId(), req.GetUnitId()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeleteOverrideResponse{}, nil
}

// ListOverrides lists overrides, of one experiment or all.
func (s *Experiments) ListOverrides(_ context.Context, req *pb.ListOverridesRequest) (*pb.ListOverridesResponse, error) {
	if id := req.GetExperimentId(); id != "" {
		if err := idArg("experiment_id", id); err != nil {
			return nil, err
		}
	}
	ovs, err := s.reg.Overrides(req.GetExperimentId())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &pb.ListOverridesResponse{}
	for _, o := range ovs {
		resp.Overrides = append(resp.Overrides, protoconv.OverrideToProto(o))
	}
	return resp, nil
}

// CreateLayer registers a layer.
func (s *Experiments) CreateLayer(ctx context.Context, req *pb.CreateLayerRequest) (*pb.CreateLayerResponse, error) {
	ctx, err := withActor(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetLayer() == nil {
		return nil, invalid("layer", "is required")
	}
	l := protoconv.LayerFromProto(req.GetLayer())
	out, err := s.reg.CreateLayer(ctx, &l)
	if err != nil {
		return nil, toStatus(prefixed("layer.", err))
	}
	return &pb.CreateLayerResponse{Layer: protoconv.LayerToProto(out)}, nil
}

// GetLayer returns one layer.
func (s *Experiments) GetLayer(_ context.Context, req *pb.GetLayerRequest) (*pb.GetLayerResponse, error) {
	if err := idArg("id", req.GetId()); err != nil {
		return nil, err
	}
	l, err := s.reg.Layer(req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetLayerResponse{Layer: protoconv.LayerToProto(l)}, nil
}

// ListLayers returns every layer.
func (s *Experiments) ListLayers(context.Context, *pb.ListLayersRequest) (*pb.ListLayersResponse, error) {
	resp := &pb.ListLayersResponse{}
	for _, l := range s.reg.Layers() {
		resp.Layers = append(resp.Layers, protoconv.LayerToProto(&l))
	}
	return resp, nil
}

// UpdateLayer replaces a layer's description.
func (s *Experiments) UpdateLayer(ctx context.Context, req *pb.UpdateLayerRequest) (*pb.UpdateLayerResponse, error) {
	ctx, err := withActor(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetLayer() == nil {
		return nil, invalid("layer", "is required")
	}
	l := protoconv.LayerFromProto(req.GetLayer())
	out, err := s.reg.UpdateLayer(ctx, &l)
	if err != nil {
		return nil, toStatus(prefixed("layer.", err))
	}
	return &pb.UpdateLayerResponse{Layer: protoconv.LayerToProto(out)}, nil
}

// DeleteLayer deletes a layer no experiment uses.
func (s *Experiments) DeleteLayer(ctx context.Context, req *pb.DeleteLayerRequest) (*pb.DeleteLayerResponse, error) {
	ctx, err := withActor(ctx)
	if err != nil {
		return nil, err
	}
	if err := idArg("id", req.GetId()); err != nil {
		return nil, err
	}
	if err := s.reg.DeleteLayer(ctx, req.GetId()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.DeleteLayerResponse{}, nil
}
