package flagd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/abmesh/abmesh/internal/edge/flagd"
	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
)

// serviceName is flagd's evaluation service.
const serviceName = "flagd.evaluation.v1.Service"

// referenceProto is the path of flagd's own evaluation.proto: the shared
// reference beside the repository (../shared/reference/flagd), as on every
// developer's machine and in CI. Without it the test skips, except in CI,
// where it fails.
func referenceProto(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod above the test's directory")
		}
	}
	p := filepath.Join(filepath.Dir(dir), "shared", "reference", "flagd", "evaluation.proto")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("flagd's reference proto: %v", err)
		}
		t.Skipf("flagd's reference proto is not here: %v", err)
	}
	return p
}

// referenceService compiles flagd's own evaluation.proto at test time.
func referenceService(t *testing.T) protoreflect.ServiceDescriptor {
	t.Helper()
	p := referenceProto(t)
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{filepath.Dir(p)}})}
	files, err := c.Compile(context.Background(), filepath.Base(p))
	if err != nil {
		t.Fatalf("compile %s: %v", p, err)
	}
	svc := files[0].Services().ByName("Service")
	if svc == nil || svc.FullName() != serviceName {
		t.Fatalf("%s has no %s", p, serviceName)
	}
	return svc
}

// TestSameContractAsFlagd: abmesh's proto and flagd's describe the same
// wire: the same service and methods (input, output, streaming), and the
// same messages with the same fields (number, name, JSON name, kind,
// cardinality, message type, map, oneof), in both directions.
func TestSameContractAsFlagd(t *testing.T) {
	ref := referenceService(t)
	ours := evalpb.File_flagd_evaluation_v1_evaluation_proto.Services().ByName("Service")
	if ref.Methods().Len() != ours.Methods().Len() {
		t.Errorf("methods: flagd %d, abmesh %d", ref.Methods().Len(), ours.Methods().Len())
	}
	msgs := map[protoreflect.FullName][2]protoreflect.MessageDescriptor{}
	for i := range ref.Methods().Len() {
		r := ref.Methods().Get(i)
		o := ours.Methods().ByName(r.Name())
		if o == nil {
			t.Errorf("abmesh lacks method %s", r.Name())
			continue
		}
		if methodSig(r) != methodSig(o) {
			t.Errorf("method %s: flagd %s, abmesh %s", r.Name(), methodSig(r), methodSig(o))
		}
		msgs[r.Input().FullName()] = [2]protoreflect.MessageDescriptor{r.Input(), o.Input()}
		msgs[r.Output().FullName()] = [2]protoreflect.MessageDescriptor{r.Output(), o.Output()}
	}
	refFile, ourFile := ref.ParentFile(), ours.ParentFile()
	if refFile.Messages().Len() != ourFile.Messages().Len() {
		t.Errorf("messages: flagd %d, abmesh %d", refFile.Messages().Len(), ourFile.Messages().Len())
	}
	for i := range refFile.Messages().Len() {
		r := refFile.Messages().Get(i)
		o := ourFile.Messages().ByName(r.Name())
		if o == nil {
			t.Errorf("abmesh lacks message %s", r.Name())
			continue
		}
		compareFields(t, r, o)
	}
	if len(msgs) != 14 {
		t.Errorf("the methods use %d messages, want 14", len(msgs))
	}
}

func methodSig(m protoreflect.MethodDescriptor) string {
	return fmt.Sprintf("(%s, client stream %v) → (%s, server stream %v)", m.Input().FullName(), m.IsStreamingClient(), m.Output().FullName(), m.IsStreamingServer())
}

// fieldSig is everything about a field that reaches the wire or JSON.
func fieldSig(f protoreflect.FieldDescriptor) string {
	s := fmt.Sprintf("%d %s json=%s %v %v map=%v", f.Number(), f.Name(), f.JSONName(), f.Cardinality(), f.Kind(), f.IsMap())
	if m := f.Message(); m != nil && !f.IsMap() {
		s += " " + string(m.FullName())
	}
	if f.IsMap() {
		s += " " + fieldSig(f.MapKey()) + " → " + fieldSig(f.MapValue())
	}
	if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
		s += " oneof " + string(o.Name())
	}
	return s
}

func compareFields(t *testing.T, ref, ours protoreflect.MessageDescriptor) {
	t.Helper()
	if ref.Fields().Len() != ours.Fields().Len() {
		t.Errorf("%s: flagd has %d fields, abmesh %d", ref.FullName(), ref.Fields().Len(), ours.Fields().Len())
	}
	for i := range ref.Fields().Len() {
		r := ref.Fields().Get(i)
		o := ours.Fields().ByNumber(r.Number())
		if o == nil {
			t.Errorf("%s: abmesh lacks field %d %s", ref.FullName(), r.Number(), r.Name())
			continue
		}
		if fieldSig(r) != fieldSig(o) {
			t.Errorf("%s field: flagd %s, abmesh %s", ref.FullName(), fieldSig(r), fieldSig(o))
		}
	}
}

// dynamicClient calls a flagd service with dynamic messages only: JSON
// in, JSON out, as grpcurl does, through the descriptor it was given.
type dynamicClient struct {
	conn *grpc.ClientConn
	svc  protoreflect.ServiceDescriptor
}

