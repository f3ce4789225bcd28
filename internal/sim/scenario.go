package sim

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/shop"
	"github.com/abmesh/abmesh/internal/truth"
	"github.com/abmesh/abmesh/subset"
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
	Edges       []subset.Edge
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

// Shop returns the demo shop of internal/shop: its layer and its seven
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
	callees := map[string][]string{}
	for _, e := range edges {
		callees[e.Caller] = append(callees[e.Caller], e.Callee)
	}
	used := map[string]bool{}
	// pick returns the first unused service of a layer, preferring the
	// given candidates in order.
	pick := func(layer int, prefer []string) string {
		for _, s := range prefer {
			if strings.HasPrefix(s, layerRoles[layer]+"-") && !used[s] {
				used[s] = true
				return s
			}
		}
		for i := range DefaultLayers[layer] {
			if s := ServiceName(layer, i); !used[s] {
				used[s] = true
				return s
			}
		}
		panic("sim: large scenario: layer " + layerRoles[layer] + " has too few services")
	}
	ux, lat, errRate, res := subset.KindUserExperience, subset.KindLatency, subset.KindErrorRate, subset.KindResource
	uxMeasure := func(x *assign.Experiment) {
		x.Emits = []assign.Interference{inter(ux, assign.ScopeMeasure)}
		x.Susceptible = []assign.Interference{inter(ux, assign.ScopeMeasure)}
	}
	alone := func(x *assign.Experiment) {
		x.Emits = []assign.Interference{inter(errRate, assign.ScopeChange)}
		x.Susceptible = []assign.Interference{inter(errRate, assign.ScopeChange)}
	}

	apiA, apiB := pick(1, nil), pick(1, nil)
	orderValue := attr("order.value", true)
	hero := running("hero-banner", "team-web", "Hero banner on the landing page", apiA, apiA, orderValue,
		"control", "banner", assign.Plan{MDE: 6, SD: 20})
	reco := running("reco-carousel", "team-reco", "Recommendation carousel", pick(2, callees[apiA]), apiA, orderValue,
		"control", "carousel", assign.Plan{MDE: 6, SD: 20})
	price := running("price-badge", "team-pricing", "Discount badge on prices", pick(2, callees[apiA]), apiA, orderValue,
		"control", "badge", assign.Plan{MDE: 6, SD: 20})
	for _, x := range []*assign.Experiment{&hero, &reco, &price} {
		uxMeasure(x)
	}

	clicks := attr("search.clicks", true)
	ranker := running("search-ranker", "team-search", "Learning-to-rank search", pick(2, callees[apiB]), apiB, clicks,
		"control", "ltr", assign.Plan{MDE: 3, SD: 10})
	suggest := running("search-suggest", "team-search", "Query suggestions", apiB, apiB, clicks,
		"control", "suggest", assign.Plan{MDE: 3, SD: 10})
	filters := running("search-filters", "team-search", "Facet filters on results", pick(2, callees[apiB]), apiB, clicks,
		"control", "facets", assign.Plan{MDE: 3, SD: 10})
	for _, x := range []*assign.Experiment{&ranker, &suggest, &filters} {
		uxMeasure(x)
	}

	L := pick(2, nil)
	S := pick(3, callees[L])
	inv := running("inventory-batch", "team-inventory", "Batched inventory lookups", L, L, latency,
		"control", "batched", assign.Plan{MDE: 1.5, SD: 5})
	inv.Metric.HigherIsBetter = false
	inv.Susceptible = []assign.Interference{inter(lat, assign.ScopeChange)}
	pool := running("db-pool", "team-storage", "Larger connection pool", S, S, latency,
		"control", "pool-64", assign.Plan{MDE: 0.6, SD: 2})
	pool.Metric.HigherIsBetter = false
	pool.Emits = []assign.Interference{inter(lat, assign.ScopeChangeUpstream)}
	pool.Susceptible = []assign.Interference{inter(res, assign.ScopeChange)}

	fraudSvc, taxSvc, cdnSvc, loyaltySvc := pick(2, nil), pick(3, nil), pick(1, nil), pick(4, nil)
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

	ab := func(t1, v1, t2, v2 string, e float64) truth.Term {
		return truth.Term{Tests: []string{t1, t2}, Variants: []string{v1, v2}, Effect: e}
	}
	sc := &Scenario{
		Name: "large",
		Description: fmt.Sprintf("a random layered graph (RandomGraph seed %d) with 12 concurrent tests: "+
			"two subsets of 3 (one with a 3-way interaction), one asymmetric pair, the rest alone", seed),
		Edges:       edges,
		Experiments: []assign.Experiment{hero, reco, price, ranker, suggest, filters, inv, pool, fraud, tax, cdn, loyalty},
		Truths: []truth.Model{
			{Service: apiA, Metric: "attribute:order.value", Dist: truth.Normal, Baseline: 40, SD: 20, Terms: []truth.Term{
				truth.Main("hero-banner", "banner", 3),
				truth.Main("reco-carousel", "carousel", 1),
				truth.Main("price-badge", "badge", 5),
				ab("hero-banner", "banner", "reco-carousel", "carousel", 10),
				{Tests: []string{"hero-banner", "reco-carousel", "price-badge"}, Variants: []string{"banner", "carousel", "badge"}, Effect: 12},
			}},
			{Service: apiB, Metric: "attribute:search.clicks", Dist: truth.Normal, Baseline: 10, SD: 10, Terms: []truth.Term{
				truth.Main("search-ranker", "ltr", 4),
				truth.Main("search-suggest", "suggest", 2),
				truth.Main("search-filters", "facets", 1.5),
				ab("search-ranker", "ltr", "search-suggest", "suggest", -6),
			}},
			{Service: L, Metric: "latency_ms", Dist: truth.Normal, Baseline: 30, SD: 5, Terms: []truth.Term{
				truth.Main("inventory-batch", "batched", -2),
				truth.Main("db-pool", "pool-64", -1),
				ab("inventory-batch", "batched", "db-pool", "pool-64", 3),
			}},
			{Service: S, Metric: "latency_ms", Dist: truth.Normal, Baseline: 8, SD: 2, Terms: []truth.Term{
				truth.Main("db-pool", "pool-64", -0.8),
			}},
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
		},
	}
	return sc, nil
}

