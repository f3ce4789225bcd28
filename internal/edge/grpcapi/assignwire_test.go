package grpcapi

import (
	"context"
	"fmt"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// wantResponse is the AssignResponse for as, built as a message the way
// the generated types mean it: the reference the wire encoder must match.
func wantResponse(unit string, version uint64, as []assign.Assignment) *pb.AssignResponse {
	resp := &pb.AssignResponse{Headers: map[string]string{}, ConfigVersion: version, UnitId: unit}
	for _, a := range as {
		resp.Assignments = append(resp.Assignments, &pb.Assignment{TestId: a.Test, Variant: a.Variant,
			Reason: protoconv.ReasonToProto(a.Reason), Phase: int32(a.Phase)})
		resp.Headers[assign.HeaderName(a.Test)] = a.Variant
	}
	return resp
}

// TestAssignWireMatchesProto: the hand-encoded response decodes to the
// message protobuf would have sent, byte count included, over every
// reason, phases needing one to five varint bytes, empty and non-ASCII
// strings, long names and no assignment at all.
func TestAssignWireMatchesProto(t *testing.T) {
	long := string(make([]byte, 300))
	cases := map[string][]assign.Assignment{
		"none": nil,
		"every reason": func() []assign.Assignment {
			var as []assign.Assignment
			for r := assign.ReasonHash; r <= assign.ReasonFallback; r++ {
				as = append(as, assign.Assignment{Test: fmt.Sprintf("t%d", r), Variant: "treatment", Reason: r, Phase: int(r)})
			}
			return as
		}(),
		"phases":  {{Test: "a", Variant: "v", Phase: 127}, {Test: "b", Variant: "v", Phase: 128}, {Test: "c", Variant: "v", Phase: 1 << 21}, {Test: "d", Variant: "v", Phase: 1<<31 - 1}},
		"strings": {{Test: "größe-ß", Variant: "gauche→droite"}, {Test: "e", Variant: ""}, {Test: "l" + long, Variant: long}},
	}
	for name, as := range cases {
		for _, unit := range []string{"", "user-42", long} {
			for _, version := range []uint64{0, 1, 1 << 40} {
				want := wantResponse(unit, version, as)
				b := appendAssignResponse(nil, unit, version, as)
				got := new(pb.AssignResponse)
				if err := proto.Unmarshal(b, got); err != nil {
					t.Fatalf("%s: unmarshal: %v", name, err)
				}
				if !proto.Equal(want, got) {
					t.Errorf("%s, unit %.10q, version %d: decodes to\n%v\nwant\n%v", name, unit, version, got, want)
				}
				if n := proto.Size(want); len(b) != n {
					t.Errorf("%s, unit %.10q, version %d: %d bytes, protobuf encodes %d", name, unit, version, len(b), n)
				}
				// Appending to a prefix keeps the prefix.
				if pre := appendAssignResponse([]byte("xy"), unit, version, as); string(pre[:2]) != "xy" || string(pre[2:]) != string(b) {
					t.Errorf("%s: appending after a prefix changed the encoding", name)
				}
			}
		}
	}
}

// TestAssignWireKnowsEveryField fails when AssignResponse or Assignment
// gains a field the wire encoder does not write.
func TestAssignWireKnowsEveryField(t *testing.T) {
	for _, c := range []struct {
		msg   protoreflect.MessageDescriptor
		known []protowire.Number
	}{
		{(&pb.AssignResponse{}).ProtoReflect().Descriptor(), []protowire.Number{respAssignments, respHeaders, respConfigVersion, respUnitID}},
		{(&pb.Assignment{}).ProtoReflect().Descriptor(), []protowire.Number{assignmentTestID, assignmentVariant, assignmentReason, assignmentPhase}},
	} {
		fields := c.msg.Fields()
		if fields.Len() != len(c.known) {
			t.Errorf("%s has %d fields, the wire encoder writes %d: teach appendAssignResponse the new ones", c.msg.FullName(), fields.Len(), len(c.known))
		}
		for _, n := range c.known {
			if fields.ByNumber(n) == nil {
				t.Errorf("%s has no field %d, which the wire encoder writes", c.msg.FullName(), n)
			}
		}
	}
}

// TestAssignOverGRPC: a real server with the wire codec answers Assign
// with what the engine assigned — hashes, an override, a paused test —
// and the generated client decodes it; Watch and errors go through the
// generated path unchanged, and in-process Assign answers the same.
func TestAssignOverGRPC(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	for _, id := range []string{"alpha", "beta", "gamma"} {
		if _, err := reg.Create(ctx, testExperiment(id)); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reg.Pause(ctx, "gamma"); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetOverride(ctx, assign.Override{Experiment: "beta", Unit: "user-7", Variant: "treatment"}); err != nil {
		t.Fatal(err)
	}
	svc := NewAssignment(ctx, reg)
	srv := grpc.NewServer(grpc.ForceServerCodecV2(Codec()))
	RegisterAssignment(srv, svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := pb.NewAssignmentServiceClient(conn)

	reasons := map[pb.AssignmentReason]int{}
	for i := 0; i < 200; i++ {
		unit := fmt.Sprintf("user-%d", i)
		got, err := client.Assign(ctx, &pb.AssignRequest{UnitId: unit})
		if err != nil {
			t.Fatal(err)
		}
		eng := reg.Snapshot()
		want := wantResponse(unit, eng.Version(), eng.AppendAssignments(nil, unit, nil, assign.Filter{}))
		if !proto.Equal(want, got) {
			t.Fatalf("Assign(%s) over gRPC = %v, the engine assigned %v", unit, got, want)
		}
		local, err := svc.Assign(ctx, &pb.AssignRequest{UnitId: unit})
		if err != nil || !proto.Equal(local, got) {
			t.Fatalf("in-process Assign(%s) = %v, %v; over gRPC %v", unit, local, err, got)
		}
		for _, a := range got.GetAssignments() {
			reasons[a.GetReason()]++
		}
	}
	for _, r := range []pb.AssignmentReason{pb.AssignmentReason_ASSIGNMENT_REASON_HASH, pb.AssignmentReason_ASSIGNMENT_REASON_OVERRIDE, pb.AssignmentReason_ASSIGNMENT_REASON_PAUSED} {
		if reasons[r] == 0 {
			t.Errorf("no assignment with reason %v in 200 units: the test does not cover it (%v)", r, reasons)
		}
	}
	minted, err := client.Assign(ctx, &pb.AssignRequest{MintUnit: true, TestIds: []string{"alpha"}})
	if err != nil || !assign.Minted(minted.GetUnitId()) || len(minted.GetAssignments()) != 1 {
		t.Errorf("Assign(mint_unit, test alpha) = %v, %v: want a minted unit and one assignment", minted, err)
	}
	_, err = client.Assign(ctx, &pb.AssignRequest{UnitId: "u", MintUnit: true})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Assign with unit_id and mint_unit: %v, want InvalidArgument", err)
	}
	stream, err := client.Watch(ctx, &pb.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := stream.Recv()
	if err != nil || len(snap.GetExperiments()) != 3 {
		t.Errorf("Watch's first snapshot: %d experiments, %v; want 3", len(snap.GetExperiments()), err)
	}
}
