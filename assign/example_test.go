package assign_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.uber.org/goleak"

	"github.com/abmesh/abmesh/assign"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Example shows the path of a config change: register an experiment,
// start it, and assign a unit from the live snapshot.
func Example() {
	ctx := context.Background()
	reg, err := assign.NewRegistry(ctx, &assign.MemStore{})
	if err != nil {
		panic(err)
	}
	_, err = reg.Create(ctx, &assign.Experiment{
		ID:             "checkout-v2",
		ChangeService:  "checkout",
		MeasureService: "frontend",
		Variants:       []assign.Variant{{Name: "control", Weight: 50}, {Name: "one-click", Weight: 50}},
		Plan:           assign.Plan{MDE: 0.02},
	})
	if err != nil {
		panic(err)
	}
	if _, err := reg.Start(ctx, "checkout-v2"); err != nil {
		panic(err)
	}
	as, err := reg.Snapshot().Evaluate("user-1", nil, assign.Filter{Service: "checkout"})
	if err != nil {
		panic(err)
	}
	for _, a := range as {
		fmt.Println(a.Test, a.Variant, a.Reason, a.Phase, a.Reason.Randomized())
		fmt.Printf("%s: %s\n", assign.HeaderName(a.Test), a.Variant)
	}
	// Output:
	// checkout-v2 control HASH 1 true
	// x-abmesh-checkout-v2: control
}

// ExampleEngine_AppendAssignments shows the allocation-free evaluation loop
// of an SDK or server handler.
func ExampleEngine_AppendAssignments() {
	x := assign.Experiment{
		ID: "ranking", ChangeService: "search", MeasureService: "search",
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "bm25", Weight: 1}, {Name: "neural", Weight: 2}},
		Plan:     assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 1},
		Status:   assign.StatusRunning, Phase: 1, Phases: []assign.Phase{{Number: 1, Weights: []uint32{1, 1, 2}}},
	}
	eng, err := assign.Compile(assign.Config{Version: 7, Experiments: []assign.Experiment{x}})
	if err != nil {
		panic(err)
	}
	buf := make([]assign.Assignment, 0, 8) // reused across requests
	for _, unit := range []string{"user-1", "user-2", "user-3"} {
		buf = eng.AppendAssignments(buf[:0], unit, nil, assign.Filter{})
		fmt.Println(unit, buf[0].Variant)
	}
	// Output:
	// user-1 control
	// user-2 neural
	// user-3 bm25
}

// ExampleFieldError shows how a caller maps a validation error.
func ExampleFieldError() {
	x := assign.Experiment{ID: "Bad_ID"}
	err := x.Validate()
	var fe *assign.FieldError
	if errors.As(err, &fe) {
		fmt.Println(fe.Field, "→", fe.Msg)
	}
	// Output:
	// id → "Bad_ID" is not a lowercase DNS label (a-z, 0-9, '-', 1 to 63 characters, alphanumeric at both ends)
}
