package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/tool/shop"
	"github.com/abmesh/abmesh/internal/tool/truth"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// Scenario is a simulated system with its ground truth: a service graph,
// the A/B tests running on it (as assign registers them, with their
// interference attributes and plans), the unit attributes their targeting
// reads, and one outcome model (truth.Model) per metric the tests measure.
//
// The simulator supports what its strategies can analyse: every
// experiment RUNNING with exactly two variants (control first), at most
// 63 experiments, the experiments of a layer a power of two in number
// and never two of them in one subset. Evaluate and CheckHashing check
// all of it and refuse a scenario that breaks it.
type Scenario struct {
	Name        string
	Description string
	Edges       []tracing.Edge
	Layers      []assign.Layer
	// Experiments are the running tests. Their order does not matter:
	// the simulator sorts them by id, as assign does.
	Experiments []assign.Experiment
	// Truths hold one outcome model per metric (truth.Model.Key), covering
	// every experiment's measure service and metric.
	Truths []truth.Model
	// Attributes are drawn independently for every unit (see
	// DrawAttributes); targeting rules read them.
	Attributes []truth.Attribute
}

// phaseStart dates the scenarios' experiments; the simulation does not
// depend on it.
var phaseStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// started returns x as running in phase 1 since phaseStart with its
// variants' weights, its plan's defaults filled in.
func started(x assign.Experiment) assign.Experiment {
	x.Plan.Defaults()
	x.Status = assign.StatusRunning
	x.Phase = 1
	weights := make([]uint32, len(x.Variants))
	for i, v := range x.Variants {
		weights[i] = v.Weight
	}
	x.Phases = []assign.Phase{{Number: 1, Weights: weights, StartedAt: phaseStart}}
	return x
}

// running returns a RUNNING experiment in phase 1 with two variants of
// weight 50.
func running(id, owner, desc, change, measure string, metric assign.Metric, control, treatment string, plan assign.Plan) assign.Experiment {
	return started(assign.Experiment{
		ID: id, Owner: owner, Description: desc,
		ChangeService: change, MeasureService: measure,
		Metric:   metric,
		Variants: []assign.Variant{{Name: control, Weight: 50}, {Name: treatment, Weight: 50}},
		Plan:     plan,
	})
}

func attr(name string, higher bool) assign.Metric {
	return assign.Metric{Kind: assign.MetricAttribute, Attribute: name, HigherIsBetter: higher}
}

var latency = assign.Metric{Kind: assign.MetricLatencyMS}

func inter(kind, scope string) assign.Interference {
	return assign.Interference{Kind: kind, Scope: scope}
}

// Shop returns the demo shop of internal/tool/shop: its layer and its seven
// experiments from the shop's manifests, all running, on shop.Graph, with
// the shop's users (shop.Attributes) and ground truth (shop.Truths, which
// documents the effects). pay-button and ship-promo share the layer
// checkout-flow (mutually exclusive halves) and currency-rounding targets
// grade vip or gold (30% of units). The subsets are rec-model
// {rec-model, ui-layout, catalog-cache}, ui-layout {ui-layout, rec-model},
// and every other test alone, so the one interaction lies inside two
// subsets. Shop panics if the embedded manifests do not parse, which
// shop's tests rule out.
func Shop() *Scenario {
	set, err := shop.Manifest()
	if err != nil {
		panic("sim: the shop's manifests: " + err.Error())
	}
	xs := make([]assign.Experiment, len(set.Experiments))
	for i, x := range set.Experiments {
		xs[i] = started(x)
	}
	return &Scenario{
		Name: "shop",
		Description: "the demo shop of " + shop.Dir + "; " +
			"pay-button and ship-promo are mutually exclusive (layer checkout-flow), " +
			"currency-rounding targets grade vip or gold (30% of units)",
		Edges:       shop.Graph(),
		Layers:      set.Layers,
		Experiments: xs,
		Truths:      shop.Truths(),
		Attributes:  shop.Attributes(),
	}
}

