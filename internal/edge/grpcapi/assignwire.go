package grpcapi

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// Wire is a response message already in protobuf wire form. Codec sends
// its bytes as they are.
//
// Assign answers with one over gRPC: the response is encoded straight from
// the evaluation, so no AssignResponse, Assignment or headers map is built
// per call (building and marshalling them through protobuf's reflection,
// the map above all, was a fifth of abmeshd's CPU per Assign).
type Wire struct{ b []byte }

// Codec is the API server's codec: gRPC's protobuf codec, except that a
// *Wire is sent as it is. Install it with grpc.ForceServerCodecV2 on a
// server where RegisterAssignment registers the Assignment service.
func Codec() encoding.CodecV2 { return wireCodec{encoding.GetCodecV2("proto")} }

type wireCodec struct{ encoding.CodecV2 }

func (c wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	if w, ok := v.(*Wire); ok {
		return mem.BufferSlice{mem.SliceBuffer(w.b)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// RegisterAssignment registers s as abmesh.v1.AssignmentService on r, with
// Assign answering a *Wire (see Codec, which r's server must use). Every
// other part of the service — its name, Watch, the interceptors around
// each call — is the generated registration's.
func RegisterAssignment(r grpc.ServiceRegistrar, s *Assignment) {
	desc := pb.AssignmentService_ServiceDesc
	desc.Methods = append([]grpc.MethodDesc(nil), desc.Methods...)
	for i := range desc.Methods {
		if desc.Methods[i].MethodName == "Assign" {
			desc.Methods[i].Handler = assignWireHandler
		}
	}
	r.RegisterService(&desc, s)
}

// assignWireHandler is the generated Assign handler with the response in
// wire form.
func assignWireHandler(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
	in := new(pb.AssignRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*Assignment)
	if icpt == nil {
		return s.assignWire(in)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: pb.AssignmentService_Assign_FullMethodName}
	return icpt(ctx, in, info, func(_ context.Context, req any) (any, error) {
		return s.assignWire(req.(*pb.AssignRequest))
	})
}

// assignWire is Assign with the response in wire form.
func (s *Assignment) assignWire(req *pb.AssignRequest) (*Wire, error) {
	unit, err := requestUnit(req)
	if err != nil {
		return nil, err
	}
	var w Wire
	err = s.Evaluate(unit, req.GetAttributes(), assign.Filter{Service: req.GetService(), Tests: req.GetTestIds()},
		func(eng *assign.Engine, as []assign.Assignment) {
			w.b = appendAssignResponse(nil, unit, eng.Version(), as)
		})
	if err != nil {
		return nil, toStatus(err)
	}
	return &w, nil
}

// AssignResponse field numbers (proto/abmesh/v1/assignment_service.proto);
// TestAssignWireMatchesProto fails if the message gains a field these do
// not cover.
const (
	respAssignments   protowire.Number = 1
	respHeaders       protowire.Number = 2
	respConfigVersion protowire.Number = 3
	respUnitID        protowire.Number = 4

	assignmentTestID  protowire.Number = 1
	assignmentVariant protowire.Number = 2
	assignmentReason  protowire.Number = 3
	assignmentPhase   protowire.Number = 4

	mapKey   protowire.Number = 1
	mapValue protowire.Number = 2
)

// appendAssignResponse appends to b the wire form of the AssignResponse
// for as: each assignment, its routing header (x-abmesh-<test>: variant),
// the config version and the unit. Fields at their zero value are left
// out, as proto3 marshalling does.
func appendAssignResponse(b []byte, unit string, version uint64, as []assign.Assignment) []byte {
	size := 0
	for i := range as {
		n := assignmentSize(&as[i])
		size += protowire.SizeTag(respAssignments) + protowire.SizeBytes(n)
		n = headerEntrySize(&as[i])
		size += protowire.SizeTag(respHeaders) + protowire.SizeBytes(n)
	}
	size += protowire.SizeTag(respConfigVersion) + protowire.SizeVarint(version) + protowire.SizeTag(respUnitID) + protowire.SizeBytes(len(unit))
	if cap(b)-len(b) < size {
		b = append(make([]byte, 0, len(b)+size), b...)
	}
	for i := range as {
		a := &as[i]
		b = protowire.AppendTag(b, respAssignments, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(assignmentSize(a)))
		b = appendString(b, assignmentTestID, a.Test)
		b = appendString(b, assignmentVariant, a.Variant)
		if r := uint64(protoconv.ReasonToProto(a.Reason)); r != 0 {
			b = protowire.AppendTag(b, assignmentReason, protowire.VarintType)
			b = protowire.AppendVarint(b, r)
		}
		if a.Phase != 0 {
			b = protowire.AppendTag(b, assignmentPhase, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(int64(int32(a.Phase))))
		}
	}
	for i := range as {
		a := &as[i]
		b = protowire.AppendTag(b, respHeaders, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(headerEntrySize(a)))
		// The key is assign.HeaderName(a.Test), appended without building it.
		b = protowire.AppendTag(b, mapKey, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(len(assign.HeaderPrefix)+len(a.Test)))
		b = append(append(b, assign.HeaderPrefix...), a.Test...)
		b = protowire.AppendTag(b, mapValue, protowire.BytesType)
		b = protowire.AppendString(b, a.Variant)
	}
	if version != 0 {
		b = protowire.AppendTag(b, respConfigVersion, protowire.VarintType)
		b = protowire.AppendVarint(b, version)
	}
	return appendString(b, respUnitID, unit)
}

// assignmentSize is the encoded size of a's Assignment message.
func assignmentSize(a *assign.Assignment) int {
	n := stringSize(assignmentTestID, a.Test) + stringSize(assignmentVariant, a.Variant)
	if r := uint64(protoconv.ReasonToProto(a.Reason)); r != 0 {
		n += protowire.SizeTag(assignmentReason) + protowire.SizeVarint(r)
	}
	if a.Phase != 0 {
		n += protowire.SizeTag(assignmentPhase) + protowire.SizeVarint(uint64(int64(int32(a.Phase))))
	}
	return n
}

// headerEntrySize is the encoded size of a's headers map entry (key and
// value are always written, as protobuf does for map entries).
func headerEntrySize(a *assign.Assignment) int {
	return protowire.SizeTag(mapKey) + protowire.SizeBytes(len(assign.HeaderPrefix)+len(a.Test)) +
		protowire.SizeTag(mapValue) + protowire.SizeBytes(len(a.Variant))
}

func stringSize(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}
