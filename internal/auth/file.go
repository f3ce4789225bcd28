package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
)

// Identity is an authenticated caller.
type Identity struct {
	// Name is the token's name in the auth file, or the certificate's
	// subject common name.
	Name string
	// Kind says how the caller was authenticated: KindToken or
	// KindCertificate.
	Kind string
	// Roles are what the caller may do.
	Roles Roles
}

// Kinds of Identity.
const (
	KindToken       = "token"
	KindCertificate = "certificate"
)

// Errors of Authenticate. Both mean Unauthenticated.
var (
	ErrNoCredentials = errors.New("no credentials: send a bearer token or a client certificate")
	ErrUnknownToken  = errors.New("unknown bearer token")
	ErrUnknownCert   = errors.New("client certificate subject matches no cert rule")
)

// rules is one reading of the auth file.
type rules struct {
	tokens []tokenRule
	certs  []certRule
}

type tokenRule struct {
	name  string
	hash  [sha256.Size]byte
	roles Roles
}

type certRule struct {
	field string // "CN" or "OU"
	value string
	roles Roles
}

// HashToken returns the auth file's spelling of a token: "sha256:" and
// the hex SHA-256 of its bytes.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(h[:])
}

// parseRules reads an auth file's text; errors name the line.
func parseRules(b []byte) (*rules, error) {
	rs := &rules{}
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var err error
		switch {
		case f[0] == "token" && len(f) == 4:
			err = rs.addToken(f[1], f[2], f[3], names)
		case f[0] == "cert" && len(f) == 3:
			err = rs.addCert(f[1], f[2])
		default:
			err = errors.New(`want "token NAME ROLES sha256:HEX" or "cert CN=VALUE|OU=VALUE ROLES"`)
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	return rs, sc.Err()
}

func (rs *rules) addToken(name, roles, hash string, names map[string]bool) error {
	if names[name] {
		return fmt.Errorf("token name %q given twice", name)
	}
	names[name] = true
	t := tokenRule{name: name}
	var err error
	if t.roles, err = ParseRoles(roles); err != nil {
		return err
	}
	hexHash, ok := strings.CutPrefix(hash, "sha256:")
	if n, err := hex.Decode(t.hash[:], []byte(hexHash)); !ok || err != nil || n != sha256.Size || len(hexHash) != 2*sha256.Size {
		return fmt.Errorf("token %q: hash %q: want sha256: and 64 hex digits (abmesh token hash)", name, hash)
	}
	rs.tokens = append(rs.tokens, t)
	return nil
}

func (rs *rules) addCert(subject, roles string) error {
	field, value, ok := strings.Cut(subject, "=")
	if !ok || (field != "CN" && field != "OU") || value == "" {
		return fmt.Errorf("cert subject %q: want CN=VALUE or OU=VALUE", subject)
	}
	set, err := ParseRoles(roles)
	if err != nil {
		return err
	}
	rs.certs = append(rs.certs, certRule{field: field, value: value, roles: set})
	return nil
}

// token finds the rule of a presented token. Every rule's hash is
// compared in constant time, so the time taken says nothing about which
// rule, if any, matched.
func (rs *rules) token(tok string) (Identity, bool) {
	h := sha256.Sum256([]byte(tok))
	match := -1
	for i := range rs.tokens {
		if subtle.ConstantTimeCompare(h[:], rs.tokens[i].hash[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return Identity{}, false
	}
	t := rs.tokens[match]
	return Identity{Name: t.name, Kind: KindToken, Roles: t.roles}, true
}

// cert returns the identity of a verified client certificate: its CN as
// the name, and the roles of every rule its CN or one of its OUs matches.
func (rs *rules) cert(c *x509.Certificate) (Identity, bool) {
	id := Identity{Name: c.Subject.CommonName, Kind: KindCertificate}
	matched := false
	for _, r := range rs.certs {
		if r.field == "CN" && r.value == c.Subject.CommonName || r.field == "OU" && slices.Contains(c.Subject.OrganizationalUnit, r.value) {
			id.Roles |= r.roles
			matched = true
		}
	}
	if id.Name == "" {
		id.Name = c.Subject.String()
	}
	return id, matched
}

// Authenticator maps credentials to identities by the rules of an auth
// file. It is safe for concurrent use; Reload swaps the rules atomically.
type Authenticator struct {
	path  string
	rules atomic.Pointer[rules]
}

// Load reads the auth file at path.
func Load(path string) (*Authenticator, error) {
	a := &Authenticator{path: path}
	if err := a.Reload(); err != nil {
		return nil, err
	}
	return a, nil
}

// Reload rereads the auth file. On error the rules in force stay.
func (a *Authenticator) Reload() error {
	b, err := os.ReadFile(a.path)
	if err != nil {
		return fmt.Errorf("auth file: %w", err)
	}
	rs, err := parseRules(b)
	if err != nil {
		return fmt.Errorf("auth file %s: %w", a.path, err)
	}
	a.rules.Store(rs)
	return nil
}

// Counts returns how many token and cert rules are in force.
func (a *Authenticator) Counts() (tokens, certs int) {
	rs := a.rules.Load()
	return len(rs.tokens), len(rs.certs)
}

// Authenticate returns the identity of a call that presented token (""
// for none) and, when the listener verified one, the client certificate
// chain's leaf (nil for none). A token, when given, decides alone.
func (a *Authenticator) Authenticate(token string, cert *x509.Certificate) (Identity, error) {
	rs := a.rules.Load()
	switch {
	case token != "":
		if id, ok := rs.token(token); ok {
			return id, nil
		}
		return Identity{}, ErrUnknownToken
	case cert != nil:
		if id, ok := rs.cert(cert); ok {
			return id, nil
		}
		return Identity{}, ErrUnknownCert
	}
	return Identity{}, ErrNoCredentials
}

// NewToken returns a fresh random bearer token: 32 bytes from crypto/rand,
// base64url. Print it once and keep only its TokenLine.
func NewToken() string {
	return base64.RawURLEncoding.EncodeToString(randBytes(32))
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return b
}

// TokenLine returns the auth file's line for a token named name with
// roles.
func TokenLine(name string, roles Roles, token string) string {
	return fmt.Sprintf("token %s %s %s\n", name, roles, HashToken(token))
}