func countServices(edges []subset.Edge) int {
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

// Validate checks that the simulator can run the scenario and that its
// truth respects the method's assumption:
//
//   - the assignment Config compiles; every experiment is RUNNING with
//     exactly two variants; at most 63 experiments; a layer holds a power
//     of two of them;
//   - attributes have values with positive weights;
//   - every experiment's metric has exactly one Truth, every Truth's terms
//     name existing tests and their treatment variants, no term names two
//     tests of one layer (they are never served together);
//   - interactions lie inside subsets: for every interaction term on a
//     metric, some test of the term measures that metric, and for every
//     such test T the term's tests are all in T's subset;
//   - no subset holds two tests of one layer.
func (s *Scenario) Validate() error {
	_, err := s.compile()
	return err
}

// compiled is a validated scenario in the form the simulation uses.
type compiled struct {
	sc     *Scenario
	eng    *assign.Engine
	tests  []testInfo // sorted by id, as the engine evaluates them
	index  map[string]int
	truths []compiledTruth
	subs   []subset.Subset // in test order
	attrs  []truth.Attribute
	combos []attrCombo // every combination of attribute values with its probability
}

type testInfo struct {
	x        *assign.Experiment
	id       string
	variants [2]string
	metric   int     // index into truths
	layer    int     // index into layer groups, -1 when not layered
	slot     int     // index within its layer group
	elig     float64 // P(the test randomizes a unit): targeting × slice
	mde, sd  float64
	alpha    float64
	power    float64
}

type attrCombo struct {
	attrs map[string]string
	p     float64
}

func (s *Scenario) compile() (*compiled, error) {
	c := &compiled{sc: s, index: map[string]int{}}
	eng, err := s.Engine()
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	c.eng = eng
	cfg := eng.Config()
	if len(cfg.Experiments) == 0 {
		return nil, fmt.Errorf("scenario %s: no experiments", s.Name)
	}
	if len(cfg.Experiments) > 63 {
		return nil, fmt.Errorf("scenario %s: %d experiments (at most 63)", s.Name, len(cfg.Experiments))
	}
	for _, a := range s.Attributes {
		if a.Name == "" || len(a.Values) == 0 || len(a.Values) != len(a.Weights) {
			return nil, fmt.Errorf("scenario %s: attribute %q: want a name and as many weights as values", s.Name, a.Name)
		}
		var sum float64
		for _, w := range a.Weights {
			if !(w >= 0) {
				return nil, fmt.Errorf("scenario %s: attribute %q: negative weight", s.Name, a.Name)
			}
			sum += w
		}
		if !(sum > 0) {
			return nil, fmt.Errorf("scenario %s: attribute %q: weights sum to 0", s.Name, a.Name)
		}
		c.attrs = append(c.attrs, a)
	}
	c.combos = attrCombos(s.Attributes)

	truthIdx := map[string]int{}
	for i := range s.Truths {
		k := s.Truths[i].Key()
		if _, dup := truthIdx[k]; dup {
			return nil, fmt.Errorf("scenario %s: two truths for %s", s.Name, k)
		}
		if s.Truths[i].Dist == truth.Normal && !(s.Truths[i].SD > 0) {
			return nil, fmt.Errorf("scenario %s: truth %s: a normal metric needs SD > 0", s.Name, k)
		}
		truthIdx[k] = i
	}
	layerGroups := map[string]int{}
	var layerSize []int
	treat := make([]string, len(cfg.Experiments))
	for i := range cfg.Experiments {
		x := &cfg.Experiments[i]
		if x.Status != assign.StatusRunning {
			return nil, fmt.Errorf("scenario %s: experiment %s is %s (want RUNNING)", s.Name, x.ID, x.Status)
		}
		if len(x.Variants) != 2 {
			return nil, fmt.Errorf("scenario %s: experiment %s has %d variants (the simulator wants 2)", s.Name, x.ID, len(x.Variants))
		}
		key := x.MeasureService + "/" + subset.FromExperiment(*x).Metric
		m, ok := truthIdx[key]
		if !ok {
			return nil, fmt.Errorf("scenario %s: experiment %s: no truth for its metric %s", s.Name, x.ID, key)
		}
		t := testInfo{x: x, id: x.ID, variants: [2]string{x.Variants[0].Name, x.Variants[1].Name},
			metric: m, layer: -1, mde: x.Plan.MDE, sd: x.Plan.SD, alpha: x.Plan.Alpha, power: x.Plan.Power}
		if !(t.mde > 0 && t.sd > 0) {
			return nil, fmt.Errorf("scenario %s: experiment %s: the plan needs mde > 0 and sd > 0", s.Name, x.ID)
		}
		if x.Layer != "" {
			g, ok := layerGroups[x.Layer]
			if !ok {
				g = len(layerSize)
				layerGroups[x.Layer] = g
				layerSize = append(layerSize, 0)
			}
			t.layer, t.slot = g, layerSize[g]
			layerSize[g]++
		}
		t.elig = c.targetedProb(x.ID)
		if x.Layer != "" {
			t.elig *= float64(x.Slice.End-x.Slice.Start) / assign.LayerBuckets
		}
		c.index[x.ID] = i
		treat[i] = t.variants[1]
		c.tests = append(c.tests, t)
	}
	for l, n := range layerSize {
		if bits.OnesCount(uint(n)) != 1 {
			for id, g := range layerGroups {
				if g == l {
					return nil, fmt.Errorf("scenario %s: layer %s has %d experiments (the full factorial wants a power of two)", s.Name, id, n)
				}
			}
		}
	}
	for i := range s.Truths {
		ct, err := compileTruth(&s.Truths[i], c.index, treat)
		if err != nil {
			return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
		}
		c.truths = append(c.truths, ct)
	}

	subs, err := s.Subsets()
	if err != nil {
		return nil, fmt.Errorf("scenario %s: subsets: %w", s.Name, err)
	}
	c.subs = make([]subset.Subset, len(c.tests))
	for _, sub := range subs {
		c.subs[c.index[sub.Viewpoint]] = sub
	}
	var errs []error
	for i, sub := range c.subs {
		seen := map[int]bool{}
		for _, m := range sub.Members {
			if l := c.tests[c.index[m.Test]].layer; l >= 0 {
				if seen[l] {
					errs = append(errs, fmt.Errorf("subset of %s holds two tests of one layer", c.tests[i].id))
				}
				seen[l] = true
			}
		}
	}
	for m, ct := range c.truths {
		for k, mask := range ct.masks {
			// Tests of one layer are never served together.
			layers := map[int]bool{}
			for j := range c.tests {
				if mask&(1<<j) != 0 && c.tests[j].layer >= 0 {
					if layers[c.tests[j].layer] {
						errs = append(errs, fmt.Errorf("truth %s: term %d names two tests of one layer", ct.Key(), k))
					}
					layers[c.tests[j].layer] = true
				}
			}
			if bits.OnesCount64(mask) < 2 {
				continue
			}
			measured := false
			for j := range c.tests {
				if mask&(1<<j) == 0 || c.tests[j].metric != m {
					continue
				}
				measured = true
				var members uint64
				for _, mb := range c.subs[j].Members {
					members |= 1 << c.index[mb.Test]
				}
				if mask&^members != 0 {
					errs = append(errs, fmt.Errorf("truth %s: interaction %s reaches outside the subset of %s",
						ct.Key(), strings.Join(ct.Terms[k].Tests, ":"), c.tests[j].id))
				}
			}
			if !measured {
				errs = append(errs, fmt.Errorf("truth %s: interaction %s: none of its tests measures this metric",
					ct.Key(), strings.Join(ct.Terms[k].Tests, ":")))
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, errors.Join(errs...))
	}
	return c, nil
}

// attrCombos enumerates every combination of attribute values with its
// probability.
func attrCombos(as []truth.Attribute) []attrCombo {
	combos := []attrCombo{{attrs: map[string]string{}, p: 1}}
	for _, a := range as {
		var sum float64
		for _, w := range a.Weights {
			sum += w
		}
		var next []attrCombo
		for _, c := range combos {
			for i, v := range a.Values {
				m := make(map[string]string, len(c.attrs)+1)
				for k, x := range c.attrs {
					m[k] = x
				}
				m[a.Name] = v
				next = append(next, attrCombo{m, c.p * a.Weights[i] / sum})
			}
		}
		combos = next
	}
	return combos
}

// targetedProb is the probability that a unit matches test's targeting.
func (c *compiled) targetedProb(test string) float64 {
	return c.targetedAllProb([]string{test})
}

// targetedAllProb is the probability that a unit matches the targeting of
// every test listed.
func (c *compiled) targetedAllProb(tests []string) float64 {
	var p float64
	for _, combo := range c.combos {
		ok := true
		for _, t := range tests {
			a, err := c.eng.EvaluateTest(t, "probe", combo.attrs)
			if err != nil || a.Reason == assign.ReasonNotTargeted {
				ok = false
				break
			}
		}
		if ok {
			p += combo.p
		}
	}
	return p
}

// drawAttrs draws a unit's attributes into one of the precomputed combos
// (so no map is allocated per unit).
func (c *compiled) drawAttrs(rng *rand.Rand) map[string]string {
	if len(c.attrs) == 0 {
		return nil
	}
	// combos are in row-major order of the attributes' values.
	idx := 0
	for i := range c.attrs {
		idx = idx*len(c.attrs[i].Values) + c.attrs[i].Draw(rng)
	}
	return c.combos[idx].attrs
}
