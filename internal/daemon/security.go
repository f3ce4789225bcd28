package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/http"

	"google.golang.org/grpc"

	"github.com/abmesh/abmesh/internal/auth"
)

// SecurityConfig turns on authentication and TLS. Its zero value is
// neither: abmeshd then serves loopback addresses only, unless Insecure.
type SecurityConfig struct {
	// AuthFile holds bearer token hashes and client certificate subjects
	// with their roles (package auth documents its lines). Empty: no
	// authentication, every call is allowed.
	AuthFile string
	// TLSCert and TLSKey are the PEM certificate and key every listener
	// serves TLS with (API, OTLP, pages, forward-auth). Empty: plaintext.
	TLSCert, TLSKey string
	// ClientCA verifies client certificates (mTLS) whose subjects AuthFile
	// maps to roles. It needs TLSCert and AuthFile.
	ClientCA string
	// Insecure allows a listen address that is not loopback without TLS
	// and authentication.
	Insecure bool
}

// validate checks the security flags and that no listener reachable from
// other hosts is left open; errors name the flags.
func (s *SecurityConfig) validate(listens [][2]string) error {
	var errs []error
	if (s.TLSCert == "") != (s.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if s.ClientCA != "" && s.TLSCert == "" {
		errs = append(errs, errors.New("--client-ca needs --tls-cert and --tls-key (mTLS is TLS)"))
	}
	if s.ClientCA != "" && s.AuthFile == "" {
		errs = append(errs, errors.New("--client-ca needs --auth-file to map certificate subjects to roles"))
	}
	if s.Insecure || s.AuthFile != "" && s.TLSCert != "" {
		return errors.Join(errs...)
	}
	for _, l := range listens {
		if l[1] == "" || l[1] == "off" || isLoopback(l[1]) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s %s is not a loopback address: abmeshd serves other hosts only with TLS (--tls-cert, --tls-key) and authentication (--auth-file); give --insecure to serve it without", l[0], l[1]))
	}
	return errors.Join(errs...)
}

// isLoopback says whether addr (HOST:PORT) can be reached from this host
// only: a loopback IP or "localhost". An empty host means every
// interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// security is what SecurityConfig starts: the Guard when authentication
// is on, the TLS configuration when TLS is.
type security struct {
	authn *auth.Authenticator // nil: no authentication
	guard *auth.Guard
	tls   *auth.ServerTLS // nil: plaintext
}

// startSecurity reads the auth file and the TLS files.
func (d *Daemon) startSecurity() error {
	s := d.cfg.Security
	var err error
	if s.AuthFile != "" {
		if d.sec.authn, err = auth.Load(s.AuthFile); err != nil {
			return fmt.Errorf("--auth-file: %w", err)
		}
		d.sec.guard = auth.NewGuard(d.sec.authn, methodRoles)
	}
	if s.TLSCert != "" {
		if d.sec.tls, err = auth.NewServerTLS(s.TLSCert, s.TLSKey, s.ClientCA, d.log); err != nil {
			return err
		}
	}
	return nil
}

// listen listens on addr (its flag named in errors), in TLS when on.
func (d *Daemon) listen(flag, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, flag, err)
	}
	if d.sec.tls != nil {
		l = d.sec.tls.Listen(l)
	}
	return l, nil
}

// grpcOptions are a gRPC server's transport and authorization options:
// the Guard's interceptors run after the metrics' (refusals are counted).
func (d *Daemon) grpcOptions() []grpc.ServerOption {
	var opts []grpc.ServerOption
	if d.sec.tls != nil {
		opts = append(opts, grpc.Creds(auth.PassthroughCredentials()))
	}
	if d.sec.guard != nil {
		opts = append(opts, d.sec.guard.ServerOptions()...)
	}
	return opts
}

// guardHTTP returns h behind the Guard with role, unchanged when
// authentication is off.
func (d *Daemon) guardHTTP(role auth.Role, tokenHeader string, h http.Handler) http.Handler {
	if d.sec.guard == nil {
		return h
	}
	return d.sec.guard.HTTP(role, tokenHeader, h)
}

// EdgeTokenHeader is the request header in which a proxy sends its bearer
// token (bare) to the forward-auth endpoint: Authorization there is the
// proxied request's own.
const EdgeTokenHeader = "X-Abmesh-Token"

// Reload rereads the auth file and the TLS files (abmeshd does on
// SIGHUP). What fails to load leaves what is in force.
func (d *Daemon) Reload() error {
	var errs []error
	if d.sec.authn != nil {
		errs = append(errs, d.sec.authn.Reload())
	}
	if d.sec.tls != nil {
		errs = append(errs, d.sec.tls.Reload())
	}
	return errors.Join(errs...)
}

// AuthOn says whether callers are authenticated.
func (d *Daemon) AuthOn() bool { return d.sec.guard != nil }
