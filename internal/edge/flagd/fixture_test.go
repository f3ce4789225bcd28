package flagd_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	evalpb "github.com/abmesh/abmesh/proto/flagd/evaluation/v1"
)

// The fixture's tests, one per way a unit can get its variant.
const (
	checkout = "checkout"    // three variants, targeted on country, one override
	banner   = "banner"      // on/off, in half of layer ui
	pricing  = "pricing"     // sticky, targeted on a numeric attribute
	paused   = "paused-test" // paused
	winner   = "winner-test" // concluded: "treatment" for everyone
	draft    = "draft-test"  // never started
)

// overridden is the unit the checkout test pins to variant "b".
const overridden = "u-7"

func experiment(id string, variants ...string) *assign.Experiment {
	x := &assign.Experiment{ID: id, ChangeService: "shop", MeasureService: "shop", Plan: assign.Plan{MDE: 1}}
	for _, v := range variants {
		x.Variants = append(x.Variants, assign.Variant{Name: v, Weight: 1})
	}
	return x
}

// fixture registers the fixture's tests in reg.
func fixture(t testing.TB, reg *assign.Registry) {
	t.Helper()
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(reg.CreateLayer(ctx, &assign.Layer{ID: "ui"}))
	x := experiment(checkout, "control", "a", "b")
	x.Variants[0].Weight = 2
	x.Targeting = []assign.Rule{{Attribute: "country", Op: assign.OpIn, Values: []string{"de", "fr"}}}
	must(reg.Create(ctx, x))
	x = experiment(banner, "off", "on")
	x.Layer, x.Slice = "ui", assign.Slice{Start: 0, End: 5000}
	must(reg.Create(ctx, x))
	x = experiment(pricing, "control", "treatment")
	x.Sticky = true
	x.Targeting = []assign.Rule{{Attribute: "tier", Op: assign.OpNotIn, Values: []string{"3"}}}
	must(reg.Create(ctx, x))
	must(reg.Create(ctx, experiment(paused, "control", "treatment")))
	must(reg.Create(ctx, experiment(winner, "control", "treatment")))
	must(reg.Create(ctx, experiment(draft, "false", "true")))
	for _, id := range []string{checkout, banner, pricing, paused, winner} {
		must(reg.Start(ctx, id))
	}
	must(reg.Pause(ctx, paused))
	must(reg.Conclude(ctx, winner, "treatment"))
	must(nil, reg.SetOverride(ctx, assign.Override{Experiment: checkout, Unit: overridden, Variant: "b"}))
}

// served is a real abmeshd with the fixture, and clients of both APIs.
type served struct {
	reg    *assign.Registry
	conn   *grpc.ClientConn
	flagd  evalpb.ServiceClient
	assign pb.AssignmentServiceClient
}

func serve(t testing.TB) served {
	t.Helper()
	d := daemontest.Start(t)
	fixture(t, d.Registry())
	conn := daemontest.Dial(t, d.Addr())
	return served{reg: d.Registry(), conn: conn, flagd: evalpb.NewServiceClient(conn), assign: pb.NewAssignmentServiceClient(conn)}
}

// unitContext is the evaluation context of unit with attributes of every
// JSON type: country a string, tier a number, beta a boolean.
func unitContext(t testing.TB, unit, country string, tier float64, beta bool) *structpb.Struct {
	t.Helper()
	c, err := structpb.NewStruct(map[string]any{
		"targetingKey": unit, "country": country, "tier": tier, "beta": beta,
		"tags": []any{"x"}, "nothing": nil, // not attributes
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// attrsOf is what unitContext's attributes are as Assign's.
func attrsOf(country string, tier string, beta bool) map[string]string {
	b := "false"
	if beta {
		b = "true"
	}
	return map[string]string{"country": country, "tier": tier, "beta": b}
}
