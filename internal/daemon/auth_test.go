package daemon_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/abmesh/abmesh/assign/client"
	"github.com/abmesh/abmesh/internal/auth"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/edge/grpcapi"
	"github.com/abmesh/abmesh/internal/testkit/authtest"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// secured is a started abmeshd with TLS, mTLS and an auth file.
type secured struct {
	d      *daemon.Daemon
	pki    *authtest.PKI
	tokens authtest.Tokens
	file   string // the auth file
}

// startSecured starts abmeshd on every listener with TLS, client CAs and
// an auth file holding a token per role and the cert rules given.
func startSecured(t *testing.T, certRules ...string) *secured {
	t.Helper()
	s := &secured{pki: authtest.NewPKI(t, "test CA")}
	s.file, s.tokens = authtest.WriteAuthFile(t, t.TempDir(), certRules...)
	s.d = daemontest.Start(t, daemontest.OTLP(), daemontest.HTTP(), daemontest.Edge(), func(c *daemon.Config) {
		c.Security = daemon.SecurityConfig{AuthFile: s.file, TLSCert: s.pki.ServerCert, TLSKey: s.pki.ServerKey, ClientCA: s.pki.CA}
	})
	return s
}

// dial connects over TLS with token (none when empty) and the client
// certificate cert/key (none when empty).
func (s *secured) dial(t *testing.T, addr, token, cert, key string) *grpc.ClientConn {
	t.Helper()
	cfg, err := auth.ClientTLS(s.pki.CA, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(client.BearerToken(token)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// call invokes method with an empty request, as a unary call or a stream
// whose first message it waits for, and returns the call's code.
func call(conn *grpc.ClientConn, method string, desc grpc.MethodInfo) codes.Code {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !desc.IsClientStream && !desc.IsServerStream {
		return status.Code(conn.Invoke(ctx, method, &emptypb.Empty{}, &emptypb.Empty{}))
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: desc.IsServerStream, ClientStreams: desc.IsClientStream}, method)
	if err != nil {
		return status.Code(err)
	}
	if err := st.SendMsg(&emptypb.Empty{}); err != nil && !errors.Is(err, context.Canceled) {
		_ = err // the code comes with RecvMsg
	}
	_ = st.CloseSend()
	return status.Code(st.RecvMsg(&emptypb.Empty{}))
}

// intended is the role each method should need, derived from its name
// apart from the daemon's table: the matrix checks the table against it.
func intended(method string) auth.Role {
	svc, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	switch {
	case svc == "abmesh.v1.ExperimentService" && (strings.HasPrefix(name, "Get") || strings.HasPrefix(name, "List")):
		return auth.Reader
	case svc == "abmesh.v1.ExperimentService":
		return auth.Admin
	case svc == "abmesh.v1.ReportService", strings.HasPrefix(svc, "grpc.reflection."):
		return auth.Reader
	case svc == "abmesh.v1.AssignmentService", strings.HasPrefix(svc, "flagd.evaluation."), svc == "envoy.service.auth.v3.Authorization":
		return auth.Client
	case svc == "opentelemetry.proto.collector.trace.v1.TraceService":
		return auth.Ingest
	case svc == "grpc.health.v1.Health":
		return auth.Public
	}
	return 255 // unknown: the test fails on it
}

// TestMethodRoles: every method registered on the API and OTLP ports has
// a role in the table, the role its name says (intended), and the table
// names no method that is not registered.
func TestMethodRoles(t *testing.T) {
	d := daemontest.Start(t, daemontest.OTLP())
	table := daemon.MethodRoles()
	n := 0
	for svc, info := range daemon.Services(d) {
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			n++
			role, ok := table[full]
			if !ok {
				t.Errorf("%s is registered but has no role in methodRoles", full)
				continue
			}
			if role != intended(full) {
				t.Errorf("%s needs %s, want %s", full, role, intended(full))
			}
			delete(table, full)
		}
	}
	for m := range table {
		t.Errorf("methodRoles names %s, which no server registers", m)
	}
	if n < 40 {
		t.Errorf("%d methods registered, want every service's (≥ 40)", n)
	}
}

// TestAuthMatrix calls every registered gRPC method, over TLS, as each
// role's token, with a token the file does not hold, and with none: the
// role the method needs gets past authorization (any code but
// Unauthenticated and PermissionDenied; admin also where reader is
// needed), another role gets PermissionDenied, a bad or missing token
// Unauthenticated. Health is open to all.
func TestAuthMatrix(t *testing.T) {
	s := startSecured(t)
	callers := map[string]string{"none": "", "unknown": auth.NewToken()}
	for r, tok := range s.tokens {
		callers[r.String()] = tok
	}
	calls := 0
	for svc, info := range daemon.Services(s.d) {
		addr := s.d.Addr()
		if strings.HasPrefix(svc, "opentelemetry.") {
			addr = s.d.OTLPAddr()
		}
		for _, m := range info.Methods {
			full := "/" + svc + "/" + m.Name
			need := intended(full)
			for name, tok := range callers {
				got := call(s.dial(t, addr, tok, "", ""), full, m)
				calls++
				var roles auth.Roles
				if r, ok := roleNamed(name); ok {
					roles = auth.RolesOf(r)
				}
				switch {
				case roles.Has(need):
					if got == codes.Unauthenticated || got == codes.PermissionDenied {
						t.Errorf("%s as %s: %v, want it allowed", full, name, got)
					}
				case name == "none" || name == "unknown":
					if got != codes.Unauthenticated {
						t.Errorf("%s as %s: %v, want Unauthenticated", full, name, got)
					}
				case got != codes.PermissionDenied:
					t.Errorf("%s as %s: %v, want PermissionDenied", full, name, got)
				}
			}
		}
	}
	t.Logf("%d calls", calls)
}

func roleNamed(name string) (auth.Role, bool) {
	for _, r := range authtest.Roles {
		if r.String() == name {
			return r, true
		}
	}
	return 0, false
}

// TestAuthAuditActor: with authentication on, an admin change is recorded
// as made by the token's name (kind token), whatever x-abmesh-actor says.
func TestAuthAuditActor(t *testing.T) {
	s := startSecured(t)
	conn := s.dial(t, s.d.Addr(), s.tokens[auth.Admin], "", "")
	ctx := metadataActor(t.Context(), "mallory")
	ec := pb.NewExperimentServiceClient(conn)
	if _, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp("audited")}); err != nil {
		t.Fatal(err)
	}
	res, err := pb.NewExperimentServiceClient(s.dial(t, s.d.Addr(), s.tokens[auth.Reader], "", "")).ListChanges(t.Context(), &pb.ListChangesRequest{})
	if err != nil || len(res.GetChanges()) != 1 {
		t.Fatalf("ListChanges = %v, %v", res, err)
	}
	if a := res.GetChanges()[0].GetActor(); a.GetKind() != "token" || a.GetName() != "admin" {
		t.Errorf("actor %v, want the admin token", a)
	}
}