// Large returns a larger system: RandomGraph(seed, DefaultLayers) (30
// services) with 12 concurrent tests placed on it so that the subset rule
// gives three subsets with interactions inside and leaves the rest alone:
//
//	A (3 tests, measured on api-0 "order.value", user experience on the
//	  measure service): hero-banner, reco-carousel, price-badge, each in
//	  the others' subsets; truth N(40, 20²): +3, +1, +5,
//	  hero-banner × reco-carousel +10, and a 3-way term +12.
//	B (3 tests on api-1 "search.clicks"): search-ranker, search-suggest,
//	  search-filters; truth N(10, 10²): +4, +2, +1.5, search-ranker ×
//	  search-suggest −6 (their other interactions are 0).
//	C (latency, asymmetric): inventory-batch on a logic service L is
//	  susceptible to latency on its change service, and db-pool on a store
//	  S that L calls emits latency upstream, so S(inventory-batch) =
//	  {inventory-batch, db-pool} but S(db-pool) = {db-pool}; truth of L's
//	  latency N(30, 5²): inventory-batch −2, db-pool −1, their interaction
//	  +3; of S's latency N(8, 2²): db-pool −0.8.
//	four tests alone (fraud-rules, tax-engine with no effect, image-cdn,
//	  loyalty-points), each measured on its own service.
//
// Every test splits 50/50 with no layer and no targeting, so the only
// structure is the graph and the interference attributes.
func Large(seed uint64) (*Scenario, error) {
	edges, err := RandomGraph(seed, DefaultLayers)
	if err != nil {
		return nil, err
	}
	p := newServicePicker(edges)
	// The picks' order fixes which service each test lands on.
	apiA, apiB := p.pick(1, nil), p.pick(1, nil)
	sc := &Scenario{
		Name: "large",
		Description: fmt.Sprintf("a random layered graph (RandomGraph seed %d) with 12 concurrent tests: "+
			"two subsets of 3 (one with a 3-way interaction), one asymmetric pair, the rest alone", seed),
		Edges: edges,
	}
	add := func(xs []assign.Experiment, ts []truth.Model) {
		sc.Experiments = append(sc.Experiments, xs...)
		sc.Truths = append(sc.Truths, ts...)
	}
	add(largeOrderValue(p, apiA))
	add(largeSearch(p, apiB))
	add(largeLatencyPair(p))
	add(largeAlone(p))
	return sc, nil
}

// servicePicker hands out the services of a layered graph, each once.
type servicePicker struct {
	callees map[string][]string
	used    map[string]bool
}

func newServicePicker(edges []tracing.Edge) *servicePicker {
	p := &servicePicker{callees: map[string][]string{}, used: map[string]bool{}}
	for _, e := range edges {
		p.callees[e.Caller] = append(p.callees[e.Caller], e.Callee)
	}
	return p
}

// pick returns the first unused service of a layer, preferring the given
// candidates in order. It panics when the layer has none left.
func (p *servicePicker) pick(layer int, prefer []string) string {
	for _, s := range prefer {
		if strings.HasPrefix(s, layerRoles[layer]+"-") && !p.used[s] {
			p.used[s] = true
			return s
		}
	}
	for i := range DefaultLayers[layer] {
		if s := ServiceName(layer, i); !p.used[s] {
			p.used[s] = true
			return s
		}
	}
	panic("sim: large scenario: layer " + layerRoles[layer] + " has too few services")
}

// uxMeasure makes x emit and be susceptible to user-experience
// interference on its measure service.
func uxMeasure(xs ...*assign.Experiment) {
	for _, x := range xs {
		x.Emits = []assign.Interference{inter(subset.KindUserExperience, assign.ScopeMeasure)}
		x.Susceptible = []assign.Interference{inter(subset.KindUserExperience, assign.ScopeMeasure)}
	}
}

// pairTerm is the interaction of two tests' treatments.
func pairTerm(t1, v1, t2, v2 string, e float64) truth.Term {
	return truth.Term{Tests: []string{t1, t2}, Variants: []string{v1, v2}, Effect: e}
}

