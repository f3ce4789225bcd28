package shop

import (
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/abmesh/abmesh/subset"
)

// The manifests parse into the layer and the seven experiments, each
// valid as the registry will see it.
func TestManifest(t *testing.T) {
	set, err := Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Layers) != 1 || set.Layers[0].ID != "checkout-flow" {
		t.Errorf("layers %+v, want checkout-flow", set.Layers)
	}
	var ids []string
	for _, x := range set.Experiments {
		ids = append(ids, x.ID)
		if err := x.Validate(); err != nil {
			t.Errorf("%s: %v", x.ID, err)
		}
	}
	want := []string{"rec-model", "ui-layout", "catalog-cache", "ad-ranker", "pay-button", "ship-promo", "currency-rounding"}
	if !slices.Equal(ids, want) {
		t.Errorf("experiments %v, want %v", ids, want)
	}
	// Every call is fresh: changing one result leaves the next alone.
	set.Experiments[0].ID = "changed"
	again, err := Manifest()
	if err != nil || again.Experiments[0].ID != "rec-model" {
		t.Errorf("a second Manifest sees the first one's change: %v", err)
	}
}

func TestGraph(t *testing.T) {
	g, err := subset.NewGraph(Graph())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ad", "cart", "checkout", "currency", "email", "frontend", "payment", "productcatalog", "recommendation", "shipping"}
	if got := g.Services(); !slices.Equal(got, want) {
		t.Errorf("services = %v, want %v", got, want)
	}
	// productcatalog's callers (its latency reaches them).
	up, err := g.Region(subset.ScopeChangeUpstream, "productcatalog", "productcatalog")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"frontend", "productcatalog", "recommendation"}; !slices.Equal(up, want) {
		t.Errorf("upstream of productcatalog = %v, want %v", up, want)
	}
	// Every test changes and measures services of the graph.
	set, err := Manifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range set.Experiments {
		if !slices.Contains(want, x.ChangeService) || !slices.Contains(want, x.MeasureService) {
			t.Errorf("%s: change %s or measure %s is not in the graph", x.ID, x.ChangeService, x.MeasureService)
		}
	}
}

func TestCalls(t *testing.T) {
	want := map[string][]string{
		"frontend":       {"productcatalog", "recommendation", "cart", "ad", "currency", "checkout"},
		"recommendation": {"productcatalog"},
		"checkout":       {"payment", "shipping", "email", "currency", "cart"},
		"productcatalog": nil, "cart": nil, "ad": nil, "currency": nil,
		"payment": nil, "shipping": nil, "email": nil,
	}
	if got := Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("Calls() = %v, want %v", got, want)
	}
}

// The truth covers exactly the metrics the tests measure, and its terms
// name the tests' treatments.
func TestTruthsMatchManifest(t *testing.T) {
	set, err := Manifest()
	if err != nil {
		t.Fatal(err)
	}
	measured := map[string]bool{}
	treatment := map[string]string{}
	for _, x := range set.Experiments {
		measured[x.MeasureService+"/"+subset.FromExperiment(x).Metric] = true
		treatment[x.ID] = x.Variants[1].Name
	}
	keys := map[string]bool{}
	for _, m := range Truths() {
		if keys[m.Key()] {
			t.Errorf("two models of %s", m.Key())
		}
		keys[m.Key()] = true
		for _, term := range m.Terms {
			for i, test := range term.Tests {
				if treatment[test] != term.Variants[i] {
					t.Errorf("%s: term names %s=%s, not a test's treatment", m.Key(), test, term.Variants[i])
				}
			}
		}
	}
	if !maps.Equal(keys, measured) {
		t.Errorf("truths of %v, tests measure %v", slices.Sorted(maps.Keys(keys)), slices.Sorted(maps.Keys(measured)))
	}
}

// currency-rounding targets vip and gold: 30% of the users.
func TestAttributes(t *testing.T) {
	a := Attributes()
	if len(a) != 1 || a[0].Name != "grade" {
		t.Fatalf("attributes %+v, want grade", a)
	}
	var targeted, all float64
	for i, v := range a[0].Values {
		all += a[0].Weights[i]
		if v == "vip" || v == "gold" {
			targeted += a[0].Weights[i]
		}
	}
	if share := targeted / all; share < 0.3-1e-12 || share > 0.3+1e-12 {
		t.Errorf("vip or gold: %v of users, want 0.3", share)
	}
}
