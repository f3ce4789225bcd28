// Package authtest makes what tests of authentication and TLS need: an
// auth file with a token for each role, and a certificate authority with
// server and client certificates (ECDSA P-256), written to files.
package authtest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/auth"
)

// Roles are the callers a test plays: one token each.
var Roles = []auth.Role{auth.Admin, auth.Reader, auth.Client, auth.Ingest}

// Tokens are the bearer tokens of an auth file, by role.
type Tokens map[auth.Role]string

// WriteAuthFile writes dir/auth with a token named after each of Roles
// (holding that role alone) and the extra lines given, and returns its
// path and the tokens.
func WriteAuthFile(t testing.TB, dir string, extra ...string) (string, Tokens) {
	t.Helper()
	toks := Tokens{}
	var b strings.Builder
	for _, r := range Roles {
		toks[r] = auth.NewToken()
		b.WriteString(auth.TokenLine(r.String(), auth.RolesOf(r), toks[r]))
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	path := filepath.Join(dir, "auth")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, toks
}

// PKI is a test certificate authority and the files of its certificates.
type PKI struct {
	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
	// CA is the CA certificate's file (PEM).
	CA string
	// ServerCert and ServerKey are a server certificate for 127.0.0.1,
	// ::1 and localhost.
	ServerCert, ServerKey string
}

// NewPKI makes a CA named name and a server certificate in a temporary
// directory.
func NewPKI(t testing.TB, name string) *PKI {
	t.Helper()
	p := &PKI{dir: t.TempDir()}
	p.caKey = newKey(t)
	tmpl := p.template(pkix.Name{CommonName: name})
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.CA = filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.CA, "CERTIFICATE", der)
	p.ServerCert, p.ServerKey = p.IssueServer(t, "server")
	return p
}

// IssueServer writes a new server certificate for the loopback addresses
// to FILE.pem and FILE-key.pem and returns their paths.
func (p *PKI) IssueServer(t testing.TB, file string) (cert, key string) {
	t.Helper()
	tmpl := p.template(pkix.Name{CommonName: "abmeshd"})
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	tmpl.DNSNames = []string{"localhost"}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	return p.issue(t, file, tmpl)
}

// IssueClient writes a client certificate with subject CN and OUs to
// FILE.pem and FILE-key.pem and returns their paths.
func (p *PKI) IssueClient(t testing.TB, file, cn string, ous ...string) (cert, key string) {
	t.Helper()
	tmpl := p.template(pkix.Name{CommonName: cn, OrganizationalUnit: ous})
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	return p.issue(t, file, tmpl)
}

func (p *PKI) template(subject pkix.Name) *x509.Certificate {
	p.serial++
	return &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
}

func (p *PKI) issue(t testing.TB, file string, tmpl *x509.Certificate) (string, string) {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, keyFile := filepath.Join(p.dir, file+".pem"), filepath.Join(p.dir, file+"-key.pem")
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	writePEM(t, cert, "CERTIFICATE", der)
	return cert, keyFile
}

// Serial returns the serial number of the certificate a TLS server at
// addr presents, verified against the CA.
func (p *PKI) Serial(t testing.TB, addr string) int64 {
	t.Helper()
	cfg, err := auth.ClientTLS(p.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writePEM writes a PEM block to path through a rename, so a reader sees
// the old file or the new one, whole.
func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
