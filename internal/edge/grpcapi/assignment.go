package grpcapi

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// ConfigSource is the live assignment configuration (an *assign.Registry).
type ConfigSource interface {
	// Snapshot returns the current configuration; never nil.
	Snapshot() *assign.Engine
	// Subscribe returns a channel that first receives the current Engine,
	// then the latest one after every change (coalesced); it is closed when
	// ctx is done.
	Subscribe(ctx context.Context) <-chan *assign.Engine
}

// Assignment implements abmesh.v1.AssignmentService.
type Assignment struct {
	pb.UnimplementedAssignmentServiceServer
	src ConfigSource
	// life ends open Watch streams when the server shuts down (a graceful
	// stop waits for streams, and Watch never ends by itself).
	life context.Context
	// pool of result slices, so Assign allocates nothing per test beyond
	// the response itself.
	pool sync.Pool
}

var _ pb.AssignmentServiceServer = (*Assignment)(nil)

// NewAssignment returns the service over src. Watch streams end when life
// is done.
func NewAssignment(life context.Context, src ConfigSource) *Assignment {
	return &Assignment{src: src, life: life, pool: sync.Pool{New: func() any { s := make([]assign.Assignment, 0, 16); return &s }}}
}

// Assign implements AssignmentService.Assign for in-process callers. Over
// gRPC (RegisterAssignment) the same response goes out in wire form
// without ever being built as a message; Assign decodes that form, so
// both answer exactly the same.
func (s *Assignment) Assign(_ context.Context, req *pb.AssignRequest) (*pb.AssignResponse, error) {
	w, err := s.assignWire(req)
	if err != nil {
		return nil, err
	}
	resp := new(pb.AssignResponse)
	if err := proto.Unmarshal(w.b, resp); err != nil {
		return nil, status.Errorf(codes.Internal, "encoding the response: %v", err)
	}
	return resp, nil
}

// requestUnit is the request's unit: unit_id, or a fresh one when
// mint_unit asks for it.
func requestUnit(req *pb.AssignRequest) (string, error) {
	if !req.GetMintUnit() {
		return req.GetUnitId(), nil
	}
	if req.GetUnitId() != "" {
		return "", invalid("unit_id", "must be empty when mint_unit is set")
	}
	return assign.MintUnit(), nil
}

// Evaluate is Assign without the transport: it validates the unit, the
// attributes and the filter as Assign does, assigns unit in the current
// configuration and hands use the Engine it evaluated with and the
// assignments. as is pooled: it is valid only during use, which must not
// keep it. The error is the domain's (a *assign.FieldError wrapping
// assign.ErrInvalid); use is not called then. Every transport that
// assigns (gRPC Assign, forward-auth at the edge) goes through here.
func (s *Assignment) Evaluate(unit string, attrs map[string]string, f assign.Filter, use func(eng *assign.Engine, as []assign.Assignment)) error {
	if err := assign.ValidateUnit(unit); err != nil {
		return err
	}
	if err := assign.ValidateAttributes(attrs); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	eng := s.src.Snapshot()
	bufp := s.pool.Get().(*[]assign.Assignment)
	as := eng.AppendAssignments((*bufp)[:0], unit, attrs, f)
	use(eng, as)
	clear(as) // drop the strings' references before pooling
	*bufp = as
	s.pool.Put(bufp)
	return nil
}

// Watch implements AssignmentService.Watch: the whole config now, then on
// every change until the client goes away or the server stops.
func (s *Assignment) Watch(req *pb.WatchRequest, stream pb.AssignmentService_WatchServer) error {
	if err := (assign.Filter{Service: req.GetService()}).Validate(); err != nil {
		return toStatus(err)
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	defer context.AfterFunc(s.life, cancel)()
	sent, first := uint64(0), true
	for eng := range s.src.Subscribe(ctx) {
		if !first && eng.Version() == sent {
			continue
		}
		if err := stream.Send(protoconv.SnapshotToProto(eng.Config())); err != nil {
			return err
		}
		sent, first = eng.Version(), false
	}
	if s.life.Err() != nil {
		return status.Error(codes.Unavailable, "abmeshd is shutting down")
	}
	return status.FromContextError(ctx.Err()).Err()
}
