package flagd

import (
	"context"

	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
	evalv2 "github.com/abmesh/abmesh/proto/flagd/evaluation/v2"
)

// V2 serves flagd.evaluation.v2.Service, which recent flagd providers
// speak, with s: the same evaluations, errors and events as version 1,
// in version 2's messages (values and variants with explicit presence, so
// a false ResolveBoolean value is sent rather than left out).
type V2 struct {
	evalv2.UnimplementedServiceServer
	s *Service
}

var _ evalv2.ServiceServer = V2{}

// NewV2 returns the version 2 service over s.
func NewV2(s *Service) V2 { return V2{s: s} }

// ResolveString is Service.ResolveString in version 2's messages.
func (v V2) ResolveString(ctx context.Context, req *evalv2.ResolveStringRequest) (*evalv2.ResolveStringResponse, error) {
	r, err := v.s.ResolveString(ctx, &evalpb.ResolveStringRequest{FlagKey: req.GetFlagKey(), Context: req.GetContext()})
	if err != nil {
		return nil, err
	}
	return &evalv2.ResolveStringResponse{Value: &r.Value, Reason: r.Reason, Variant: &r.Variant, Metadata: r.Metadata}, nil
}

// ResolveBoolean is Service.ResolveBoolean in version 2's messages.
func (v V2) ResolveBoolean(ctx context.Context, req *evalv2.ResolveBooleanRequest) (*evalv2.ResolveBooleanResponse, error) {
	r, err := v.s.ResolveBoolean(ctx, &evalpb.ResolveBooleanRequest{FlagKey: req.GetFlagKey(), Context: req.GetContext()})
	if err != nil {
		return nil, err
	}
	return &evalv2.ResolveBooleanResponse{Value: &r.Value, Reason: r.Reason, Variant: &r.Variant, Metadata: r.Metadata}, nil
}

// ResolveFloat is Service.ResolveFloat: TYPE_MISMATCH or FLAG_NOT_FOUND.
func (v V2) ResolveFloat(ctx context.Context, req *evalv2.ResolveFloatRequest) (*evalv2.ResolveFloatResponse, error) {
	_, err := v.s.ResolveFloat(ctx, &evalpb.ResolveFloatRequest{FlagKey: req.GetFlagKey(), Context: req.GetContext()})
	return nil, err
}

// ResolveInt is Service.ResolveInt: TYPE_MISMATCH or FLAG_NOT_FOUND.
func (v V2) ResolveInt(ctx context.Context, req *evalv2.ResolveIntRequest) (*evalv2.ResolveIntResponse, error) {
	_, err := v.s.ResolveInt(ctx, &evalpb.ResolveIntRequest{FlagKey: req.GetFlagKey(), Context: req.GetContext()})
	return nil, err
}

// ResolveObject is Service.ResolveObject: TYPE_MISMATCH or FLAG_NOT_FOUND.
func (v V2) ResolveObject(ctx context.Context, req *evalv2.ResolveObjectRequest) (*evalv2.ResolveObjectResponse, error) {
	_, err := v.s.ResolveObject(ctx, &evalpb.ResolveObjectRequest{FlagKey: req.GetFlagKey(), Context: req.GetContext()})
	return nil, err
}

// ResolveAll is Service.ResolveAll in version 2's messages.
func (v V2) ResolveAll(ctx context.Context, req *evalv2.ResolveAllRequest) (*evalv2.ResolveAllResponse, error) {
	r, err := v.s.ResolveAll(ctx, &evalpb.ResolveAllRequest{Context: req.GetContext()})
	if err != nil {
		return nil, err
	}
	out := &evalv2.ResolveAllResponse{Flags: make(map[string]*evalv2.AnyFlag, len(r.Flags)), Metadata: r.Metadata}
	for k, f := range r.Flags {
		g := &evalv2.AnyFlag{Reason: f.Reason, Variant: &f.Variant, Metadata: f.Metadata}
		switch x := f.Value.(type) {
		case *evalpb.AnyFlag_BoolValue:
			g.Value = &evalv2.AnyFlag_BoolValue{BoolValue: x.BoolValue}
		case *evalpb.AnyFlag_StringValue:
			g.Value = &evalv2.AnyFlag_StringValue{StringValue: x.StringValue}
		}
		out.Flags[k] = g
	}
	return out, nil
}

// EventStream is Service.EventStream in version 2's messages.
func (v V2) EventStream(_ *evalv2.EventStreamRequest, stream evalv2.Service_EventStreamServer) error {
	return v.s.events(stream.Context(), func(ev *evalpb.EventStreamResponse) error {
		return stream.Send(v2Event(ev))
	})
}

func v2Event(ev *evalpb.EventStreamResponse) *evalv2.EventStreamResponse {
	return &evalv2.EventStreamResponse{Type: ev.Type, Data: ev.Data}
}
