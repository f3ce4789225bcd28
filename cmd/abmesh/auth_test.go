package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/abmesh/abmesh/internal/auth"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit/authtest"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

// TestCLIAuth runs the CLI against abmeshd with TLS, mTLS and an auth
// file: without credentials it is told to give --token; a reader reads but
// cannot apply; an admin ($ABMESH_TOKEN) applies and the audit log names
// the token, not --actor; a token made by "token new" works once its line
// is in the file; a client certificate is an identity.
func TestCLIAuth(t *testing.T) {
	pki := authtest.NewPKI(t, "cli CA")
	file, toks := authtest.WriteAuthFile(t, t.TempDir(), "cert CN=ops-laptop reader")
	d := daemontest.Start(t, func(c *daemon.Config) {
		c.Security = daemon.SecurityConfig{AuthFile: file, TLSCert: pki.ServerCert, TLSKey: pki.ServerKey, ClientCA: pki.CA}
	})
	tlsArgs := []string{"--tls-ca", pki.CA}
	as := func(token string, args ...string) (string, error) {
		t.Helper()
		if token != "" {
			args = append([]string{"--token", token}, args...)
		}
		return cli(t, d.Addr(), append(tlsArgs, args...)...)
	}
	if _, err := as("", "get", "experiments"); err == nil || !strings.Contains(err.Error(), "unauthenticated") || !strings.Contains(err.Error(), "--token") {
		t.Errorf("get without a token: %v, want unauthenticated naming --token", err)
	}
	if _, err := as(toks[auth.Reader], "get", "experiments"); err != nil {
		t.Errorf("get as reader: %v", err)
	}
	manifest := historyManifest(t, "team-a")
	if _, err := as(toks[auth.Reader], "apply", "-f", manifest); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("apply as reader: %v, want permission denied", err)
	}
	t.Setenv("ABMESH_TOKEN", toks[auth.Admin])
	if out, err := as("", "--actor", "mallory", "apply", "-f", manifest); err != nil {
		t.Fatalf("apply as admin ($ABMESH_TOKEN): %v\n%s", err, out)
	}
	out, err := as("", "history")
	if err != nil || !strings.Contains(out, " admin@") || strings.Contains(out, "mallory") {
		t.Errorf("history = %v\n%s\nwant the admin token as the actor", err, out)
	}
	t.Setenv("ABMESH_TOKEN", "")

	var made bytes.Buffer
	if err := runCmd(&made, nil, "token new", "ci", "reader,client"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(made.String()), "\n")
	tok, ok1 := strings.CutPrefix(lines[0], "token: ")
	line, ok2 := strings.CutPrefix(lines[len(lines)-1], "auth file line: ")
	if !ok1 || !ok2 || !strings.HasPrefix(line, "token ci reader,client sha256:") {
		t.Fatalf("token new printed\n%s", made.String())
	}
	if _, err := as(tok, "get", "experiments"); err == nil {
		t.Error("a new token worked before it was in the file")
	}
	appendLine(t, file, line)
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := as(tok, "get", "experiments"); err != nil {
		t.Errorf("the new token after Reload: %v", err)
	}

	cert, key := pki.IssueClient(t, "laptop", "ops-laptop")
	if _, err := cli(t, d.Addr(), "--tls-ca", pki.CA, "--tls-client-cert", cert, "--tls-client-key", key, "status"); err != nil {
		t.Errorf("status with a reader's client certificate: %v", err)
	}
	if _, err := cli(t, d.Addr(), "--token", toks[auth.Reader], "status"); err == nil {
		t.Error("plaintext to a TLS abmeshd succeeded")
	}
}

// TestTokenHash: the hash of the argument, as the auth file spells it.
func TestTokenHash(t *testing.T) {
	var out bytes.Buffer
	if err := runCmd(&out, nil, "token hash", "abc"); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != auth.HashToken("abc") || !strings.HasPrefix(got, "sha256:ba7816bf") {
		t.Errorf("token hash abc = %s", got)
	}
	for _, bad := range [][]string{{"token new", "a b", "admin"}, {"token new", "ci", "root"}, {"token new", "ci"}, {"token hash", "a", "b"}} {
		if err := runCmd(&out, nil, bad[0], bad[1:]...); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		t.Fatal(err)
	}
}
