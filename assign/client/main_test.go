package client_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// fastBackoff keeps reconnection tests short.
var fastBackoff = client.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2, Jitter: 0.2}

// newExp returns a valid experiment definition served by service.
func newExp(id, service string, variants ...assign.Variant) *assign.Experiment {
	if len(variants) == 0 {
		variants = []assign.Variant{{Name: "control", Weight: 50}, {Name: "treatment", Weight: 50}}
	}
	return &assign.Experiment{
		ID: id, Owner: "team", ChangeService: service, MeasureService: service,
		Variants: variants,
		Plan:     assign.Plan{MDE: 1},
	}
}

// createStarted is daemontest.CreateStarted.
func createStarted(t testing.TB, r *assign.Registry, x *assign.Experiment) {
	daemontest.CreateStarted(t, r, x)
}

// shopConfig is a configuration of the demo shop: two tests on the
// recommendation service, one on the frontend, one draft, one paused.
func shopConfig(t testing.TB) assign.Config {
	t.Helper()
	ctx := context.Background()
	r, err := assign.NewRegistry(ctx, &assign.MemStore{})
	if err != nil {
		t.Fatal(err)
	}
	createStarted(t, r, newExp("rec-model", "recommendation", assign.Variant{Name: "v1", Weight: 1}, assign.Variant{Name: "v2", Weight: 1}, assign.Variant{Name: "v3", Weight: 1}))
	createStarted(t, r, newExp("rec-count", "recommendation"))
	createStarted(t, r, newExp("hero-banner", "frontend"))
	createStarted(t, r, newExp("paused-test", "recommendation"))
	if _, err := r.Pause(ctx, "paused-test"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, newExp("draft-test", "recommendation")); err != nil {
		t.Fatal(err)
	}
	return r.Snapshot().Config()
}

// eventually is testkit.Eventually.
func eventually(t *testing.T, what string, cond func() bool) { testkit.Eventually(t, what, cond) }
