package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

type identityKey struct{}

// NewContext returns ctx carrying the caller's identity.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext returns the identity a Guard put in ctx; false when the call
// was not authenticated (auth off, or a Public method).
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// withIdentity is ctx with id, unless id is none (a Public method).
func withIdentity(ctx context.Context, id Identity) context.Context {
	if id.Kind == "" {
		return ctx
	}
	return NewContext(ctx, id)
}

// Guard lets a call through when its caller holds the role its method
// needs. Methods are gRPC full method names ("/pkg.Service/Method"); a
// method missing from the table is refused (PermissionDenied), so a
// service registered without roles is closed, not open.
type Guard struct {
	auth    *Authenticator
	methods map[string]Role
}

// NewGuard returns a Guard of the rules of a and the roles of methods.
func NewGuard(a *Authenticator, methods map[string]Role) *Guard {
	return &Guard{auth: a, methods: methods}
}

// ServerOptions install the Guard on a gRPC server: a unary and a stream
// interceptor, to come before any other that trusts the caller.
func (g *Guard) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(g.unary), grpc.ChainStreamInterceptor(g.stream)}
}

func (g *Guard) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := g.check(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (g *Guard) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := g.check(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, &identityStream{ServerStream: ss, ctx: ctx})
}

// identityStream is a server stream whose context carries the identity.
type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }

// TapHandle is the Guard as a gRPC server's InTapHandle: it decides a
// call from its headers before the server reads the request, so a caller
// without the role costs no read or admission (the OTLP port's large
// Exports). The interceptors still run after it.
func (g *Guard) TapHandle(ctx context.Context, info *tap.Info) (context.Context, error) {
	return g.checkMD(ctx, info.Header, info.FullMethodName)
}

// check authorizes a gRPC call and returns ctx with the caller's identity.
func (g *Guard) check(ctx context.Context, method string) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return g.checkMD(ctx, md, method)
}

// checkMD authorizes a call of method with headers md on the connection
// whose peer ctx holds.
func (g *Guard) checkMD(ctx context.Context, md metadata.MD, method string) (context.Context, error) {
	token := ""
	if v := md.Get("authorization"); len(v) > 0 {
		token = bearer(v[0])
	}
	var cert *x509.Certificate
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			cert = verifiedLeaf(&ti.State)
		}
	}
	id, code, err := g.authorize(method, token, cert)
	if err != nil {
		return nil, status.Error(code, err.Error())
	}
	return withIdentity(ctx, id), nil
}

// authorize decides a call of method: the caller's identity, or the
// code and error to refuse it with. A method missing from the table is
// PermissionDenied.
func (g *Guard) authorize(method, token string, cert *x509.Certificate) (Identity, codes.Code, error) {
	role, ok := g.methods[method]
	if !ok {
		return Identity{}, codes.PermissionDenied, errors.New(method + " has no role in abmeshd's method table")
	}
	return g.authorizeRole(role, method, token, cert)
}

// authorizeRole decides a call of what, which needs role.
func (g *Guard) authorizeRole(role Role, what, token string, cert *x509.Certificate) (Identity, codes.Code, error) {
	if role == Public {
		return Identity{}, codes.OK, nil
	}
	id, err := g.auth.Authenticate(token, cert)
	if err != nil {
		return Identity{}, codes.Unauthenticated, err
	}
	if !id.Roles.Has(role) {
		return Identity{}, codes.PermissionDenied, fmt.Errorf("%s %q (%s) lacks role %s for %s", id.Kind, id.Name, id.Roles, role, what)
	}
	return id, codes.OK, nil
}

// bearer returns the token of an "Bearer TOKEN" header value, "" when it
// is not one.
func bearer(v string) string {
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// requestToken returns the token of an HTTP request: from tokenHeader
// alone when it is set (Authorization is then the proxied request's, and
// must not decide), else from Authorization, Bearer or Basic's password.
func requestToken(r *http.Request, tokenHeader string) string {
	if tokenHeader != "" {
		return r.Header.Get(tokenHeader)
	}
	if tok := bearer(r.Header.Get("Authorization")); tok != "" {
		return tok
	}
	_, pass, _ := r.BasicAuth()
	return pass
}

// verifiedLeaf returns the client certificate the TLS handshake verified
// against the client CAs, nil when there is none.
func verifiedLeaf(cs *tls.ConnectionState) *x509.Certificate {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	return cs.VerifiedChains[0][0]
}

// HTTP returns next behind the Guard: every request needs role. The token
// is read from the Authorization header as "Bearer TOKEN" or as the
// password of Basic authentication (what a browser can send: the pages
// then prompt for it), or, when tokenHeader is not empty, from that header
// alone, as the bare token (for the forward-auth endpoint, where
// Authorization belongs to the proxied request). No identity answers 401 with a
// WWW-Authenticate challenge (Basic too when tokenHeader is empty), the
// wrong role 403.
func (g *Guard) HTTP(role Role, tokenHeader string, next http.Handler) http.Handler {
	return g.httpGuard(tokenHeader, tokenHeader == "", next, func(r *http.Request, token string, cert *x509.Certificate) (Identity, codes.Code, error) {
		return g.authorizeRole(role, r.URL.Path, token, cert)
	})
}

// HTTPByPath returns next behind the Guard with the role of the method
// table's entry for the request's URL path: the Connect protocol's
// "/pkg.Service/Method" paths are gRPC full method names.
func (g *Guard) HTTPByPath(next http.Handler) http.Handler {
	return g.httpGuard("", false, next, func(r *http.Request, token string, cert *x509.Certificate) (Identity, codes.Code, error) {
		return g.authorize(r.URL.Path, token, cert)
	})
}

// httpGuard serves a request that decide lets through with its caller's
// identity in the context, and answers 401 (challenging Basic too when
// basic) or 403 to the others.
func (g *Guard) httpGuard(tokenHeader string, basic bool, next http.Handler, decide func(*http.Request, string, *x509.Certificate) (Identity, codes.Code, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := requestToken(r, tokenHeader)
		cs := r.TLS
		if cs == nil {
			cs = connState(r.Context())
		}
		id, code, err := decide(r, token, verifiedLeaf(cs))
		switch code {
		case codes.OK:
			next.ServeHTTP(w, r.WithContext(withIdentity(r.Context(), id)))
		case codes.Unauthenticated:
			if basic {
				w.Header().Add("WWW-Authenticate", `Basic realm="abmesh", charset="UTF-8"`)
			}
			w.Header().Add("WWW-Authenticate", `Bearer realm="abmesh"`)
			http.Error(w, err.Error(), http.StatusUnauthorized)
		default:
			http.Error(w, err.Error(), http.StatusForbidden)
		}
	})
}
