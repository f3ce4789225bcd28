package forwardauth

import (
	"context"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// ExtAuthz is Envoy's gRPC external authorization service
// (envoy.service.auth.v3.Authorization) over an Auth. Check always
// answers without an RPC error:
//
//	OK, OkHttpResponse: headers x-abmesh-<test>, x-abmesh-unit (overwriting
//	    the client's), response_headers_to_add Set-Cookie when minted
//	INVALID_ARGUMENT, DeniedHttpResponse 400 with the reason: bad input
//
// The service is the "service" context extension (set per route or
// virtual host in Envoy's ext_authz check_settings), else the service
// header in the Check call's gRPC metadata (grpc_service.initial_metadata),
// else the service header of the original request.
type ExtAuthz struct {
	authv3.UnimplementedAuthorizationServer
	auth *Auth
}

var _ authv3.AuthorizationServer = (*ExtAuthz)(nil)

// NewExtAuthz returns the service over auth.
func NewExtAuthz(auth *Auth) *ExtAuthz { return &ExtAuthz{auth: auth} }

// Check implements Authorization.Check.
func (s *ExtAuthz) Check(ctx context.Context, in *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	attrs := in.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	get := headerGetter(h)
	req := Request{
		Service: attrs.GetContextExtensions()["service"],
		HTTPS:   h.GetScheme() == "https" || strings.EqualFold(get("x-forwarded-proto"), "https"),
	}
	if c := get("cookie"); c != "" {
		req.Cookies = []string{c}
	}
	if u := s.auth.cfg.UnitHeader; u != "" {
		req.UnitHeader = get(u)
	}
	if req.Service == "" {
		if md := metadata.ValueFromIncomingContext(ctx, s.auth.cfg.ServiceHeader); len(md) > 0 {
			req.Service = md[0]
		} else {
			req.Service = get(s.auth.cfg.ServiceHeader)
		}
	}
	ok := &authv3.OkHttpResponse{}
	res, err := s.auth.Decide(&req, func(name, value string) {
		ok.Headers = append(ok.Headers, header(name, value, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD))
	})
	if err != nil {
		return denied(err.Error()), nil
	}
	if res.SetCookie != "" {
		ok.ResponseHeadersToAdd = []*corev3.HeaderValueOption{header("set-cookie", res.SetCookie, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)}
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}, nil
}

// headerGetter returns a lookup of the original request's headers by
// lowercase name, from the headers map or, when Envoy sends raw headers
// (encode_raw_headers), from header_map.
func headerGetter(h *authv3.AttributeContext_HttpRequest) func(name string) string {
	if hm := h.GetHeaderMap().GetHeaders(); len(hm) > 0 && len(h.GetHeaders()) == 0 {
		return func(name string) string {
			for _, kv := range hm {
				if kv.GetKey() == name {
					if v := kv.GetValue(); v != "" {
						return v
					}
					return string(kv.GetRawValue())
				}
			}
			return ""
		}
	}
	m := h.GetHeaders()
	return func(name string) string { return m[name] }
}

func header(name, value string, action corev3.HeaderValueOption_HeaderAppendAction) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: name, Value: value}, AppendAction: action}
}

// denied answers bad input: INVALID_ARGUMENT, and HTTP 400 with reason for
// the client.
func denied(reason string) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: reason},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode_BadRequest},
			Headers: []*corev3.HeaderValueOption{header("content-type", "text/plain; charset=utf-8", corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)},
			Body:    reason + "\n",
		}},
	}
}