// TestMTLSIdentity: a client certificate the CA signed is an identity with
// the roles of the cert rules its CN and OUs match; a token wins over it;
// one matching no rule is Unauthenticated; one from another CA fails the
// handshake.
func TestMTLSIdentity(t *testing.T) {
	s := startSecured(t, "cert CN=checkout client", "cert OU=ops admin")
	ctx := t.Context()
	chk, chkKey := s.pki.IssueClient(t, "checkout", "checkout")
	ops, opsKey := s.pki.IssueClient(t, "ops", "alice", "ops")
	other, otherKey := s.pki.IssueClient(t, "other", "stranger", "elsewhere")

	assign := &pb.AssignRequest{UnitId: "u1", Service: "svc-a"}
	if _, err := pb.NewAssignmentServiceClient(s.dial(t, s.d.Addr(), "", chk, chkKey)).Assign(ctx, assign); err != nil {
		t.Errorf("Assign with the checkout certificate: %v", err)
	}
	_, err := pb.NewReportServiceClient(s.dial(t, s.d.Addr(), "", chk, chkKey)).GetStatus(ctx, &pb.GetStatusRequest{})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("GetStatus with the checkout certificate: %v, want PermissionDenied", err)
	}
	if _, err := pb.NewReportServiceClient(s.dial(t, s.d.Addr(), s.tokens[auth.Reader], chk, chkKey)).GetStatus(ctx, &pb.GetStatusRequest{}); err != nil {
		t.Errorf("GetStatus with a reader token and the checkout certificate: %v", err)
	}
	ec := pb.NewExperimentServiceClient(s.dial(t, s.d.Addr(), "", ops, opsKey))
	if _, err := ec.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: exp("by-cert")}); err != nil {
		t.Fatalf("CreateExperiment with an OU=ops certificate: %v", err)
	}
	res, err := ec.ListChanges(ctx, &pb.ListChangesRequest{})
	if err != nil || len(res.GetChanges()) != 1 || res.GetChanges()[0].GetActor().GetName() != "alice" || res.GetChanges()[0].GetActor().GetKind() != "certificate" {
		t.Errorf("ListChanges = %v, %v; want alice's certificate as the actor", res, err)
	}
	_, err = pb.NewAssignmentServiceClient(s.dial(t, s.d.Addr(), "", other, otherKey)).Assign(ctx, assign)
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("Assign with a certificate matching no rule: %v, want Unauthenticated", err)
	}

	// Go's TLS client offers no certificate the server's CAs did not
	// sign: force one, as an attacker would.
	foreign := authtest.NewPKI(t, "another CA")
	fc, fk := foreign.IssueClient(t, "foreign", "checkout")
	cfg, err := auth.ClientTLS(s.pki.CA, fc, fk)
	if err != nil {
		t.Fatal(err)
	}
	forged := cfg.Certificates[0]
	cfg.Certificates = nil
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &forged, nil }
	conn, err := grpc.NewClient(s.d.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = pb.NewAssignmentServiceClient(conn).Assign(ctx, assign)
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("Assign with another CA's certificate: %v, want the handshake refused (Unavailable)", err)
	}
}

