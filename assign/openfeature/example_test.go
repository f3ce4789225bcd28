package openfeature_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/abmesh/abmesh/assign"
	abmeshof "github.com/abmesh/abmesh/assign/openfeature"
)

// A service evaluates abmesh tests through OpenFeature: the provider
// watches abmeshd, the OpenFeature client evaluates locally, and each
// evaluation is recorded on the span in the request's context (here the
// server span of an otelhttp- or otelgrpc-instrumented handler, exported
// to abmeshd's OTLP receiver).
func ExampleNew() {
	p, err := abmeshof.New("127.0.0.1:7070", "checkout")
	if err != nil {
		log.Fatal(err)
	}
	if err := of.SetProviderAndWait(p); err != nil {
		log.Print(err) // no configuration within 5 s: defaults until it comes
	}
	defer of.Shutdown()
	flags := of.NewDefaultClient()

	http.HandleFunc("/checkout", func(w http.ResponseWriter, r *http.Request) {
		user := r.Header.Get("x-user-id")
		switch flags.String(r.Context(), "new-checkout", "control", of.NewEvaluationContext(user, map[string]any{"country": "fr"})) {
		case "one-page":
			fmt.Fprintln(w, "the new checkout")
		default:
			fmt.Fprintln(w, "the control")
		}
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", nil))
}

// NewStatic serves a fixed configuration, for tests and examples. String
// flags return the variant; an on/off test is a boolean flag.
func ExampleNewStatic() {
	running := func(id string, variants ...string) assign.Experiment {
		x := assign.Experiment{ID: id, ChangeService: "checkout", MeasureService: "checkout",
			Plan: assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 1}, Status: assign.StatusRunning, Phase: 1,
			Phases: []assign.Phase{{Number: 1, Weights: []uint32{1, 1}}}}
		for _, v := range variants {
			x.Variants = append(x.Variants, assign.Variant{Name: v, Weight: 1})
		}
		return x
	}
	p, err := abmeshof.NewStatic(assign.Config{Version: 1, Experiments: []assign.Experiment{
		running("dark-mode", "off", "on"),
		running("new-checkout", "control", "one-page"),
	}})
	if err != nil {
		log.Fatal(err)
	}
	if err := of.SetProviderAndWait(p); err != nil {
		log.Fatal(err)
	}
	defer of.Shutdown()
	flags := of.NewDefaultClient()
	ctx := context.Background()
	for _, user := range []string{"user-1", "user-2", "user-3"} {
		evalCtx := of.NewEvaluationContext(user, nil)
		d, _ := flags.StringValueDetails(ctx, "new-checkout", "control", evalCtx)
		dark, _ := flags.BooleanValue(ctx, "dark-mode", false, evalCtx)
		fmt.Println(user, d.Value, d.Reason, d.FlagMetadata[abmeshof.ReasonKey], "dark:", dark)
	}
	_, err = flags.StringValue(ctx, "no-such-test", "control", of.NewEvaluationContext("user-1", nil))
	fmt.Println(err)
	_, err = flags.StringValue(ctx, "new-checkout", "control", of.NewEvaluationContext("", nil))
	fmt.Println(err)
	// Output:
	// user-1 control SPLIT HASH dark: true
	// user-2 one-page SPLIT HASH dark: false
	// user-3 control SPLIT HASH dark: false
	// error code: FLAG_NOT_FOUND: no test "no-such-test" in the configuration
	// error code: TARGETING_KEY_MISSING: the evaluation context has no targeting key (the unit)
}