// largeOrderValue is subset A: three tests measured on api, with a 2-way
// and a 3-way interaction.
func largeOrderValue(p *servicePicker, api string) ([]assign.Experiment, []truth.Model) {
	orderValue := attr("order.value", true)
	hero := running("hero-banner", "team-web", "Hero banner on the landing page", api, api, orderValue,
		"control", "banner", assign.Plan{MDE: 6, SD: 20})
	reco := running("reco-carousel", "team-reco", "Recommendation carousel", p.pick(2, p.callees[api]), api, orderValue,
		"control", "carousel", assign.Plan{MDE: 6, SD: 20})
	price := running("price-badge", "team-pricing", "Discount badge on prices", p.pick(2, p.callees[api]), api, orderValue,
		"control", "badge", assign.Plan{MDE: 6, SD: 20})
	uxMeasure(&hero, &reco, &price)
	return []assign.Experiment{hero, reco, price}, []truth.Model{
		{Service: api, Metric: "attribute:order.value", Dist: truth.Normal, Baseline: 40, SD: 20, Terms: []truth.Term{
			truth.Main("hero-banner", "banner", 3),
			truth.Main("reco-carousel", "carousel", 1),
			truth.Main("price-badge", "badge", 5),
			pairTerm("hero-banner", "banner", "reco-carousel", "carousel", 10),
			{Tests: []string{"hero-banner", "reco-carousel", "price-badge"}, Variants: []string{"banner", "carousel", "badge"}, Effect: 12},
		}},
	}
}

// largeSearch is subset B: three search tests measured on api, with one
// 2-way interaction.
func largeSearch(p *servicePicker, api string) ([]assign.Experiment, []truth.Model) {
	clicks := attr("search.clicks", true)
	ranker := running("search-ranker", "team-search", "Learning-to-rank search", p.pick(2, p.callees[api]), api, clicks,
		"control", "ltr", assign.Plan{MDE: 3, SD: 10})
	suggest := running("search-suggest", "team-search", "Query suggestions", api, api, clicks,
		"control", "suggest", assign.Plan{MDE: 3, SD: 10})
	filters := running("search-filters", "team-search", "Facet filters on results", p.pick(2, p.callees[api]), api, clicks,
		"control", "facets", assign.Plan{MDE: 3, SD: 10})
	uxMeasure(&ranker, &suggest, &filters)
	return []assign.Experiment{ranker, suggest, filters}, []truth.Model{
		{Service: api, Metric: "attribute:search.clicks", Dist: truth.Normal, Baseline: 10, SD: 10, Terms: []truth.Term{
			truth.Main("search-ranker", "ltr", 4),
			truth.Main("search-suggest", "suggest", 2),
			truth.Main("search-filters", "facets", 1.5),
			pairTerm("search-ranker", "ltr", "search-suggest", "suggest", -6),
		}},
	}
}

// largeLatencyPair is C: a logic service's test susceptible to latency,
// and a store it calls whose test emits latency upstream (an asymmetric
// pair).
func largeLatencyPair(p *servicePicker) ([]assign.Experiment, []truth.Model) {
	L := p.pick(2, nil)
	S := p.pick(3, p.callees[L])
	inv := running("inventory-batch", "team-inventory", "Batched inventory lookups", L, L, latency,
		"control", "batched", assign.Plan{MDE: 1.5, SD: 5})
	inv.Metric.HigherIsBetter = false
	inv.Susceptible = []assign.Interference{inter(subset.KindLatency, assign.ScopeChange)}
	pool := running("db-pool", "team-storage", "Larger connection pool", S, S, latency,
		"control", "pool-64", assign.Plan{MDE: 0.6, SD: 2})
	pool.Metric.HigherIsBetter = false
	pool.Emits = []assign.Interference{inter(subset.KindLatency, assign.ScopeChangeUpstream)}
	pool.Susceptible = []assign.Interference{inter(subset.KindResource, assign.ScopeChange)}
	return []assign.Experiment{inv, pool}, []truth.Model{
		{Service: L, Metric: "latency_ms", Dist: truth.Normal, Baseline: 30, SD: 5, Terms: []truth.Term{
			truth.Main("inventory-batch", "batched", -2),
			truth.Main("db-pool", "pool-64", -1),
			pairTerm("inventory-batch", "batched", "db-pool", "pool-64", 3),
		}},
		{Service: S, Metric: "latency_ms", Dist: truth.Normal, Baseline: 8, SD: 2, Terms: []truth.Term{
			truth.Main("db-pool", "pool-64", -0.8),
		}},
	}
}

