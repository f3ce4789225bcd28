package sim

import (
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/tool/truth"
	"github.com/abmesh/abmesh/subset"
)

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

// compile checks that the simulator can run the scenario and that its
// truth respects the method's assumption, and returns it compiled:
//
//   - the assignment Config compiles; every experiment is RUNNING with
//     exactly two variants and a plan with mde > 0 and sd > 0; at most 63
//     experiments; a layer holds a power of two of them;
//   - attributes have values with non-negative weights of positive sum;
//   - every experiment's metric has exactly one truth, a normal one with
//     SD > 0; every truth's terms name existing tests and their treatment
//     variants, and no term names two tests of one layer (they are never
//     served together);
//   - interactions lie inside subsets: for every interaction term on a
//     metric, some test of the term measures that metric, and for every
//     such test T the term's tests are all in T's subset;
//   - no subset holds two tests of one layer.
//
// Errors start with "scenario <name>: ".
func (s *Scenario) compile() (*compiled, error) {
	c := &compiled{sc: s, index: map[string]int{}}
	err := c.compileEngine()
	if err == nil {
		err = c.compileAttributes()
	}
	if err == nil {
		err = c.compileTests()
	}
	if err == nil {
		err = c.compileTruths()
	}
	if err == nil {
		err = c.compileSubsets()
	}
	if err == nil {
		err = errors.Join(append(c.checkSubsetLayers(), c.checkTerms()...)...)
	}
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	return c, nil
}

// compileEngine compiles the scenario's assignment configuration into
// c.eng and checks that it has 1 to 63 experiments.
func (c *compiled) compileEngine() error {
	eng, err := c.sc.Engine()
	if err != nil {
		return err
	}
	c.eng = eng
	switch n := len(eng.Config().Experiments); {
	case n == 0:
		return errors.New("no experiments")
	case n > 63:
		return fmt.Errorf("%d experiments (at most 63)", n)
	}
	return nil
}

// compileAttributes checks the unit attributes' distributions and keeps
// them in c.attrs, with every combination of their values in c.combos.
func (c *compiled) compileAttributes() error {
	for _, a := range c.sc.Attributes {
		if a.Name == "" || len(a.Values) == 0 || len(a.Values) != len(a.Weights) {
			return fmt.Errorf("attribute %q: want a name and as many weights as values", a.Name)
		}
		var sum float64
		for _, w := range a.Weights {
			if !(w >= 0) {
				return fmt.Errorf("attribute %q: negative weight", a.Name)
			}
			sum += w
		}
		if !(sum > 0) {
			return fmt.Errorf("attribute %q: weights sum to 0", a.Name)
		}
		c.attrs = append(c.attrs, a)
	}
	c.combos = attrCombos(c.sc.Attributes)
	return nil
}

// truthIndex maps every truth's Key to its index, checking that no
// metric has two and that a normal one has SD > 0.
func (s *Scenario) truthIndex() (map[string]int, error) {
	idx := map[string]int{}
	for i := range s.Truths {
		k := s.Truths[i].Key()
		if _, dup := idx[k]; dup {
			return nil, fmt.Errorf("two truths for %s", k)
		}
		if s.Truths[i].Dist == truth.Normal && !(s.Truths[i].SD > 0) {
			return nil, fmt.Errorf("truth %s: a normal metric needs SD > 0", k)
		}
		idx[k] = i
	}
	return idx, nil
}

