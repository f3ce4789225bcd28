package flagd

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc/status"

	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
)

// ConnectHandler serves s over the Connect protocol (and gRPC-Web), as
// flagd itself does beside gRPC: OpenFeature's Go flagd provider in RPC
// mode is a connect-go client and speaks Connect over HTTP/1.1. Answers
// and errors are the gRPC service's, with the same codes and messages.
func ConnectHandler(s *Service) http.Handler {
	mux := http.NewServeMux()
	prefix := "/" + evalpb.Service_ServiceDesc.ServiceName + "/"
	unary(mux, prefix+"ResolveAll", s.ResolveAll)
	unary(mux, prefix+"ResolveBoolean", s.ResolveBoolean)
	unary(mux, prefix+"ResolveString", s.ResolveString)
	unary(mux, prefix+"ResolveFloat", s.ResolveFloat)
	unary(mux, prefix+"ResolveInt", s.ResolveInt)
	unary(mux, prefix+"ResolveObject", s.ResolveObject)
	proc := prefix + "EventStream"
	mux.Handle(proc, connect.NewServerStreamHandler(proc,
		func(ctx context.Context, _ *connect.Request[evalpb.EventStreamRequest], stream *connect.ServerStream[evalpb.EventStreamResponse]) error {
			return connectError(s.events(ctx, stream.Send))
		}))
	return mux
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
