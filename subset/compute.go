package subset

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Reason is why a test U is in viewpoint T's subset: U emits Kind over
// EmitScope, T is susceptible to Kind over SusceptibleScope, and the two
// regions share the services Shared (sorted, never empty). Shared slices
// returned by Compute may be shared between reasons: treat them as
// read-only.
type Reason struct {
	Kind             string   `json:"kind"`
	EmitScope        Scope    `json:"emit_scope"`        // U's emitted scope
	SusceptibleScope Scope    `json:"susceptible_scope"` // T's susceptible scope
	Shared           []string `json:"shared"`
}

// Member is one test of a subset (or one left out by the cap).
type Member struct {
	Test string `json:"test"`
	// Reasons are every (emitted, susceptible) pair that matched, sorted by
	// kind, emit scope, susceptible scope. Empty for the viewpoint.
	Reasons []Reason `json:"reasons,omitempty"`
	// Volume is the call volume through the services shared over all
	// Reasons (Graph.Volume of their union); 0 for the viewpoint. The cap
	// keeps the members with the largest Volume.
	Volume int64 `json:"volume"`
	// Layer is set when the member is one of two or more tests of one
	// layer among the subset's Members: those tests form one factor, named
	// by the layer (see Compute). Empty otherwise.
	Layer string `json:"layer,omitempty"`
}

// Subset is one viewpoint's subset.
type Subset struct {
	Viewpoint string
	// Members are the modelled tests: Members[0] is the viewpoint, the
	// others follow sorted by factor (the test id, or the Layer of a layer
	// factor's tests), then test id. Their order is the factor order of the
	// viewpoint's cells, the consecutive members of one Layer being one
	// factor.
	Members []Member
	// NotModelled are the interfering tests the cap left out ("interference
	// not modelled"), sorted by test id, with their reasons.
	NotModelled []Member
	// Services are the services the subset touches, sorted: every modelled
	// member's change and measure services and its shared services.
	Services []string
}

// Tests returns the ids of Members, viewpoint first.
func (s Subset) Tests() []string {
	out := make([]string, len(s.Members))
	for i, m := range s.Members {
		out[i] = m.Test
	}
	return out
}

// Factors groups Members into the viewpoint's factors, in cell order: a
// member alone, or the consecutive members of one Layer. The groups share
// Members' backing array.
func (s Subset) Factors() [][]Member {
	var out [][]Member
	for i := 0; i < len(s.Members); {
		j := i + 1
		for s.Members[i].Layer != "" && j < len(s.Members) && s.Members[j].Layer == s.Members[i].Layer {
			j++
		}
		out = append(out, s.Members[i:j:j])
		i = j
	}
	return out
}

// FactorLabels names each of Factors for people: the test id, or for a
// layer factor "layer (test, test, …)".
func (s Subset) FactorLabels() []string {
	var out []string
	for _, f := range s.Factors() {
		if f[0].Layer == "" {
			out = append(out, f[0].Test)
			continue
		}
		ids := make([]string, len(f))
		for i, m := range f {
			ids[i] = m.Test
		}
		out = append(out, f[0].Layer+" ("+strings.Join(ids, ", ")+")")
	}
	return out
}

// Compute returns every test's subset, in the order of tests. Every test
// given is taken as running; the Subsetter passes only running ones.
//
// U (≠ T) joins T's subset when some Interference e of U.Emits and s of
// T.Susceptible have e.Kind == s.Kind and the regions of e.Scope (resolved
// for U) and s.Scope (resolved for T) intersect, unless U and T are in the
// same layer: layer mates are mutually exclusive (no unit is in both), so
// they cannot interact in a request and their factorial would have empty
// cells. A test without
// interference attributes is its own one-test subset. With a cap (WithCap,
// default DefaultCap) a subset of more than cap tests keeps the viewpoint
// and the cap−1 members of largest Volume (ties: smaller test id) and
// reports the rest in NotModelled (the cap counts tests, not factors).
//
// A layer inside a subset is one factor: when two or more kept members
// belong to one layer (mutually exclusive tests that partition the layer's
// units), each gets Layer set and they sort together, so the viewpoint's
// window models them as a single factor whose levels are the tests'
// (test, variant) pairs plus "outside every slice" (see WindowMember). A
// single test of a layer stays a factor of its own (units outside its
// slice are not counted).
//
// A nil g is the empty graph. An invalid test (empty id, change or measure
// service, empty kind, unknown scope) or a repeated id gives an error
// wrapping ErrInvalid.
//
// Cost: regions are bitsets over the services, resolved once per
// (scope, service) from the graph's precomputed closure, so the pairwise
// pass is O(N²·|E|·|S|·V/64) for N tests with |E| emitted and |S|
// susceptible interferences.
func Compute(tests []Test, g *Graph, opts ...Option) ([]Subset, error) {
	cfg := newConfig(opts)
	if g == nil {
		g = emptyGraph
	}
	if err := validateUnique(tests); err != nil {
		return nil, err
	}
	c := newComputation(tests, g)
	out := make([]Subset, len(tests))
	for ti := range tests {
		cands, candShared := c.candidates(ti)
		sub := Subset{Viewpoint: tests[ti].ID}
		keep := cands
		if cfg.cap > 0 && len(cands)+1 > cfg.cap {
			keep, candShared, sub.NotModelled = capMembers(cands, candShared, cfg.cap)
		}
		c.markLayers(keep)
		slices.SortFunc(keep, compareFactors)
		sub.Members = append(make([]Member, 0, len(keep)+1), Member{Test: tests[ti].ID})
		sub.Members = append(sub.Members, keep...)
		sub.Services = c.services(ti, keep, candShared)
		out[ti] = sub
	}
	return out, nil
}

