package jaeger

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
)

// gogoCodec marshals Jaeger's gogo-protobuf generated messages with their
// own Marshal and Unmarshal methods, as Jaeger's own servers do. grpc's
// default codec reaches them only through google.golang.org/protobuf's
// legacy-message wrapper, which derives descriptors at run time from gogo
// descriptors (custom TraceID / SpanID types, stdtime); the generated
// methods are the wire format's reference, and faster.
type gogoCodec struct{}

type gogoMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

func (gogoCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(gogoMessage)
	if !ok {
		return nil, fmt.Errorf("jaeger codec: %T is not a gogo message", v)
	}
	return m.Marshal()
}

func (gogoCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(gogoMessage)
	if !ok {
		return fmt.Errorf("jaeger codec: %T is not a gogo message", v)
	}
	return m.Unmarshal(data)
}

// Name is "proto" so the content-subtype on the wire stays application/grpc+proto.
func (gogoCodec) Name() string { return "proto" }

var _ encoding.Codec = gogoCodec{}

// CallOption makes a gRPC call use the gogo codec Jaeger's messages need.
// Reader adds it to every call; pass it yourself when calling a
// api_v2.QueryServiceClient directly.
func CallOption() grpc.CallOption { return grpc.ForceCodec(gogoCodec{}) }

// ServerOption makes a gRPC server use the gogo codec, for serving a
// api_v2.QueryServiceServer (fakes in tests).
func ServerOption() grpc.ServerOption { return grpc.ForceServerCodec(gogoCodec{}) }
