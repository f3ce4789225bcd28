package flagd_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/abmesh/abmesh/internal/edge/flagd"
	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
	evalv2 "github.com/abmesh/abmesh/proto/flagd/evaluation/v2"
)

// TestVersion2Contract: abmesh's version 2 proto is its version 1 with
// explicit presence on the responses' value and variant fields, and
// nothing else changed (same messages, fields, numbers, types, methods).
func TestVersion2Contract(t *testing.T) {
	v1, v2 := evalpb.File_flagd_evaluation_v1_evaluation_proto, evalv2.File_flagd_evaluation_v2_evaluation_proto
	if v1.Messages().Len() != v2.Messages().Len() || v1.Services().Get(0).Methods().Len() != v2.Services().Get(0).Methods().Len() {
		t.Fatal("version 2 has other messages or methods than version 1")
	}
	for i := range v1.Messages().Len() {
		m1 := v1.Messages().Get(i)
		m2 := v2.Messages().ByName(m1.Name())
		if m2 == nil || m1.Fields().Len() != m2.Fields().Len() {
			t.Errorf("%s: differs in version 2", m1.Name())
			continue
		}
		for j := range m1.Fields().Len() {
			f1 := m1.Fields().Get(j)
			f2 := m2.Fields().ByNumber(f1.Number())
			if f2 == nil || fieldShape(f1) != fieldShape(f2) {
				t.Errorf("%s.%s: version 2 has %v", m1.Name(), f1.Name(), f2)
				continue
			}
			optional := (f1.Name() == "value" || f1.Name() == "variant") && m1.Name() != "EventStreamResponse"
			if f2.HasPresence() != (optional || f1.HasPresence()) {
				t.Errorf("%s.%s: presence %v in version 2", m1.Name(), f1.Name(), f2.HasPresence())
			}
		}
	}
}

// fieldShape is a field's wire shape without its package.
func fieldShape(f protoreflect.FieldDescriptor) string {
	s := fmt.Sprintf("%d %s %v %v %v", f.Number(), f.Name(), f.Kind(), f.Cardinality(), f.IsMap())
	if m := f.Message(); m != nil && !f.IsMap() {
		s += " " + string(m.Name())
	}
	return s
}

// TestVersion2: over real gRPC, version 2 answers exactly what version 1
// answers for 200 units (values, reasons, variants, ResolveAll), sends a
// false boolean value explicitly, fails alike, and streams events alike.
func TestVersion2(t *testing.T) {
	s := serve(t)
	v2 := evalv2.NewServiceClient(s.conn)
	ctx := context.Background()
	falseSeen := false
	for i := range 200 {
		c := unitContext(t, fmt.Sprintf("u-%d", i), "de", float64(i%5), true)
		s1, err1 := s.flagd.ResolveString(ctx, &evalpb.ResolveStringRequest{FlagKey: checkout, Context: c})
		s2, err2 := v2.ResolveString(ctx, &evalv2.ResolveStringRequest{FlagKey: checkout, Context: c})
		if err1 != nil || err2 != nil || s2.GetValue() != s1.GetValue() || s2.GetVariant() != s1.GetVariant() || s2.GetReason() != s1.GetReason() || !proto.Equal(s1.GetMetadata(), s2.GetMetadata()) {
			t.Fatalf("ResolveString: v1 %v %v, v2 %v %v", s1, err1, s2, err2)
		}
		b1, err1 := s.flagd.ResolveBoolean(ctx, &evalpb.ResolveBooleanRequest{FlagKey: banner, Context: c})
		b2, err2 := v2.ResolveBoolean(ctx, &evalv2.ResolveBooleanRequest{FlagKey: banner, Context: c})
		if err1 != nil || err2 != nil || b2.Value == nil || b2.GetValue() != b1.GetValue() || b2.GetVariant() != b1.GetVariant() || b2.GetReason() != b1.GetReason() {
			t.Fatalf("ResolveBoolean: v1 %v %v, v2 %v %v (value present: %v)", b1, err1, b2, err2, b2.Value != nil)
		}
		falseSeen = falseSeen || !b2.GetValue()
		a1, _ := s.flagd.ResolveAll(ctx, &evalpb.ResolveAllRequest{Context: c})
		a2, err := v2.ResolveAll(ctx, &evalv2.ResolveAllRequest{Context: c})
		if err != nil || len(a2.GetFlags()) != len(a1.GetFlags()) {
			t.Fatalf("ResolveAll: v1 %v, v2 %v %v", a1, a2, err)
		}
		for k, f1 := range a1.GetFlags() {
			f2 := a2.GetFlags()[k]
			if f2.GetVariant() != f1.GetVariant() || f2.GetReason() != f1.GetReason() || f2.GetBoolValue() != f1.GetBoolValue() || f2.GetStringValue() != f1.GetStringValue() {
				t.Fatalf("ResolveAll %s: v1 %v, v2 %v", k, f1, f2)
			}
		}
	}
	if !falseSeen {
		t.Error("no unit got banner off: the explicit false was not tested")
	}
	_, err1 := s.flagd.ResolveInt(ctx, &evalpb.ResolveIntRequest{FlagKey: "nope"})
	_, err2 := v2.ResolveInt(ctx, &evalv2.ResolveIntRequest{FlagKey: "nope"})
	if status.Code(err1) != status.Code(err2) || status.Convert(err1).Message() != status.Convert(err2).Message() {
		t.Errorf("errors differ: v1 %v, v2 %v", err1, err2)
	}
	stream, err := v2.EventStream(ctx, &evalv2.EventStreamRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := stream.Recv(); err != nil || ev.GetType() != flagd.EventProviderReady {
		t.Errorf("first version 2 event %v, %v", ev, err)
	}
}
