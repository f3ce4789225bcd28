package forwardauth

import (
	"context"
	"testing"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/grpcapi"
)

// fixture is a registry with two running tests of service "shop"
// (checkout, banner) and one of service "other", and an Auth over the
// Assign RPC's evaluation of it.
type fixture struct {
	reg  *assign.Registry
	auth *Auth
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	ctx := context.Background()
	reg, err := assign.NewRegistry(ctx, &assign.MemStore{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct{ id, service string }{{"checkout", "shop"}, {"banner", "shop"}, {"elsewhere", "other"}} {
		startTest(t, reg, x.id, x.service)
	}
	return &fixture{reg: reg, auth: New(cfg, grpcapi.NewAssignment(ctx, reg))}
}

// startTest creates and starts a 50/50 control/treatment test of service.
func startTest(t testing.TB, reg *assign.Registry, id, service string) {
	t.Helper()
	ctx := context.Background()
	x := &assign.Experiment{ID: id, Owner: "team", ChangeService: service, MeasureService: service,
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "treatment", Weight: 1}}, Plan: assign.Plan{MDE: 1}}
	if _, err := reg.Create(ctx, x); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// variant is the engine's hash assignment of unit in test.
func (f *fixture) variant(t testing.TB, test, unit string) string {
	t.Helper()
	v, ok := f.reg.Snapshot().HashVariant(test, unit)
	if !ok {
		t.Fatalf("no test %q", test)
	}
	return v
}
