package protoconv

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/abmesh/abmesh/assign"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// ActorToProto converts an audit actor.
func ActorToProto(a assign.Actor) *pb.Actor {
	return &pb.Actor{Kind: a.Kind, Name: a.Name, Peer: a.Peer}
}

// AuditEntryToProto converts an audit log entry. Its before and after
// sides, stored as the JSON of the domain object, become the JSON of the
// API's message for it (pb.Experiment, pb.Layer or pb.Override: enum names,
// the .proto field names), so a client reads the shape "abmesh get -o
// json" prints.
func AuditEntryToProto(e *assign.AuditEntry) (*pb.Change, error) {
	before, err := sideJSON(e.Kind, e.Before)
	if err != nil {
		return nil, fmt.Errorf("change %d before: %w", e.Seq, err)
	}
	after, err := sideJSON(e.Kind, e.After)
	if err != nil {
		return nil, fmt.Errorf("change %d after: %w", e.Seq, err)
	}
	return &pb.Change{
		Seq: e.Seq, ConfigVersion: e.Version, Time: ts(e.Time), Actor: ActorToProto(e.Actor),
		Action: e.Action, Kind: e.Kind, Name: e.Name, BeforeJson: before, AfterJson: after,
	}, nil
}

// sideJSON re-encodes one side of an audit entry of kind as the API
// message's JSON; "" for none.
func sideJSON(kind string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	var m proto.Message
	var err error
	switch kind {
	case assign.AuditExperiment:
		var x assign.Experiment
		err = json.Unmarshal(raw, &x)
		m = ExperimentToProto(&x)
	case assign.AuditLayer:
		var l assign.Layer
		err = json.Unmarshal(raw, &l)
		m = LayerToProto(&l)
	case assign.AuditOverride:
		var o assign.Override
		err = json.Unmarshal(raw, &o)
		m = OverrideToProto(o)
	default:
		return "", fmt.Errorf("unknown kind %q", kind)
	}
	if err != nil {
		return "", err
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return "", err
	}
	// protojson's spacing varies on purpose; compact it for a stable form.
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return "", err
	}
	return buf.String(), nil
}
