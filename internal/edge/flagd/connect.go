package flagd

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc/status"

	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
	evalv2 "github.com/abmesh/abmesh/proto/flagd/evaluation/v2"
)

// ConnectHandler serves s, versions 1 and 2, over the Connect protocol
// (and gRPC-Web), as flagd itself does beside gRPC: OpenFeature's Go flagd
// provider in RPC mode is a connect-go client and speaks Connect over
// HTTP/1.1. Answers and errors are the gRPC services', with the same codes
// and messages.
func ConnectHandler(s *Service) http.Handler {
	mux := http.NewServeMux()
	connectV1(mux, s)
	connectV2(mux, NewV2(s))
	return mux
}

// connectV1 registers version 1's methods.
func connectV1(mux *http.ServeMux, s *Service) {
	p := "/" + evalpb.Service_ServiceDesc.ServiceName + "/"
	unary(mux, p+"ResolveAll", s.ResolveAll)
	unary(mux, p+"ResolveBoolean", s.ResolveBoolean)
	unary(mux, p+"ResolveString", s.ResolveString)
	unary(mux, p+"ResolveFloat", s.ResolveFloat)
	unary(mux, p+"ResolveInt", s.ResolveInt)
	unary(mux, p+"ResolveObject", s.ResolveObject)
	events[evalpb.EventStreamRequest](mux, p+"EventStream", s, func(ev *evalpb.EventStreamResponse) *evalpb.EventStreamResponse { return ev })
}

// connectV2 registers version 2's methods.
func connectV2(mux *http.ServeMux, v V2) {
	p := "/" + evalv2.Service_ServiceDesc.ServiceName + "/"
	unary(mux, p+"ResolveAll", v.ResolveAll)
	unary(mux, p+"ResolveBoolean", v.ResolveBoolean)
	unary(mux, p+"ResolveString", v.ResolveString)
	unary(mux, p+"ResolveFloat", v.ResolveFloat)
	unary(mux, p+"ResolveInt", v.ResolveInt)
	unary(mux, p+"ResolveObject", v.ResolveObject)
	events[evalv2.EventStreamRequest](mux, p+"EventStream", v.s, v2Event)
}

// events registers the Connect handler of an event stream whose events
// conv turns into the version's messages.
func events[Req, Res any](mux *http.ServeMux, proc string, s *Service, conv func(*evalpb.EventStreamResponse) *Res) {
	mux.Handle(proc, connect.NewServerStreamHandler(proc,
		func(ctx context.Context, _ *connect.Request[Req], stream *connect.ServerStream[Res]) error {
			return connectError(s.events(ctx, func(ev *evalpb.EventStreamResponse) error { return stream.Send(conv(ev)) }))
		}))
}

// unary registers the Connect handler of one unary method.
func unary[Req, Res any](mux *http.ServeMux, proc string, f func(context.Context, *Req) (*Res, error)) {
	mux.Handle(proc, connect.NewUnaryHandler(proc, func(ctx context.Context, req *connect.Request[Req]) (*connect.Response[Res], error) {
		res, err := f(ctx, req.Msg)
		if err != nil {
			return nil, connectError(err)
		}
		return connect.NewResponse(res), nil
	}))
}

// connectError turns a gRPC status into the Connect error of the same
// code (the two protocols number their codes alike) and message.
func connectError(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		return connect.NewError(connect.Code(st.Code()), errors.New(st.Message()))
	}
	return err
}
