package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign/client"
	"github.com/abmesh/abmesh/internal/auth"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit/authtest"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

// TestWithTokenAndTLS: against abmeshd with TLS and an auth file, the SDK
// gets its configuration with the client token over TLS; with the
// ingest token (wrong role) or no token it never does and keeps retrying.
func TestWithTokenAndTLS(t *testing.T) {
	pki := authtest.NewPKI(t, "sdk CA")
	file, toks := authtest.WriteAuthFile(t, t.TempDir())
	d := daemontest.Start(t, func(c *daemon.Config) {
		c.Security = daemon.SecurityConfig{AuthFile: file, TLSCert: pki.ServerCert, TLSKey: pki.ServerKey}
	})
	tlsCfg, err := auth.ClientTLS(pki.CA, "", "")
	if err != nil {
		t.Fatal(err)
	}
	fast := client.WithBackoff(client.Backoff{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 1.5})
	newClient := func(opts ...client.Option) *client.Client {
		c, err := client.New(d.Addr(), append(opts, client.WithService("svc"), client.WithTLS(tlsCfg), fast)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	good := newClient(client.WithToken(toks[auth.Client]))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := good.WaitReady(ctx); err != nil {
		t.Fatalf("with the client token: %v", err)
	}
	for name, c := range map[string]*client.Client{"ingest token": newClient(client.WithToken(toks[auth.Ingest])), "no token": newClient()} {
		time.Sleep(300 * time.Millisecond)
		if st := c.Stats(); st.Ready || st.Reconnects == 0 {
			t.Errorf("%s: %+v, want not ready and retrying", name, st)
		}
	}
}
