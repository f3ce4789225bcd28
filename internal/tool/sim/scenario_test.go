package sim

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/tool/shop"
	"github.com/abmesh/abmesh/internal/tool/truth"
)

func subsetMap(t *testing.T, sc *Scenario) map[string][]string {
	t.Helper()
	subs, err := sc.Subsets()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, s := range subs {
		out[s.Viewpoint] = s.Tests()
	}
	return out
}

func TestShopCompilesWithDocumentedSubsets(t *testing.T) {
	sc := Shop()
	if _, err := sc.compile(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"rec-model":         {"rec-model", "catalog-cache", "ui-layout"},
		"ui-layout":         {"ui-layout", "rec-model"},
		"catalog-cache":     {"catalog-cache"},
		"ad-ranker":         {"ad-ranker"},
		"pay-button":        {"pay-button"},
		"ship-promo":        {"ship-promo"},
		"currency-rounding": {"currency-rounding"},
	}
	if got := subsetMap(t, sc); !reflect.DeepEqual(got, want) {
		t.Errorf("subsets = %v, want %v", got, want)
	}
}

// Shop runs the shop's manifests: every experiment as the manifest has
// it, RUNNING in phase 1 with its variants' weights.
func TestShopRunsTheManifest(t *testing.T) {
	set, err := shop.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	sc := Shop()
	if len(set.Experiments) != len(sc.Experiments) || !reflect.DeepEqual(sc.Layers, set.Layers) {
		t.Fatalf("manifest has %d experiments and layers %v, Shop %d and %v", len(set.Experiments), set.Layers, len(sc.Experiments), sc.Layers)
	}
	for i, x := range sc.Experiments {
		want := set.Experiments[i]
		if x.Status != assign.StatusRunning || x.Phase != 1 || len(x.Phases) != 1 ||
			!reflect.DeepEqual(x.Phases[0].Weights, []uint32{want.Variants[0].Weight, want.Variants[1].Weight}) {
			t.Errorf("%s: status %s, phase %d, phases %+v", x.ID, x.Status, x.Phase, x.Phases)
		}
		x.Status, x.Phase, x.Phases = want.Status, want.Phase, want.Phases
		if !reflect.DeepEqual(x, want) {
			t.Errorf("%s:\n Shop     %+v\n manifest %+v", want.ID, x, want)
		}
	}
}

