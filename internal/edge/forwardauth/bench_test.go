package forwardauth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/abmesh/abmesh/assign"
)

// benchFixture has 10 running tests of service "shop".
func benchFixture(b *testing.B) *fixture {
	f := newFixture(b, Config{})
	for i := range 7 {
		startTest(b, f.reg, fmt.Sprintf("extra-%d", i), "shop")
	}
	if n := len(f.reg.Snapshot().AppendAssignments(nil, "u", nil, assign.Filter{Service: "shop"})); n != 9 {
		b.Fatalf("%d tests of shop, want 9", n)
	}
	return f
}

// BenchmarkHandler is the HTTP endpoint in process, for a returning user
// (cookie) and a new one (minted unit and Set-Cookie), 9 tests assigned.
func BenchmarkHandler(b *testing.B) {
	h := NewHandler(benchFixture(b).auth)
	for name, cookie := range map[string]string{"cookie": "abmesh_unit=" + assign.MintUnit(), "minted": ""} {
		b.Run(name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/edge/v1/assign?service=shop", nil)
			r.Header.Set("X-Forwarded-Proto", "https")
			if cookie != "" {
				r.Header.Set("Cookie", cookie)
			}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

// BenchmarkExtAuthz is gRPC ext_authz's Check in process (no transport).
func BenchmarkExtAuthz(b *testing.B) {
	s := NewExtAuthz(benchFixture(b).auth)
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request:           &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Headers: map[string]string{"cookie": "abmesh_unit=" + assign.MintUnit()}}},
		ContextExtensions: map[string]string{"service": "shop"},
	}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Check(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
}