// TestAuthPlaintextRefused: a TLS listener does not answer plaintext gRPC.
func TestAuthPlaintextRefused(t *testing.T) {
	s := startSecured(t)
	conn := daemontest.Dial(t, s.d.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	_, err := pb.NewReportServiceClient(conn).GetStatus(ctx, &pb.GetStatusRequest{})
	if status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("plaintext GetStatus on a TLS port: %v, want it refused", err)
	}
}

// TestAuthHTTP: the pages and /metrics answer 401 without credentials,
// 403 to a role other than reader, 200 to reader and admin; the
// flagd API's Connect protocol on the API port needs client; the
// forward-auth endpoint takes the client role's token in X-Abmesh-Token.
func TestAuthHTTP(t *testing.T) {
	s := startSecured(t)
	cfg, err := auth.ClientTLS(s.pki.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
	get := func(url, header, value string) int {
		method, body := http.MethodGet, io.Reader(nil)
		if strings.Contains(url, "flagd") { // Connect: a JSON POST
			method, body = http.MethodPost, strings.NewReader(`{"flagKey":"x"}`)
		}
		req, err := http.NewRequestWithContext(t.Context(), method, url, body)
		req.Header.Set("Content-Type", "application/json")
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			req.Header.Set(header, value)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusUnauthorized && res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s: 401 without WWW-Authenticate", url)
		}
		return res.StatusCode
	}
	bearer := func(r auth.Role) string { return "Bearer " + s.tokens[r] }
	basic := func(r auth.Role) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte("anyone:"+s.tokens[r]))
	}
	pages := "https://" + s.d.HTTPAddr()
	connect := "https://" + s.d.Addr() + "/flagd.evaluation.v1.Service/ResolveBoolean" // HTTP/1.1 on the API port
	for _, c := range []struct {
		url, header, value string
		want               int
	}{
		{pages + "/", "", "", http.StatusUnauthorized},
		{pages + "/", "Authorization", "Bearer nonsense", http.StatusUnauthorized},
		{pages + "/", "Authorization", bearer(auth.Client), http.StatusForbidden},
		{pages + "/", "Authorization", bearer(auth.Ingest), http.StatusForbidden},
		{pages + "/", "Authorization", bearer(auth.Reader), http.StatusOK},
		{pages + "/", "Authorization", bearer(auth.Admin), http.StatusOK},
		{pages + "/", "Authorization", basic(auth.Reader), http.StatusOK}, // a browser's login prompt
		{pages + "/", "Authorization", basic(auth.Client), http.StatusForbidden},
		{pages + "/metrics", "", "", http.StatusUnauthorized},
		{pages + "/metrics", "Authorization", bearer(auth.Client), http.StatusForbidden},
		{pages + "/metrics", "Authorization", bearer(auth.Reader), http.StatusOK},
		{connect, "", "", http.StatusUnauthorized},
		{connect, "Authorization", bearer(auth.Reader), http.StatusForbidden},
		{connect, "Authorization", bearer(auth.Client), http.StatusNotFound}, // past auth: no flag x
		{"https://" + s.d.EdgeAddr() + "/auth?service=svc-a", "", "", http.StatusUnauthorized},
		{"https://" + s.d.EdgeAddr() + "/auth?service=svc-a", daemon.EdgeTokenHeader, s.tokens[auth.Reader], http.StatusForbidden},
		{"https://" + s.d.EdgeAddr() + "/auth?service=svc-a", daemon.EdgeTokenHeader, s.tokens[auth.Client], http.StatusOK},
		// The user's own Authorization, passed on by the proxy, decides nothing.
		{"https://" + s.d.EdgeAddr() + "/auth?service=svc-a", "Authorization", bearer(auth.Client), http.StatusUnauthorized},
	} {
		if got := get(c.url, c.header, c.value); got != c.want {
			t.Errorf("GET %s with %s %.12q: %d, want %d", c.url, c.header, c.value, got, c.want)
		}
	}
}

