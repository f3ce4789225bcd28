package flagd_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/abmesh/abmesh/assign"

	"github.com/abmesh/abmesh/internal/edge/flagd"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
	evalv2 "github.com/abmesh/abmesh/proto/flagd/evaluation/v2"
)

// connectClient is a connect-go client of one method on abmeshd's gRPC
// port, over plain HTTP/1.1 as OpenFeature's Go flagd provider dials it.
func connectClient[Req, Res any](addr, method string, opts ...connect.ClientOption) *connect.Client[Req, Res] {
	httpClient := &http.Client{Transport: &http.Transport{}} // HTTP/1.1, like the provider's
	return connect.NewClient[Req, Res](httpClient, "http://"+addr+"/flagd.evaluation.v1.Service/"+method, opts...)
}

// TestConnectProtocol: on the gRPC port, Connect-protocol clients over
// HTTP/1.1 (proto and JSON codecs) get exactly the gRPC answers, the same
// error codes and messages, and the same event stream.
func TestConnectProtocol(t *testing.T) {
	d := daemontest.Start(t)
	fixture(t, d.Registry())
	conn := daemontest.Dial(t, d.Addr())
	grpcClient := evalpb.NewServiceClient(conn)
	ctx := context.Background()
	str := connectClient[evalpb.ResolveStringRequest, evalpb.ResolveStringResponse](d.Addr(), "ResolveString")
	strJSON := connectClient[evalpb.ResolveStringRequest, evalpb.ResolveStringResponse](d.Addr(), "ResolveString", connect.WithProtoJSON())
	for i := range 200 {
		req := &evalpb.ResolveStringRequest{FlagKey: checkout, Context: unitContext(t, fmt.Sprintf("u-%d", i), "fr", float64(i%5), false)}
		want, err := grpcClient.ResolveString(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]*connect.Client[evalpb.ResolveStringRequest, evalpb.ResolveStringResponse]{"proto": str, "json": strJSON} {
			got, err := c.CallUnary(ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatalf("Connect (%s) ResolveString: %v", name, err)
			}
			if got.Msg.GetValue() != want.GetValue() || got.Msg.GetReason() != want.GetReason() || got.Msg.GetVariant() != want.GetVariant() {
				t.Fatalf("Connect (%s) %v, gRPC %v", name, got.Msg, want)
			}
		}
	}
	_, err := str.CallUnary(ctx, connect.NewRequest(&evalpb.ResolveStringRequest{FlagKey: "nope", Context: unitContext(t, "u-1", "de", 1, true)}))
	if connect.CodeOf(err) != connect.CodeNotFound || connectMessage(err) != "Flag not found" {
		t.Errorf("unknown key over Connect: %v, want not_found \"Flag not found\"", err)
	}
	_, err = str.CallUnary(ctx, connect.NewRequest(&evalpb.ResolveStringRequest{FlagKey: checkout}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("no targetingKey over Connect: %v, want invalid_argument", err)
	}
	in := connectClient[evalpb.ResolveIntRequest, evalpb.ResolveIntResponse](d.Addr(), "ResolveInt")
	_, err = in.CallUnary(ctx, connect.NewRequest(&evalpb.ResolveIntRequest{FlagKey: checkout, Context: unitContext(t, "u-1", "de", 1, true)}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("ResolveInt over Connect: %v, want invalid_argument (TYPE_MISMATCH)", err)
	}
	v2 := connect.NewClient[evalv2.ResolveBooleanRequest, evalv2.ResolveBooleanResponse](&http.Client{Transport: &http.Transport{}},
		"http://"+d.Addr()+"/flagd.evaluation.v2.Service/ResolveBoolean")
	for i := range 20 {
		c := unitContext(t, fmt.Sprintf("u-%d", i), "de", 1, true)
		want, err := grpcClient.ResolveBoolean(ctx, &evalpb.ResolveBooleanRequest{FlagKey: banner, Context: c})
		if err != nil {
			t.Fatal(err)
		}
		got, err := v2.CallUnary(ctx, connect.NewRequest(&evalv2.ResolveBooleanRequest{FlagKey: banner, Context: c}))
		if err != nil || got.Msg.Value == nil || got.Msg.GetValue() != want.GetValue() || got.Msg.GetVariant() != want.GetVariant() {
			t.Fatalf("version 2 over Connect: %v, %v; gRPC version 1: %v", got, err, want)
		}
	}
	stream := connectEvents(t, d.Addr(), d.Registry())
	defer stream.Close()
	start := time.Now()
	d.Stop()
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("stop with an open Connect event stream took %v", took)
	}
	if stream.Receive() {
		t.Errorf("event after stop: %v", stream.Msg())
	}
}

func connectMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return ""
}

// connectEvents checks the event stream over Connect: provider_ready,
// then a configuration_change naming a created test. It returns the
// stream, still open.
func connectEvents(t *testing.T, addr string, reg *assign.Registry) *connect.ServerStreamForClient[evalpb.EventStreamResponse] {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	events := connectClient[evalpb.EventStreamRequest, evalpb.EventStreamResponse](addr, "EventStream")
	stream, err := events.CallServerStream(ctx, connect.NewRequest(&evalpb.EventStreamRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() || stream.Msg().GetType() != flagd.EventProviderReady {
		t.Fatalf("first Connect event %v, %v", stream.Msg(), stream.Err())
	}
	if _, err := reg.Create(ctx, experiment("over-connect", "a", "b")); err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() {
		t.Fatalf("no configuration_change over Connect: %v", stream.Err())
	}
	if got := changes(t, stream.Msg(), reg.Version()); !equalChanges(got, map[string]string{"over-connect": "write"}) {
		t.Errorf("Connect configuration_change %v", got)
	}
	return stream
}