// validateUnique checks each test's shape and that no id repeats; errors
// wrap ErrInvalid.
func validateUnique(tests []Test) error {
	ids := make(map[string]struct{}, len(tests))
	for i := range tests {
		if err := tests[i].validateShape(); err != nil {
			return err
		}
		if _, dup := ids[tests[i].ID]; dup {
			return fmt.Errorf("test %q: id is repeated: %w", tests[i].ID, ErrInvalid)
		}
		ids[tests[i].ID] = struct{}{}
	}
	return nil
}

// computation is Compute's state over one set of tests and one graph:
// every test's emitted and susceptible regions resolved once, the interned
// shared sets, and scratch bitsets reused across pairs.
type computation struct {
	tests  []Test
	u      *universe
	tab    *internTable
	byID   map[string]int
	emit   [][]bitset // emit[i][k]: region of tests[i].Emits[k]
	susc   [][]bitset // susc[i][k]: region of tests[i].Susceptible[k]
	shared bitset
	union  bitset
}

func newComputation(tests []Test, g *Graph) *computation {
	u := newUniverse(g, tests)
	c := &computation{tests: tests, u: u, tab: newInternTable(u, g), byID: make(map[string]int, len(tests)),
		emit: make([][]bitset, len(tests)), susc: make([][]bitset, len(tests)),
		shared: newBitset(u.n), union: newBitset(u.n)}
	for i, t := range tests {
		c.byID[t.ID] = i
		for _, e := range t.Emits {
			c.emit[i] = append(c.emit[i], u.region(e.Scope, t.ChangeService, t.MeasureService))
		}
		for _, s := range t.Susceptible {
			c.susc[i] = append(c.susc[i], u.region(s.Scope, t.ChangeService, t.MeasureService))
		}
	}
	return c
}

// candidates returns every test that can interfere with tests[ti] (not a
// layer mate: layer mates share no unit), each with its reasons and the
// call volume through all the services it shares with the viewpoint, and
// in the same order the interned union of those shared services.
func (c *computation) candidates(ti int) ([]Member, []*interned) {
	t := c.tests[ti]
	var cands []Member
	var candShared []*interned
	for ui, v := range c.tests {
		if ui == ti || (t.Layer != "" && v.Layer == t.Layer) {
			continue
		}
		reasons, all := c.reasons(ti, ui)
		if len(reasons) == 0 {
			continue
		}
		cands = append(cands, Member{Test: v.ID, Reasons: reasons, Volume: c.tab.volume(all)})
		candShared = append(candShared, all)
	}
	return cands, candShared
}

// reasons returns why tests[ui] is in tests[ti]'s subset — one Reason per
// (emitted, susceptible) pair of one kind whose regions meet, sorted and
// unique — and the interned union of the services those pairs share; no
// reasons when they never meet.
func (c *computation) reasons(ti, ui int) ([]Reason, *interned) {
	t, v := c.tests[ti], c.tests[ui]
	var reasons []Reason
	var first *interned
	multi := false
	for si, s := range t.Susceptible {
		for ei, e := range v.Emits {
			if e.Kind != s.Kind || !c.emit[ui][ei].intersects(c.susc[ti][si]) {
				continue
			}
			c.shared.andOf(c.emit[ui][ei], c.susc[ti][si])
			in := c.tab.intern(c.shared)
			switch {
			case first == nil:
				first = in
				copy(c.union, c.shared)
			case in != first:
				multi = true
				c.union.or(c.shared)
			}
			reasons = append(reasons, Reason{Kind: e.Kind, EmitScope: e.Scope, SusceptibleScope: s.Scope, Shared: c.tab.names(in)})
		}
	}
	if len(reasons) > 1 {
		slices.SortFunc(reasons, compareReasons)
		reasons = slices.CompactFunc(reasons, func(a, b Reason) bool { return compareReasons(a, b) == 0 })
	}
	if multi {
		return reasons, c.tab.intern(c.union)
	}
	return reasons, first
}

