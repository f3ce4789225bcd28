package grpcapi

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// TestListChangesOverTheWire: a sequence of admin RPCs, some by a named
// actor, is listed back newest first with actor, peer and before/after in
// the API's JSON; pages of two walk the whole log; filters by name and
// kind; a no-op and a failed call record nothing.
func TestListChangesOverTheWire(t *testing.T) {
	c := experimentClient(t)
	ctx := context.Background()
	bob := metadata.AppendToOutgoingContext(ctx, ActorHeader, "bob")
	exp := &pb.Experiment{Id: "conv", ChangeService: "a", MeasureService: "a",
		Variants: []*pb.Variant{{Name: "control", Weight: 1}, {Name: "t", Weight: 1}},
		Plan:     &pb.AnalysisPlan{MinimumDetectableEffect: 0.01}}
	calls := []func() error{
		func() error {
			_, err := c.CreateLayer(bob, &pb.CreateLayerRequest{Layer: &pb.Layer{Id: "l1"}})
			return err
		},
		func() error {
			_, err := c.CreateExperiment(bob, &pb.CreateExperimentRequest{Experiment: exp})
			return err
		},
		func() error { _, err := c.StartExperiment(ctx, &pb.StartExperimentRequest{Id: "conv"}); return err },
		func() error { _, err := c.StartExperiment(ctx, &pb.StartExperimentRequest{Id: "conv"}); return err }, // no-op
		func() error {
			_, err := c.SetOverride(bob, &pb.SetOverrideRequest{Override: &pb.Override{ExperimentId: "conv", UnitId: "u1", Variant: "t"}})
			return err
		},
		func() error { _, err := c.DeleteLayer(bob, &pb.DeleteLayerRequest{Id: "l1"}); return err },
	}
	for i, call := range calls {
		if err := call(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if _, err := c.DeleteLayer(bob, &pb.DeleteLayerRequest{Id: "l1"}); status.Code(err) != codes.NotFound {
		t.Fatalf("second delete: %v", err)
	}
	var got []string
	var all []*pb.Change
	req := &pb.ListChangesRequest{PageSize: 2}
	for pages := 0; ; pages++ {
		resp, err := c.ListChanges(ctx, req)
		if err != nil || pages > 3 {
			t.Fatalf("page %d: %v", pages, err)
		}
		all = append(all, resp.GetChanges()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	for _, ch := range all {
		got = append(got, fmt.Sprintf("%d %s %s %s", ch.GetSeq(), ch.GetAction(), ch.GetName(), ch.GetActor().GetName()+"/"+ch.GetActor().GetKind()))
		if !strings.HasPrefix(ch.GetActor().GetPeer(), "127.0.0.1:") || ch.GetTime() == nil || ch.GetConfigVersion() != ch.GetSeq() {
			t.Errorf("change %d: actor %v, time %v, version %d", ch.GetSeq(), ch.GetActor(), ch.GetTime(), ch.GetConfigVersion())
		}
	}
	want := "[5 layer.delete l1 bob/declared 4 override.set conv/u1 bob/declared 3 experiment.start conv /anonymous " +
		"2 experiment.create conv bob/declared 1 layer.create l1 bob/declared]"
	if fmt.Sprint(got) != want {
		t.Errorf("changes:\n%v\nwant\n%s", got, want)
	}
	start := all[2]
	var before, after pb.Experiment
	if err := unmarshalJSON(start.GetBeforeJson(), &before); err != nil {
		t.Fatal(err)
	}
	if err := unmarshalJSON(start.GetAfterJson(), &after); err != nil {
		t.Fatal(err)
	}
	if before.GetStatus() != pb.ExperimentStatus_EXPERIMENT_STATUS_DRAFT || after.GetStatus() != pb.ExperimentStatus_EXPERIMENT_STATUS_RUNNING {
		t.Errorf("start: before %v, after %v", before.GetStatus(), after.GetStatus())
	}
	if all[4].GetBeforeJson() != "" || all[0].GetAfterJson() != "" {
		t.Errorf("create before %q, delete after %q: want empty", all[4].GetBeforeJson(), all[0].GetAfterJson())
	}
	for _, f := range []struct {
		req  *pb.ListChangesRequest
		want []uint64
	}{
		{&pb.ListChangesRequest{Name: "conv"}, []uint64{4, 3, 2}},
		{&pb.ListChangesRequest{Kind: "layer"}, []uint64{5, 1}},
		{&pb.ListChangesRequest{Name: "conv", Kind: "override"}, []uint64{4}},
		{&pb.ListChangesRequest{PageToken: "3"}, []uint64{2, 1}},
	} {
		resp, err := c.ListChanges(ctx, f.req)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, ch := range resp.GetChanges() {
			seqs = append(seqs, ch.GetSeq())
		}
		if fmt.Sprint(seqs) != fmt.Sprint(f.want) || resp.GetNextPageToken() != "" {
			t.Errorf("%v: %v (next %q), want %v", f.req, seqs, resp.GetNextPageToken(), f.want)
		}
	}
}

func unmarshalJSON(s string, m *pb.Experiment) error { return protojson.Unmarshal([]byte(s), m) }

// TestListChangesBadInput: every invalid field is InvalidArgument naming
// it; so is an actor name that is too long or unprintable, and a
// mutation refused for it changes nothing.
func TestListChangesBadInput(t *testing.T) {
	c := experimentClient(t)
	ctx := context.Background()
	for _, tc := range []struct {
		req   *pb.ListChangesRequest
		field string
	}{
		{&pb.ListChangesRequest{Name: "Bad Name"}, "name"},
		{&pb.ListChangesRequest{Kind: "graph"}, "kind"},
		{&pb.ListChangesRequest{PageSize: -1}, "page_size"},
		{&pb.ListChangesRequest{PageSize: 1001}, "page_size"},
		{&pb.ListChangesRequest{PageToken: "abc"}, "page_token"},
		{&pb.ListChangesRequest{PageToken: "0"}, "page_token"},
	} {
		_, err := c.ListChanges(ctx, tc.req)
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tc.field+":") {
			t.Errorf("%v: %v, want InvalidArgument on %s", tc.req, err, tc.field)
		}
	}
	// gRPC clients refuse to send a control character; a server reached
	// another way refuses it too.
	evil := metadata.NewIncomingContext(ctx, metadata.Pairs(ActorHeader, "mallory\x1b[2J"))
	if _, err := withActor(evil); status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), ActorHeader+":") {
		t.Errorf("unprintable actor: %v, want InvalidArgument on %s", err, ActorHeader)
	}
	long := metadata.AppendToOutgoingContext(ctx, ActorHeader, strings.Repeat("a", maxActorLen+1))
	if _, err := c.CreateLayer(long, &pb.CreateLayerRequest{Layer: &pb.Layer{Id: "l1"}}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("long actor: %v, want InvalidArgument", err)
	}
	if resp, err := c.ListChanges(ctx, &pb.ListChangesRequest{}); err != nil || len(resp.GetChanges()) != 0 {
		t.Errorf("after refused calls: %v, %v", resp, err)
	}
}
