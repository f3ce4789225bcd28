package demo

import (
	"math"
	"math/rand/v2"
)

// Effect is a true additive effect of serving one test's variant.
type Effect struct {
	Test, Variant string
	Delta         float64
}

// Interaction is a true effect that appears only when both variants are
// served together, on top of their effects.
type Interaction struct {
	A, AVariant string
	B, BVariant string
	Delta       float64
}

// Outcome is the ground truth of one metric measured on one service:
// value = Base + Σ effects served + Σ interactions served + noise.
type Outcome struct {
	Service, Metric string
	Base, SD        float64
	// Binary draws 1 with probability value (clamped to [0, 1]) instead of
	// adding Gaussian noise.
	Binary       bool
	Effects      []Effect
	Interactions []Interaction
}

// Mean is the expected value given the variants served.
func (o *Outcome) Mean(variants map[string]string) float64 {
	m := o.Base
	for _, e := range o.Effects {
		if variants[e.Test] == e.Variant {
			m += e.Delta
		}
	}
	for _, x := range o.Interactions {
		if variants[x.A] == x.AVariant && variants[x.B] == x.BVariant {
			m += x.Delta
		}
	}
	return m
}

// Draw returns one observation.
func (o *Outcome) Draw(rng *rand.Rand, variants map[string]string) float64 {
	m := o.Mean(variants)
	if o.Binary {
		if rng.Float64() < math.Min(1, math.Max(0, m)) {
			return 1
		}
		return 0
	}
	return m + o.SD*rng.NormFloat64()
}

// MainEffect is the true main effect of test's variant against the
// control as the factorial analysis estimates it (sum-to-zero coding: the
// difference of marginal means, each the unweighted average over the
// levels of the other factors in the subset): the variant's own effect
// plus, for each interaction with another factor of the subset, the
// interaction's delta times the share of that factor's levels it applies
// to. levels gives the number of variants of each factor.
func (o *Outcome) MainEffect(test, variant string, levels map[string]int) float64 {
	d := 0.0
	for _, e := range o.Effects {
		if e.Test == test && e.Variant == variant {
			d += e.Delta
		}
	}
	for _, x := range o.Interactions {
		switch {
		case x.A == test && x.AVariant == variant && levels[x.B] > 0:
			d += x.Delta / float64(levels[x.B])
		case x.B == test && x.BVariant == variant && levels[x.A] > 0:
			d += x.Delta / float64(levels[x.A])
		}
	}
	return d
}

// InteractionContrast is the true difference of differences of a and b
// (their variants against their controls), 0 when they do not interact.
func (o *Outcome) InteractionContrast(a, b string) float64 {
	d := 0.0
	for _, x := range o.Interactions {
		if (x.A == a && x.B == b) || (x.A == b && x.B == a) {
			d += x.Delta
		}
	}
	return d
}

// ShopTruth is the demo's configured ground truth, matching
// examples/shop: main effects on order value and ad clicks, a latency
// effect of the catalog cache, and one real interaction (rec-model ×
// ui-layout) inside a subset.
func ShopTruth() []Outcome {
	return []Outcome{
		{Service: "frontend", Metric: "attribute:shop.order.value", Base: 50, SD: 15,
			Effects:      []Effect{{"rec-model", "ml-v2", 5}, {"ui-layout", "two-column", 4}},
			Interactions: []Interaction{{A: "rec-model", AVariant: "ml-v2", B: "ui-layout", BVariant: "two-column", Delta: 15}}},
		{Service: "checkout", Metric: "attribute:shop.order.value", Base: 60, SD: 15,
			Effects: []Effect{{"pay-button", "one-click", 6}, {"ship-promo", "free-shipping", 8}, {"currency-rounding", "rounded", 5}}},
		{Service: "ad", Metric: "attribute:ad.clicked", Base: 0.10, Binary: true,
			Effects: []Effect{{"ad-ranker", "contextual", 0.08}}},
		// Latency is real: productcatalog sleeps this long (milliseconds).
		{Service: "productcatalog", Metric: "latency_ms", Base: 3, SD: 0.5,
			Effects: []Effect{{"catalog-cache", "cached", -1.5}}},
	}
}

// outcomeFor returns the outcome measured on service, or nil.
func outcomeFor(truth []Outcome, service string) *Outcome {
	for i := range truth {
		if truth[i].Service == service {
			return &truth[i]
		}
	}
	return nil
}