// markLayers sets Layer on every member of keep whose layer has two or
// more tests in keep.
func (c *computation) markLayers(keep []Member) {
	var count map[string]int
	for _, m := range keep {
		if l := c.tests[c.byID[m.Test]].Layer; l != "" {
			if count == nil {
				count = map[string]int{}
			}
			count[l]++
		}
	}
	for i := range keep {
		if l := c.tests[c.byID[keep[i].Test]].Layer; l != "" && count[l] >= 2 {
			keep[i].Layer = l
		}
	}
}

// capMembers keeps the capN-1 candidates with the most call volume (ties
// by test id) and their shared sets; the rest are returned, sorted, as not
// modelled.
func capMembers(cands []Member, candShared []*interned, capN int) (keep []Member, keptShared []*interned, notModelled []Member) {
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(cands[b].Volume, cands[a].Volume); c != 0 {
			return c
		}
		return cmp.Compare(cands[a].Test, cands[b].Test)
	})
	for rank, i := range order {
		if rank < capN-1 {
			keep = append(keep, cands[i])
			keptShared = append(keptShared, candShared[i])
		} else {
			notModelled = append(notModelled, cands[i])
		}
	}
	slices.SortFunc(notModelled, compareMembers)
	return keep, keptShared, notModelled
}

// services returns, sorted, the services of tests[ti]'s subset: the
// viewpoint's change and measure services, every kept member's, and every
// service a kept member shares with the viewpoint.
func (c *computation) services(ti int, keep []Member, shared []*interned) []string {
	t := c.tests[ti]
	svc := newBitset(c.u.n)
	svc.set(c.u.idx(t.ChangeService))
	svc.set(c.u.idx(t.MeasureService))
	for _, sh := range shared {
		svc.or(sh.bits)
	}
	for _, m := range keep {
		v := c.tests[c.byID[m.Test]]
		svc.set(c.u.idx(v.ChangeService))
		svc.set(c.u.idx(v.MeasureService))
	}
	return c.u.names(svc)
}

var emptyGraph, _ = NewGraph(nil)

// interned is one distinct set of shared services met by Compute, with its
// names and volume computed once: shared sets repeat a lot (a region
// intersected with a wider one is itself).
type interned struct {
	bits   bitset
	names  []string
	volume int64 // −1 until computed
}

type internTable struct {
	u *universe
	g *Graph
	m map[uint64][]*interned
}

func newInternTable(u *universe, g *Graph) *internTable {
	return &internTable{u: u, g: g, m: map[uint64][]*interned{}}
}

// intern returns the entry equal to b, adding a copy of b when new.
func (t *internTable) intern(b bitset) *interned {
	h := uint64(14695981039346656037)
	for _, w := range b {
		h = (h ^ w) * 1099511628211
		h ^= h >> 29
	}
	for _, in := range t.m[h] {
		if slices.Equal(in.bits, b) {
			return in
		}
	}
	in := &interned{bits: slices.Clone(b), volume: -1}
	t.m[h] = append(t.m[h], in)
	return in
}

func (t *internTable) names(in *interned) []string {
	if in.names == nil {
		in.names = t.u.names(in.bits)
	}
	return in.names
}

func (t *internTable) volume(in *interned) int64 {
	if in.volume < 0 {
		in.volume = t.g.volume(in.bits)
	}
	return in.volume
}

func compareMembers(a, b Member) int { return cmp.Compare(a.Test, b.Test) }

// compareFactors orders members by factor, the Layer of a layer factor's
// tests or else the test id, then by test id.
func compareFactors(a, b Member) int {
	return cmp.Or(cmp.Compare(a.factorKey(), b.factorKey()), cmp.Compare(a.Test, b.Test))
}

func (m Member) factorKey() string {
	if m.Layer != "" {
		return m.Layer
	}
	return m.Test
}

func compareReasons(a, b Reason) int {
	return cmp.Or(
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.EmitScope, b.EmitScope),
		cmp.Compare(a.SusceptibleScope, b.SusceptibleScope),
	)
}
