package forwardauth_test

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

// checkReq is a CheckRequest for an original request with these headers
// (lowercase names) and context extensions.
func checkReq(scheme string, headers, ext map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/cart?x=1", Host: "shop.example", Scheme: scheme, Headers: headers,
		}},
		ContextExtensions: ext,
	}}
}

// okHeaders returns an OK response's upstream headers, failing on any
// other answer or a header that does not overwrite the client's.
func okHeaders(t *testing.T, resp *authv3.CheckResponse) map[string]string {
	t.Helper()
	ok := resp.GetOkResponse()
	if resp.GetStatus().GetCode() != int32(codes.OK) || ok == nil {
		t.Fatalf("Check = %v, want OK", resp)
	}
	h := map[string]string{}
	for _, o := range ok.GetHeaders() {
		if o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s: append action %v, want OVERWRITE_IF_EXISTS_OR_ADD", o.GetHeader().GetKey(), o.GetAppendAction())
		}
		h[o.GetHeader().GetKey()] = o.GetHeader().GetValue()
	}
	return h
}

// TestExtAuthzOverGRPC calls abmeshd's envoy.service.auth.v3
// Authorization/Check over real gRPC with go-control-plane's client.
func TestExtAuthzOverGRPC(t *testing.T) {
	d := daemontest.Start(t)
	startTest(t, d, edgeTest{id: "checkout", service: "shop", other: "treatment"})
	c := authv3.NewAuthorizationClient(daemontest.Dial(t, d.Addr()))
	ctx := t.Context()
	eng := d.Registry().Snapshot()
	shop := map[string]string{"service": "shop"}

	t.Run("mints a unit and its cookie", func(t *testing.T) {
		resp, err := c.Check(ctx, checkReq("https", map[string]string{":path": "/cart"}, shop))
		if err != nil {
			t.Fatal(err)
		}
		h := okHeaders(t, resp)
		unit := h["x-abmesh-unit"]
		want, _ := eng.HashVariant("checkout", unit)
		if !assign.Minted(unit) || h["x-abmesh-checkout"] != want {
			t.Fatalf("headers %v, want a minted unit and checkout %q", h, want)
		}
		add := resp.GetOkResponse().GetResponseHeadersToAdd()
		if len(add) != 1 || add[0].GetHeader().GetKey() != "set-cookie" ||
			add[0].GetHeader().GetValue() != "abmesh_unit="+unit+"; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax; Secure" {
			t.Errorf("response headers to add: %v", add)
		}
	})

	t.Run("the cookie's unit, no new cookie", func(t *testing.T) {
		unit := assign.MintUnit()
		resp, err := c.Check(ctx, checkReq("http", map[string]string{"cookie": "a=1; abmesh_unit=" + unit}, shop))
		if err != nil {
			t.Fatal(err)
		}
		h := okHeaders(t, resp)
		want, _ := eng.HashVariant("checkout", unit)
		if h["x-abmesh-unit"] != unit || h["x-abmesh-checkout"] != want || len(resp.GetOkResponse().GetResponseHeadersToAdd()) != 0 {
			t.Errorf("headers %v, to add %v; want unit %s, checkout %s, no cookie", h, resp.GetOkResponse().GetResponseHeadersToAdd(), unit, want)
		}
	})

	t.Run("service sources", func(t *testing.T) {
		for name, call := range map[string]func() (*authv3.CheckResponse, error){
			"request header": func() (*authv3.CheckResponse, error) {
				return c.Check(ctx, checkReq("http", map[string]string{"x-abmesh-service": "shop"}, nil))
			},
			"initial metadata": func() (*authv3.CheckResponse, error) {
				return c.Check(metadata.AppendToOutgoingContext(ctx, "x-abmesh-service", "shop"), checkReq("http", nil, nil))
			},
			"raw header map": func() (*authv3.CheckResponse, error) {
				r := checkReq("http", nil, nil)
				r.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "x-abmesh-service", RawValue: []byte("shop")}}}
				return c.Check(ctx, r)
			},
		} {
			resp, err := call()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if h := okHeaders(t, resp); h["x-abmesh-checkout"] == "" {
				t.Errorf("%s: no checkout header in %v", name, h)
			}
		}
		resp, err := c.Check(ctx, checkReq("http", map[string]string{"x-abmesh-service": "shop"}, map[string]string{"service": "other"}))
		if err != nil {
			t.Fatal(err)
		}
		if h := okHeaders(t, resp); h["x-abmesh-checkout"] != "" {
			t.Errorf("the context extension did not win over the header: %v", h)
		}
	})

	t.Run("bad input is denied 400", func(t *testing.T) {
		for name, cookie := range map[string]string{
			"long":    "abmesh_unit=" + strings.Repeat("u", assign.MaxUnitLen+1),
			"control": "abmesh_unit=u\x01",
		} {
			resp, err := c.Check(ctx, checkReq("http", map[string]string{"cookie": cookie}, shop))
			if err != nil {
				t.Fatalf("%s: RPC error %v, want a denied response", name, err)
			}
			den := resp.GetDeniedResponse()
			if resp.GetStatus().GetCode() != int32(codes.InvalidArgument) || den.GetStatus().GetCode() != typev3.StatusCode_BadRequest ||
				!strings.Contains(den.GetBody(), "unit in cookie abmesh_unit") || resp.GetOkResponse() != nil {
				t.Errorf("%s: %v, want INVALID_ARGUMENT denied 400 with the reason", name, resp)
			}
		}
	})
}
