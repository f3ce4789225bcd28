package auth

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
)

// TestHashToken: the auth file's spelling is sha256: and the hex digest,
// checked against the well-known SHA-256 of "abc".
func TestHashToken(t *testing.T) {
	const want = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := HashToken("abc"); got != want {
		t.Errorf("HashToken(abc) = %s, want %s", got, want)
	}
}

func TestRoles(t *testing.T) {
	s, err := ParseRoles("admin,ingest")
	if err != nil || s.String() != "admin,ingest" {
		t.Fatalf("ParseRoles = %v, %v", s, err)
	}
	for r, want := range map[Role]bool{Admin: true, Reader: true, Client: false, Ingest: true, Public: true} {
		if s.Has(r) != want {
			t.Errorf("admin,ingest has %s = %v", r, !want)
		}
	}
	if RolesOf(Reader).Has(Admin) {
		t.Error("reader includes admin")
	}
	for _, bad := range []string{"", "root", "admin,", "public", "Admin"} {
		if _, err := ParseRoles(bad); err == nil {
			t.Errorf("ParseRoles(%q) accepted", bad)
		}
	}
}

// TestParseRulesErrors: each malformed line is refused naming its number.
func TestParseRulesErrors(t *testing.T) {
	good := TokenLine("a", RolesOf(Admin), "t")
	for _, c := range []struct{ text, want string }{
		{"token a admin", "line 1"},
		{"# c\n" + good + "token b admin sha256:00", "line 3"},
		{"token a admin md5:" + strings.Repeat("0", 64), "line 1"},
		{"token a root " + HashToken("t"), "unknown role"},
		{good + good, "given twice"},
		{"cert CN= client", "CN=VALUE"},
		{"cert O=x client", "CN=VALUE"},
		{"user a admin x", "line 1"},
	} {
		if _, err := parseRules([]byte(c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseRules(%q) = %v, want an error with %q", c.text, err, c.want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth")
	text := TokenLine("ci", RolesOf(Reader, Client), "s3cret") + "cert CN=checkout client # a service\ncert OU=ops admin\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if tok, certs := a.Counts(); tok != 1 || certs != 2 {
		t.Errorf("Counts = %d, %d", tok, certs)
	}
	id, err := a.Authenticate("s3cret", nil)
	if err != nil || id.Name != "ci" || id.Kind != KindToken || id.Roles != RolesOf(Reader, Client) {
		t.Errorf("token: %+v, %v", id, err)
	}
	if _, err := a.Authenticate("s3cret ", nil); !errors.Is(err, ErrUnknownToken) {
		t.Errorf("a near token: %v", err)
	}
	cert := func(cn string, ous ...string) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn, OrganizationalUnit: ous}}
	}
	id, err = a.Authenticate("", cert("alice", "eng", "ops"))
	if err != nil || id.Name != "alice" || id.Kind != KindCertificate || id.Roles != RolesOf(Admin) {
		t.Errorf("OU=ops: %+v, %v", id, err)
	}
	id, err = a.Authenticate("", cert("checkout", "ops"))
	if err != nil || id.Roles != RolesOf(Admin, Client) {
		t.Errorf("CN=checkout OU=ops: %+v, %v; want both rules' roles", id, err)
	}
	if _, err := a.Authenticate("", cert("checkout2")); !errors.Is(err, ErrUnknownCert) {
		t.Errorf("a CN matching no rule: %v", err)
	}
	if _, err := a.Authenticate("wrong", cert("checkout")); !errors.Is(err, ErrUnknownToken) {
		t.Errorf("a wrong token with a good certificate: %v, want the token to decide", err)
	}
	if _, err := a.Authenticate("", nil); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("nothing: %v", err)
	}
}

// BenchmarkAuthenticateToken: the cost a call pays with 100 tokens in the
// file (each compared, in constant time).
func BenchmarkAuthenticateToken(b *testing.B) {
	var text strings.Builder
	for i := range 100 {
		text.WriteString(TokenLine("t"+strings.Repeat("x", i), RolesOf(Client), NewToken()))
	}
	rs, err := parseRules([]byte(text.String()))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rs.token("not-a-token")
	}
}

func FuzzParseRules(f *testing.F) {
	f.Add([]byte(TokenLine("a", RolesOf(Admin, Client), "t") + "cert CN=x reader\n# c\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := parseRules(b)
		if err == nil && rs == nil {
			t.Fatal("nil rules without an error")
		}
	})
}

// BenchmarkGuardCheck: what authorization adds to a gRPC call with a
// valid token among 10 in the file (hash, compares, table lookup, context).
func BenchmarkGuardCheck(b *testing.B) {
	var text strings.Builder
	tok := NewToken()
	for i := range 9 {
		text.WriteString(TokenLine("t"+strings.Repeat("x", i), RolesOf(Reader), NewToken()))
	}
	text.WriteString(TokenLine("sdk", RolesOf(Client), tok))
	a := &Authenticator{}
	rs, err := parseRules([]byte(text.String()))
	if err != nil {
		b.Fatal(err)
	}
	a.rules.Store(rs)
	g := NewGuard(a, map[string]Role{"/s/M": Client})
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
	for b.Loop() {
		if _, err := g.check(ctx, "/s/M"); err != nil {
			b.Fatal(err)
		}
	}
}
