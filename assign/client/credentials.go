package client

import (
	"context"
	"crypto/tls"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// WithToken sends token as a bearer token ("authorization: Bearer
// TOKEN") with every call to abmeshd, for abmeshd's authentication
// (--auth-file); the SDK needs the client role. The token travels in the
// clear unless WithTLS is given too: use that beyond loopback.
func WithToken(token string) Option {
	return WithDialOptions(grpc.WithPerRPCCredentials(BearerToken(token)))
}

// WithTLS connects to abmeshd over TLS with cfg: cfg.RootCAs verifies
// abmeshd's certificate (nil: the system's roots), cfg.Certificates is
// the client certificate for mTLS, if any.
func WithTLS(cfg *tls.Config) Option {
	return WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
}

// BearerToken returns gRPC per-RPC credentials that send token as
// "authorization: Bearer TOKEN", as abmeshd and OTLP receivers read it.
// They are sent over plaintext connections too (abmeshd's loopback
// default); beyond loopback use TLS.
func BearerToken(token string) credentials.PerRPCCredentials { return bearerToken(token) }

type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return false }