// compileTests describes every experiment of the engine, in its order, in
// c.tests (and c.index): its variants, its metric's truth, its plan, its
// layer group and slot, and the probability that it randomizes a unit.
// It needs c.eng and c.combos, and checks what the simulator supports of
// each experiment and that every layer holds a power of two of them.
func (c *compiled) compileTests() error {
	truthIdx, err := c.sc.truthIndex()
	if err != nil {
		return err
	}
	cfg := c.eng.Config()
	var layers []string // by group
	var layerSize []int
	for i := range cfg.Experiments {
		x := &cfg.Experiments[i]
		if x.Status != assign.StatusRunning {
			return fmt.Errorf("experiment %s is %s (want RUNNING)", x.ID, x.Status)
		}
		if len(x.Variants) != 2 {
			return fmt.Errorf("experiment %s has %d variants (the simulator wants 2)", x.ID, len(x.Variants))
		}
		key := x.MeasureService + "/" + subset.FromExperiment(*x).Metric
		m, ok := truthIdx[key]
		if !ok {
			return fmt.Errorf("experiment %s: no truth for its metric %s", x.ID, key)
		}
		t := testInfo{x: x, id: x.ID, variants: [2]string{x.Variants[0].Name, x.Variants[1].Name},
			metric: m, layer: -1, mde: x.Plan.MDE, sd: x.Plan.SD, alpha: x.Plan.Alpha, power: x.Plan.Power}
		if !(t.mde > 0 && t.sd > 0) {
			return fmt.Errorf("experiment %s: the plan needs mde > 0 and sd > 0", x.ID)
		}
		t.elig = c.targetedProb(x.ID)
		if x.Layer != "" {
			g := slices.Index(layers, x.Layer)
			if g < 0 {
				g = len(layers)
				layers = append(layers, x.Layer)
				layerSize = append(layerSize, 0)
			}
			t.layer, t.slot = g, layerSize[g]
			layerSize[g]++
			t.elig *= sliceShare(x)
		}
		c.index[x.ID] = i
		c.tests = append(c.tests, t)
	}
	for g, n := range layerSize {
		if bits.OnesCount(uint(n)) != 1 {
			return fmt.Errorf("layer %s has %d experiments (the full factorial wants a power of two)", layers[g], n)
		}
	}
	return nil
}

// sliceShare is the share of units x's layer slice holds (1 outside
// layers).
func sliceShare(x *assign.Experiment) float64 {
	if x.Layer == "" {
		return 1
	}
	return float64(x.Slice.End-x.Slice.Start) / assign.LayerBuckets
}

// compileTruths compiles every truth over c.tests into c.truths, in the
// scenario's order.
func (c *compiled) compileTruths() error {
	treat := make([]string, len(c.tests))
	for i, t := range c.tests {
		treat[i] = t.variants[1]
	}
	for i := range c.sc.Truths {
		ct, err := compileTruth(&c.sc.Truths[i], c.index, treat)
		if err != nil {
			return err
		}
		c.truths = append(c.truths, ct)
	}
	return nil
}

// compileSubsets computes every test's subset on the graph into c.subs,
// in test order.
func (c *compiled) compileSubsets() error {
	subs, err := c.sc.Subsets()
	if err != nil {
		return fmt.Errorf("subsets: %w", err)
	}
	c.subs = make([]subset.Subset, len(c.tests))
	for _, sub := range subs {
		c.subs[c.index[sub.Viewpoint]] = sub
	}
	return nil
}

// checkSubsetLayers returns an error for every subset that holds two tests
// of one layer (the full factorial's layer factor cannot express it).
func (c *compiled) checkSubsetLayers() []error {
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
	return errs
}

// checkTerms returns an error for every truth term that names two tests
// of one layer, and for every interaction term that lies outside the
// subset of a test of the term measuring its metric, or that no test of
// the term measures.
func (c *compiled) checkTerms() []error {
	var errs []error
	for m, ct := range c.truths {
		for k, mask := range ct.masks {
			if c.twoOfOneLayer(mask) {
				errs = append(errs, fmt.Errorf("truth %s: term %d names two tests of one layer", ct.Key(), k))
			}
			if bits.OnesCount64(mask) < 2 {
				continue
			}
			name := strings.Join(ct.Terms[k].Tests, ":")
			measured := false
			for j := range c.tests {
				if mask&(1<<j) == 0 || c.tests[j].metric != m {
					continue
				}
				measured = true
				if mask&^c.subsetMask(j) != 0 {
					errs = append(errs, fmt.Errorf("truth %s: interaction %s reaches outside the subset of %s", ct.Key(), name, c.tests[j].id))
				}
			}
			if !measured {
				errs = append(errs, fmt.Errorf("truth %s: interaction %s: none of its tests measures this metric", ct.Key(), name))
			}
		}
	}
	return errs
}

// twoOfOneLayer reports whether the tests of mask include two of one
// layer.
func (c *compiled) twoOfOneLayer(mask uint64) bool {
	seen := map[int]bool{}
	for j := range c.tests {
		if l := c.tests[j].layer; mask&(1<<j) != 0 && l >= 0 {
			if seen[l] {
				return true
			}
			seen[l] = true
		}
	}
	return false
}

// subsetMask returns the tests of test j's subset as a mask.
func (c *compiled) subsetMask(j int) uint64 {
	var members uint64
	for _, mb := range c.subs[j].Members {
		members |= 1 << c.index[mb.Test]
	}
	return members
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
