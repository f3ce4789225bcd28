package shop

import "github.com/abmesh/abmesh/internal/tool/truth"

// Attributes returns the distribution of the users' attributes: grade is
// regular (70%), gold (20%) or vip (10%), so currency-rounding, which
// targets vip and gold, randomizes 30% of the users.
func Attributes() []truth.Attribute {
	return []truth.Attribute{{Name: "grade", Values: []string{"regular", "gold", "vip"}, Weights: []float64{0.7, 0.2, 0.1}}}
}

// Truths returns the shop's ground truth, one model per metric its tests
// measure (effects of each treatment; SD within cells):
//
//	frontend order value   N(50, 20²): rec-model +1, ui-layout +3, catalog-cache +1,
//	                       rec-model × ui-layout +14 (ml-v2 pays off in the two-column page)
//	productcatalog latency N(12, 3²) ms: catalog-cache −1.2, rec-model +0.4
//	ad clicked             Bernoulli(0.30): ad-ranker +0.08
//	checkout order value   N(60, 20²): pay-button +5, ship-promo +7,
//	                       currency-rounding +4, ui-layout +2
//
// The spreads are the ones the tests' power plans assume (order value SD
// 20, latency SD 3, and a click rate near 0.3 has SD 0.46 against the
// planned 0.45), so the plans' power is the power the evaluation
// measures. The one interaction lies inside the subsets of rec-model and
// ui-layout; the effects of tests on metrics outside their subsets
// (catalog-cache on order value in ui-layout's subset, rec-model on
// catalog latency, ui-layout on checkout value) are main effects only, as
// the subset rule assumes. Every call returns a fresh copy.
func Truths() []truth.Model {
	return []truth.Model{
		{Service: "frontend", Metric: "attribute:shop.order.value", Dist: truth.Normal, Baseline: 50, SD: 20, Terms: []truth.Term{
			truth.Main("rec-model", "ml-v2", 1),
			truth.Main("ui-layout", "two-column", 3),
			truth.Main("catalog-cache", "cached", 1),
			{Tests: []string{"rec-model", "ui-layout"}, Variants: []string{"ml-v2", "two-column"}, Effect: 14},
		}},
		{Service: "productcatalog", Metric: "latency_ms", Dist: truth.Normal, Baseline: 12, SD: 3, Terms: []truth.Term{
			truth.Main("catalog-cache", "cached", -1.2),
			truth.Main("rec-model", "ml-v2", 0.4),
		}},
		{Service: "ad", Metric: "attribute:ad.clicked", Dist: truth.Bernoulli, Baseline: 0.30, Terms: []truth.Term{
			truth.Main("ad-ranker", "contextual", 0.08),
		}},
		{Service: "checkout", Metric: "attribute:shop.order.value", Dist: truth.Normal, Baseline: 60, SD: 20, Terms: []truth.Term{
			truth.Main("pay-button", "one-click", 5),
			truth.Main("ship-promo", "free-shipping", 7),
			truth.Main("currency-rounding", "rounded", 4),
			truth.Main("ui-layout", "two-column", 2),
		}},
	}
}