// TestAuthReload: a token added to the auth file works once Reload (what
// SIGHUP calls) ran, and a removed one stops working; a file that does
// not parse leaves the rules in force.
func TestAuthReload(t *testing.T) {
	s := startSecured(t)
	fresh := auth.NewToken()
	status1 := func(tok string) codes.Code {
		_, err := pb.NewReportServiceClient(s.dial(t, s.d.Addr(), tok, "", "")).GetStatus(t.Context(), &pb.GetStatusRequest{})
		return status.Code(err)
	}
	if got := status1(fresh); got != codes.Unauthenticated {
		t.Fatalf("a token not yet in the file: %v", got)
	}
	if err := os.WriteFile(s.file, []byte(auth.TokenLine("newcomer", auth.RolesOf(auth.Reader), fresh)), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := status1(fresh); got != codes.Unauthenticated {
		t.Errorf("before Reload: %v, want Unauthenticated", got)
	}
	if err := s.d.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := status1(fresh); got != codes.OK {
		t.Errorf("the new token after Reload: %v, want OK", got)
	}
	if got := status1(s.tokens[auth.Reader]); got != codes.Unauthenticated {
		t.Errorf("a removed token after Reload: %v, want Unauthenticated", got)
	}
	if err := os.WriteFile(s.file, []byte("token broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.d.Reload(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("Reload of a broken file: %v, want an error naming line 1", err)
	}
	if got := status1(fresh); got != codes.OK {
		t.Errorf("after a failed Reload: %v, want the rules in force kept", got)
	}
}

// TestCertReload: a new server certificate written over the files is
// served without a restart: at once after Reload, and within a few
// seconds by the change check alone.
func TestCertReload(t *testing.T) {
	s := startSecured(t)
	before := s.pki.Serial(t, s.d.Addr())
	s.pki.IssueServer(t, "server") // same files, new serial
	if err := s.d.Reload(); err != nil {
		t.Fatal(err)
	}
	after := s.pki.Serial(t, s.d.Addr())
	if after == before {
		t.Fatalf("serial %d after Reload, want the new certificate", after)
	}
	for _, addr := range []string{s.d.OTLPAddr(), s.d.HTTPAddr(), s.d.EdgeAddr()} {
		if got := s.pki.Serial(t, addr); got != after {
			t.Errorf("%s serves serial %d, want %d", addr, got, after)
		}
	}
	time.Sleep(1100 * time.Millisecond) // past the check interval, so the change is seen
	s.pki.IssueServer(t, "server")
	deadline := time.Now().Add(5 * time.Second)
	for s.pki.Serial(t, s.d.Addr()) == after {
		if time.Now().After(deadline) {
			t.Fatal("a changed certificate file was not picked up without Reload")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestInsecureRefusal: a listen address other hosts can reach, without
// TLS and authentication, is refused naming --insecure; with --insecure,
// or with TLS and an auth file, it starts.
func TestInsecureRefusal(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*daemon.Config)
		ok   bool
	}{
		{"all interfaces", func(c *daemon.Config) { c.Listen = ":0" }, false},
		{"0.0.0.0 pages", func(c *daemon.Config) { c.HTTPListen = "0.0.0.0:0" }, false},
		{"auth without TLS", func(c *daemon.Config) { c.Listen = "0.0.0.0:0"; c.Security.AuthFile = "x" }, false},
		{"--insecure", func(c *daemon.Config) { c.Listen = "0.0.0.0:0"; c.Security.Insecure = true }, true},
		{"localhost", func(c *daemon.Config) { c.Listen = "localhost:0" }, true},
		{"::1", func(c *daemon.Config) { c.Listen = "[::1]:0" }, true},
	} {
		cfg := daemontest.Config(t, c.set)
		err := cfg.Validate()
		if c.ok != (err == nil) {
			t.Errorf("%s: Validate = %v", c.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--insecure") {
			t.Errorf("%s: %v does not name --insecure", c.name, err)
		}
	}
	s := authtest.NewPKI(t, "ca")
	file, _ := authtest.WriteAuthFile(t, t.TempDir())
	cfg := daemontest.Config(t, func(c *daemon.Config) {
		c.Listen = "0.0.0.0:0"
		c.Security = daemon.SecurityConfig{AuthFile: file, TLSCert: s.ServerCert, TLSKey: s.ServerKey}
	})
	if err := cfg.Validate(); err != nil {
		t.Errorf("0.0.0.0 with TLS and auth: %v", err)
	}
}

// metadataActor is ctx declaring actor name in x-abmesh-actor.
func metadataActor(ctx context.Context, name string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, grpcapi.ActorHeader, name)
}

// TestOTLPRefusedBeforeReading: an Export without the ingest role is
// refused from its headers: the receiver never counts, admits or reads it
// (otlp.requests stays 0), while an ingest token's Export is counted.
func TestOTLPRefusedBeforeReading(t *testing.T) {
	s := startSecured(t)
	export := func(tok string) codes.Code {
		conn := s.dial(t, s.d.OTLPAddr(), tok, "", "")
		return status.Code(conn.Invoke(t.Context(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &emptypb.Empty{}, &emptypb.Empty{}))
	}
	requests := func() int64 {
		for k, v := range s.d.Counts() {
			if k == "otlp.requests" {
				return v
			}
		}
		t.Fatal("no otlp.requests in Counts")
		return 0
	}
	for tok, want := range map[string]codes.Code{"": codes.Unauthenticated, auth.NewToken(): codes.Unauthenticated, s.tokens[auth.Client]: codes.PermissionDenied} {
		if got := export(tok); got != want {
			t.Errorf("Export with token %.8q: %v, want %v", tok, got, want)
		}
	}
	if n := requests(); n != 0 {
		t.Errorf("otlp.requests = %d after refused Exports, want 0 (refused before the receiver)", n)
	}
	if got := export(s.tokens[auth.Ingest]); got != codes.OK {
		t.Errorf("Export as ingest: %v", got)
	}
	if n := requests(); n != 1 {
		t.Errorf("otlp.requests = %d after one accepted Export, want 1", n)
	}
}

// TestEdgeMTLS: a proxy that authenticates to the forward-auth endpoint
// by its client certificate is let through although the user's request it
// passes on carries an Authorization header of its own.
func TestEdgeMTLS(t *testing.T) {
	s := startSecured(t, "cert CN=edge-proxy client")
	cert, key := s.pki.IssueClient(t, "proxy", "edge-proxy")
	cfg, err := auth.ClientTLS(s.pki.CA, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+s.d.EdgeAddr()+"/auth?service=svc-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer the-users-own-token")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("forward-auth with the proxy's certificate: %d, want 200", res.StatusCode)
	}
}

// TestPrometheusScrapesWithAuth: a real Prometheus scrapes /metrics over
// TLS with the reader token (as docs/operations.md configures it) and
// reads a series back; abmeshd counts the refused calls by code.
func TestPrometheusScrapesWithAuth(t *testing.T) {
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Skipf("prometheus is not installed (%v): apt-get install prometheus", err)
	}
	s := startSecured(t)
	if _, err := pb.NewReportServiceClient(s.dial(t, s.d.Addr(), s.tokens[auth.Client], "", "")).GetStatus(t.Context(), &pb.GetStatusRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("GetStatus as client: %v", err)
	}
	api := startPrometheus(t, s.d.HTTPAddr(), "scheme: https", "tls_config: {ca_file: "+s.pki.CA+"}",
		"authorization: {credentials: "+s.tokens[auth.Reader]+"}")
	const query = `grpc_server_handled_total{job="abmesh",grpc_method="GetStatus",grpc_code="PermissionDenied"}`
	var got float64
	var err error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		if got, err = promQuery(api, query); err == nil && got == 1 {
			break
		}
	}
	if err != nil || got != 1 {
		t.Errorf("Prometheus: %s = %v (%v), want 1", query, got, err)
	}
}