// call invokes method with the JSON request and returns the JSON response.
func (c dynamicClient) call(t *testing.T, method, request string) (map[string]any, error) {
	t.Helper()
	m := c.svc.Methods().ByName(protoreflect.Name(method))
	req, resp := dynamicpb.NewMessage(m.Input()), dynamicpb.NewMessage(m.Output())
	if err := protojson.Unmarshal([]byte(request), req); err != nil {
		t.Fatalf("%s request %s: %v", method, request, err)
	}
	if err := c.conn.Invoke(context.Background(), "/"+serviceName+"/"+method, req, resp); err != nil {
		return nil, err
	}
	return toJSON(t, resp), nil
}

func toJSON(t *testing.T, m proto.Message) map[string]any {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// firstEvent opens an event stream and returns its first event as JSON.
func (c dynamicClient) firstEvent(t *testing.T) map[string]any {
	t.Helper()
	m := c.svc.Methods().ByName("EventStream")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := c.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/"+serviceName+"/EventStream")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(dynamicpb.NewMessage(m.Input())); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	ev := dynamicpb.NewMessage(m.Output())
	if err := stream.RecvMsg(ev); err != nil {
		t.Fatal(err)
	}
	return toJSON(t, ev)
}

// speaksFlagd checks, over the wire with c, that abmeshd answers flagd's
// calls as its generated client sees them: string, boolean and bulk
// evaluation of 100 units, an unknown key, a type mismatch and the first
// event.
func speaksFlagd(t *testing.T, s served, c dynamicClient) {
	t.Helper()
	ctx := context.Background()
	for i := range 100 {
		unit := fmt.Sprintf("u-%d", i)
		evalCtx := fmt.Sprintf(`{"targetingKey": %q, "country": "de", "tier": %d}`, unit, i%5)
		got, err := c.call(t, "ResolveString", fmt.Sprintf(`{"flagKey": %q, "context": %s}`, checkout, evalCtx))
		if err != nil {
			t.Fatalf("ResolveString %s: %v", unit, err)
		}
		want, err := s.flagd.ResolveString(ctx, &evalpb.ResolveStringRequest{FlagKey: checkout, Context: unitContextJSON(t, evalCtx)})
		if err != nil {
			t.Fatal(err)
		}
		if got["value"] != want.GetValue() || got["variant"] != want.GetVariant() || got["reason"] != want.GetReason() {
			t.Fatalf("ResolveString %s: dynamic %v, generated %v", unit, got, want)
		}
		b, err := c.call(t, "ResolveBoolean", fmt.Sprintf(`{"flagKey": %q, "context": %s}`, banner, evalCtx))
		if err != nil {
			t.Fatalf("ResolveBoolean %s: %v", unit, err)
		}
		if on := b["variant"] == "on"; b["value"] != any(on) && !(b["value"] == nil && !on) { // proto3 JSON omits false
			t.Fatalf("ResolveBoolean %s: %v", unit, b)
		}
		all, err := c.call(t, "ResolveAll", fmt.Sprintf(`{"context": %s}`, evalCtx))
		if err != nil {
			t.Fatalf("ResolveAll %s: %v", unit, err)
		}
		flags, _ := all["flags"].(map[string]any)
		if f, _ := flags[checkout].(map[string]any); f["stringValue"] != want.GetVariant() || len(flags) != 5 {
			t.Fatalf("ResolveAll %s: %v", unit, all)
		}
	}
	_, err := c.call(t, "ResolveString", `{"flagKey": "nope", "context": {"targetingKey": "u-1"}}`)
	if st, _ := status.FromError(err); st.Code() != codes.NotFound || st.Message() != "Flag not found" {
		t.Errorf("unknown key: %v", err)
	}
	_, err = c.call(t, "ResolveInt", fmt.Sprintf(`{"flagKey": %q, "context": {"targetingKey": "u-1"}}`, checkout))
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("ResolveInt: %v, want InvalidArgument (TYPE_MISMATCH)", err)
	}
	if ev := c.firstEvent(t); ev["type"] != flagd.EventProviderReady {
		t.Errorf("first event %v", ev)
	}
}

// TestReferenceProtoClient: a client built from flagd's own
// evaluation.proto at test time, with dynamic messages, speaks to abmeshd.
func TestReferenceProtoClient(t *testing.T) {
	svc := referenceService(t)
	s := serve(t)
	speaksFlagd(t, s, dynamicClient{conn: s.conn, svc: svc})
}

// TestReflectionClient: a grpcurl-style client that learns the service
// from abmeshd's server reflection speaks to abmeshd.
func TestReflectionClient(t *testing.T) {
	s := serve(t)
	speaksFlagd(t, s, dynamicClient{conn: s.conn, svc: reflectedService(t, s.conn)})
}

// reflectedService asks the server's reflection service for the file
// that defines flagd's service (and its imports) and builds it.
func reflectedService(t *testing.T, conn *grpc.ClientConn) protoreflect.ServiceDescriptor {
	t.Helper()
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: serviceName}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	set := &descriptorpb.FileDescriptorSet{}
	for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(b, fd); err != nil {
			t.Fatal(err)
		}
		set.File = append(set.File, fd)
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		t.Fatalf("reflected files: %v", err)
	}
	d, err := files.FindDescriptorByName(serviceName)
	if err != nil {
		t.Fatal(err)
	}
	return d.(protoreflect.ServiceDescriptor)
}

func unitContextJSON(t *testing.T, s string) *structpb.Struct {
	t.Helper()
	c := &structpb.Struct{}
	if err := protojson.Unmarshal([]byte(s), c); err != nil {
		t.Fatal(err)
	}
	return c
}