func TestLargeSubsets(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		sc, err := Large(seed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.compile(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if n := countServices(sc.Edges); n < 30 {
			t.Errorf("seed %d: %d services", seed, n)
		}
		if len(sc.Experiments) != 12 {
			t.Errorf("seed %d: %d tests", seed, len(sc.Experiments))
		}
		subs := subsetMap(t, sc)
		sorted := func(xs []string) []string { s := slices.Clone(xs); slices.Sort(s); return s }
		for _, g := range [][]string{
			{"hero-banner", "price-badge", "reco-carousel"},
			{"search-filters", "search-ranker", "search-suggest"},
		} {
			for _, vp := range g {
				if got := sorted(subs[vp]); !slices.Equal(got, g) {
					t.Errorf("seed %d: subset of %s = %v, want %v", seed, vp, got, g)
				}
			}
		}
		if got := subs["inventory-batch"]; !slices.Equal(got, []string{"inventory-batch", "db-pool"}) {
			t.Errorf("seed %d: subset of inventory-batch = %v", seed, got)
		}
		for _, vp := range []string{"db-pool", "fraud-rules", "tax-engine", "image-cdn", "loyalty-points"} {
			if got := subs[vp]; len(got) != 1 {
				t.Errorf("seed %d: subset of %s = %v, want it alone", seed, vp, got)
			}
		}
	}
}

func TestCompileRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Scenario)
		want   string
	}{
		{"interaction outside the subsets", func(s *Scenario) {
			s.Truths[3].Terms = append(s.Truths[3].Terms, truth.Term{Tests: []string{"pay-button", "currency-rounding"},
				Variants: []string{"one-click", "rounded"}, Effect: 3})
		}, "reaches outside the subset"},
		{"interaction of one layer's tests", func(s *Scenario) {
			s.Truths[3].Terms = append(s.Truths[3].Terms, truth.Term{Tests: []string{"pay-button", "ship-promo"},
				Variants: []string{"one-click", "free-shipping"}, Effect: 3})
		}, "two tests of one layer"},
		{"interaction nobody measures", func(s *Scenario) {
			s.Truths[1].Terms = append(s.Truths[1].Terms, truth.Term{Tests: []string{"rec-model", "ui-layout"},
				Variants: []string{"ml-v2", "two-column"}, Effect: 1})
		}, "none of its tests measures"},
		{"three variants", func(s *Scenario) {
			s.Experiments[0].Variants = append(s.Experiments[0].Variants, assign.Variant{Name: "ml-v3", Weight: 50})
			s.Experiments[0].Phases[0].Weights = []uint32{50, 50, 50}
		}, "wants 2"},
		{"missing truth", func(s *Scenario) { s.Truths = s.Truths[1:] }, "no truth"},
		{"two truths of one metric", func(s *Scenario) { s.Truths = append(s.Truths, s.Truths[0]) }, "two truths"},
		{"paused", func(s *Scenario) { s.Experiments[3].Status = assign.StatusPaused }, "want RUNNING"},
		{"normal metric without SD", func(s *Scenario) { s.Truths[0].SD = 0 }, "SD > 0"},
		{"unknown test in a term", func(s *Scenario) {
			s.Truths[0].Terms = append(s.Truths[0].Terms, truth.Main("nope", "x", 1))
		}, "unknown test"},
		{"invalid config", func(s *Scenario) { s.Experiments[0].ChangeService = "" }, "change_service"},
		{"bad attribute", func(s *Scenario) { s.Attributes[0].Weights = []float64{1} }, "attribute"},
		{"three tests in a layer", func(s *Scenario) {
			for i := range s.Experiments {
				if s.Experiments[i].ID == "ship-promo" {
					third := s.Experiments[i]
					s.Experiments[i].Slice.End = 7500
					third.ID, third.Slice.Start, third.Salt = "ship-promo-2", 7500, "ship-promo-2"
					s.Experiments = append(s.Experiments, third)
					break
				}
			}
		}, "layer checkout-flow has 3 experiments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := Shop()
			tt.change(sc)
			_, err := sc.compile()
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "scenario shop: ") {
				t.Errorf("compile = %v, want an error of scenario shop mentioning %q", err, tt.want)
			}
		})
	}
}

func TestTruthFor(t *testing.T) {
	sc := Shop()
	for test, key := range map[string]string{
		"rec-model":         "frontend/attribute:shop.order.value",
		"catalog-cache":     "productcatalog/latency_ms",
		"currency-rounding": "checkout/attribute:shop.order.value",
		"ad-ranker":         "ad/attribute:ad.clicked",
	} {
		if tr := sc.TruthFor(test); tr == nil || tr.Key() != key {
			t.Errorf("TruthFor(%s) = %v, want %s", test, tr, key)
		}
	}
	if sc.TruthFor("nope") != nil {
		t.Error("TruthFor of an unknown test is not nil")
	}
}

func TestDrawAttributesAndEligibility(t *testing.T) {
	sc := Shop()
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 20000
	counts := map[string]int{}
	for range n {
		counts[sc.DrawAttributes(rng)["grade"]]++
	}
	for v, p := range map[string]float64{"regular": 0.7, "gold": 0.2, "vip": 0.1} {
		if got := float64(counts[v]) / n; math.Abs(got-p) > 4*math.Sqrt(p*(1-p)/n) {
			t.Errorf("P(grade=%s) = %v, want %v", v, got, p)
		}
	}
	c, err := sc.compile()
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]float64{"currency-rounding": 0.3, "pay-button": 0.5, "ship-promo": 0.5, "rec-model": 1} {
		if got := c.tests[c.index[id]].elig; math.Abs(got-want) > 1e-12 {
			t.Errorf("eligible fraction of %s = %v, want %v", id, got, want)
		}
	}
	if (&Scenario{}).DrawAttributes(rng) != nil {
		t.Error("no attributes should draw nil")
	}
}