// largeAlone is the four tests that interfere with no other, each measured
// on its own service (tax-engine has no effect).
func largeAlone(p *servicePicker) ([]assign.Experiment, []truth.Model) {
	alone := func(x *assign.Experiment) {
		x.Emits = []assign.Interference{inter(subset.KindErrorRate, assign.ScopeChange)}
		x.Susceptible = []assign.Interference{inter(subset.KindErrorRate, assign.ScopeChange)}
	}
	fraudSvc, taxSvc, cdnSvc, loyaltySvc := p.pick(2, nil), p.pick(3, nil), p.pick(1, nil), p.pick(4, nil)
	fraud := running("fraud-rules", "team-risk", "Stricter fraud rules", fraudSvc, fraudSvc,
		assign.Metric{Kind: assign.MetricError}, "control", "strict", assign.Plan{MDE: 0.09, SD: 0.3})
	alone(&fraud)
	tax := running("tax-engine", "team-finance", "New tax engine", taxSvc, taxSvc, latency,
		"control", "v2", assign.Plan{MDE: 2, SD: 6})
	tax.Metric.HigherIsBetter = false
	alone(&tax)
	cdn := running("image-cdn", "team-web-perf", "Images from the CDN", cdnSvc, cdnSvc, latency,
		"control", "cdn", assign.Plan{MDE: 8, SD: 25})
	cdn.Metric.HigherIsBetter = false
	loyalty := running("loyalty-points", "team-loyalty", "Double points week", loyaltySvc, loyaltySvc,
		attr("points.redeemed", true), "control", "double", assign.Plan{MDE: 1.2, SD: 4})
	alone(&loyalty)
	return []assign.Experiment{fraud, tax, cdn, loyalty}, []truth.Model{
		{Service: fraudSvc, Metric: "error", Dist: truth.Bernoulli, Baseline: 0.10, Terms: []truth.Term{
			truth.Main("fraud-rules", "strict", 0.08),
		}},
		{Service: taxSvc, Metric: "latency_ms", Dist: truth.Normal, Baseline: 20, SD: 6},
		{Service: cdnSvc, Metric: "latency_ms", Dist: truth.Normal, Baseline: 80, SD: 25, Terms: []truth.Term{
			truth.Main("image-cdn", "cdn", -10),
		}},
		{Service: loyaltySvc, Metric: "attribute:points.redeemed", Dist: truth.Normal, Baseline: 5, SD: 4, Terms: []truth.Term{
			truth.Main("loyalty-points", "double", 1.5),
		}},
	}
}

func countServices(edges []tracing.Edge) int {
	s := map[string]bool{}
	for _, e := range edges {
		s[e.Caller], s[e.Callee] = true, true
	}
	return len(s)
}

// Config returns the assignment configuration of the scenario's layers and
// experiments (version 1).
func (s *Scenario) Config() assign.Config {
	return assign.Config{Version: 1, Experiments: slices.Clone(s.Experiments), Layers: slices.Clone(s.Layers)}
}

// Engine compiles Config: the real assignment the simulated units get.
func (s *Scenario) Engine() (*assign.Engine, error) { return assign.Compile(s.Config()) }

// Graph returns the scenario's dependency graph.
func (s *Scenario) Graph() (*subset.Graph, error) { return subset.NewGraph(s.Edges) }

// Tests returns the experiments as the subsetter sees them, sorted by id.
func (s *Scenario) Tests() []subset.Test {
	out := make([]subset.Test, len(s.Experiments))
	for i, x := range s.Experiments {
		out[i] = subset.FromExperiment(x)
	}
	slices.SortFunc(out, func(a, b subset.Test) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Subsets computes every test's subset on the scenario's graph with
// subset.Compute (default cap unless opts say otherwise), sorted by
// viewpoint.
func (s *Scenario) Subsets(opts ...subset.Option) ([]subset.Subset, error) {
	g, err := s.Graph()
	if err != nil {
		return nil, err
	}
	return subset.Compute(s.Tests(), g, opts...)
}

// TruthFor returns the outcome model of the metric test measures, or nil
// when the test or its truth is unknown.
func (s *Scenario) TruthFor(test string) *truth.Model {
	for _, x := range s.Experiments {
		if x.ID == test {
			key := subset.FromExperiment(x).Metric
			for i := range s.Truths {
				if s.Truths[i].Service == x.MeasureService && s.Truths[i].Metric == key {
					return &s.Truths[i]
				}
			}
		}
	}
	return nil
}

// DrawAttributes draws one unit's attributes, one value per Attribute in
// order (nil when the scenario has none).
func (s *Scenario) DrawAttributes(rng *rand.Rand) map[string]string {
	return truth.DrawAttributes(rng, s.Attributes)
}
