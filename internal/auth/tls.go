package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"
)

// ServerTLS is a listener's TLS configuration whose certificate, key and
// client CAs are read again when one of their files changes (checked at
// most once a second, at a handshake) or on Reload, without a restart.
// With client CAs, a client certificate is verified when given
// (tls.VerifyClientCertIfGiven): callers with a bearer token need none.
type ServerTLS struct {
	certFile, keyFile, caFile string
	log                       *slog.Logger

	cert atomic.Pointer[tls.Certificate]
	cas  atomic.Pointer[x509.CertPool] // nil without client CAs

	mu        sync.Mutex
	checked   time.Time    // last look at the files
	stamps    [3]fileStamp // of certFile, keyFile, caFile when last read
	reloadErr error        // the last reload's error, reported once
}

// fileStamp tells a file's versions apart.
type fileStamp struct {
	mod  time.Time
	size int64
}

// checkEvery is how often a handshake looks at the files.
const checkEvery = time.Second

// NewServerTLS reads the certificate and key (PEM) and, when caFile is not
// empty, the client CAs (PEM, one or more certificates).
func NewServerTLS(certFile, keyFile, caFile string, log *slog.Logger) (*ServerTLS, error) {
	s := &ServerTLS{certFile: certFile, keyFile: keyFile, caFile: caFile, log: log}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload reads the files again. On error what is in force stays.
func (s *ServerTLS) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload()
}

func (s *ServerTLS) reload() error {
	var stamps [3]fileStamp
	for i, f := range []string{s.certFile, s.keyFile, s.caFile} {
		stamps[i] = stampOf(f)
	}
	cert, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
	if err != nil {
		return fmt.Errorf("--tls-cert %s, --tls-key %s: %w", s.certFile, s.keyFile, err)
	}
	var cas *x509.CertPool
	if s.caFile != "" {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return fmt.Errorf("--client-ca: %w", err)
		}
		cas = x509.NewCertPool()
		if !cas.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--client-ca %s: no PEM certificate in it", s.caFile)
		}
	}
	s.cert.Store(&cert)
	s.cas.Store(cas)
	s.stamps = stamps
	return nil
}

func stampOf(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

// maybeReload reloads when a file changed since it was read, at most once
// every checkEvery. A failed reload is logged once and retried when the
// files change again.
func (s *ServerTLS) maybeReload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.checked) < checkEvery {
		return
	}
	s.checked = now
	if stampOf(s.certFile) == s.stamps[0] && stampOf(s.keyFile) == s.stamps[1] && stampOf(s.caFile) == s.stamps[2] {
		return
	}
	err := s.reload()
	if err != nil && (s.reloadErr == nil || err.Error() != s.reloadErr.Error()) && s.log != nil {
		s.log.Error("TLS files changed but do not load; the previous ones stay", "err", err)
	} else if err == nil && s.log != nil {
		s.log.Info("TLS certificate reloaded", "cert", s.certFile)
	}
	s.reloadErr = err
}

// Config returns the tls.Config a listener serves with: each handshake
// takes the certificate and client CAs in force. It offers HTTP/2 (gRPC)
// and HTTP/1.1 by ALPN.
func (s *ServerTLS) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s.maybeReload()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   []string{"h2", "http/1.1"},
				Certificates: []tls.Certificate{*s.cert.Load()},
			}
			if cas := s.cas.Load(); cas != nil {
				c.ClientCAs, c.ClientAuth = cas, tls.VerifyClientCertIfGiven
			}
			return c, nil
		},
	}
}

// Listen returns l serving TLS by Config.
func (s *ServerTLS) Listen(l net.Listener) net.Listener { return tls.NewListener(l, s.Config()) }

// TLSConn returns the *tls.Conn c is or wraps (through NetConn methods,
// as portshare's connections have), nil when there is none.
func TLSConn(c net.Conn) *tls.Conn {
	for c != nil {
		if tc, ok := c.(*tls.Conn); ok {
			return tc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

type connKey struct{}

// ConnContext is an http.Server's ConnContext for connections that are
// TLS underneath a wrapper (http.Request.TLS is then nil): it keeps the
// TLS connection for the Guard.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc := TLSConn(c); tc != nil {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

// connState returns the TLS state ConnContext kept, nil without one.
func connState(ctx context.Context) *tls.ConnectionState {
	tc, ok := ctx.Value(connKey{}).(*tls.Conn)
	if !ok {
		return nil
	}
	cs := tc.ConnectionState()
	return &cs
}

// PassthroughCredentials are a gRPC server's transport credentials for
// connections a listener already wraps in TLS (ServerTLS.Listen): the
// handshake completes on the *tls.Conn and its state becomes the peer's
// credentials.TLSInfo, where the Guard finds the client certificate.
func PassthroughCredentials() credentials.TransportCredentials { return passthrough{} }

type passthrough struct{}

func (passthrough) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("auth: passthrough credentials are for servers")
}

func (passthrough) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	tc := TLSConn(c)
	if tc == nil {
		return nil, nil, errors.New("auth: connection is not TLS")
	}
	if err := tc.Handshake(); err != nil {
		return nil, nil, err
	}
	return c, credentials.TLSInfo{State: tc.ConnectionState(), CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (passthrough) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (p passthrough) Clone() credentials.TransportCredentials { return p }

func (passthrough) OverrideServerName(string) error { return nil }

// ClientTLS returns a client's TLS configuration: the server is verified
// against caFile's certificates (the system's when empty), and certFile
// and keyFile, when given, are the client certificate for mTLS.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--tls-client-cert and --tls-client-key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-cert, --tls-client-key: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
