package subset

import (
	"fmt"
	"slices"

	"gonum.org/v1/gonum/graph/simple"
	"gonum.org/v1/gonum/graph/topo"

	"github.com/abmesh/abmesh/tracing"
)

// Graph is an immutable service dependency graph with its reachability
// precomputed. It is safe for concurrent use.
//
// Reachability is the transitive closure computed once in NewGraph from
// the graph's strongly connected components (gonum topo.TarjanSCC, which
// yields them callees first): O(V·E/64) time and 2·V²/8 bytes, about 60 KiB
// for 500 services.
type Graph struct {
	names []string // sorted; a service's index is its position
	index map[string]int
	edges []tracing.Edge // sorted by caller, then callee; duplicates summed
	out   []int64        // out[v]: sum of counts of edges leaving v
	in    [][]inEdge
	down  []bitset // down[v]: v and every service v reaches
	up    []bitset // up[v]: v and every service that reaches v
}

type inEdge struct {
	from  int
	count int64
}

// NewGraph builds a graph from edges. Repeated caller→callee pairs are
// summed; self calls (Caller == Callee) are skipped, as the tracing
// package does. An edge with an empty service name is
// an error wrapping ErrInvalid. nil or empty edges give the empty graph.
func NewGraph(edges []tracing.Edge) (*Graph, error) {
	type pair struct{ a, b string }
	sum := make(map[pair]uint64, len(edges))
	seen := make(map[string]struct{})
	for i, e := range edges {
		if e.Caller == "" || e.Callee == "" {
			return nil, fmt.Errorf("edge %d (%q→%q): empty service name: %w", i, e.Caller, e.Callee, ErrInvalid)
		}
		seen[e.Caller] = struct{}{}
		seen[e.Callee] = struct{}{}
		if e.Caller == e.Callee {
			continue
		}
		sum[pair{e.Caller, e.Callee}] += e.Calls
	}
	g := &Graph{index: make(map[string]int, len(seen))}
	for s := range seen {
		g.names = append(g.names, s)
	}
	slices.Sort(g.names)
	for i, s := range g.names {
		g.index[s] = i
	}
	n := len(g.names)
	g.out = make([]int64, n)
	g.in = make([][]inEdge, n)
	dg := simple.NewDirectedGraph()
	for i := range n {
		dg.AddNode(simple.Node(i))
	}
	for p, c := range sum {
		a, b := g.index[p.a], g.index[p.b]
		g.edges = append(g.edges, tracing.Edge{Caller: p.a, Callee: p.b, Calls: c})
		g.out[a] += int64(c)
		g.in[b] = append(g.in[b], inEdge{from: a, count: int64(c)})
		dg.SetEdge(simple.Edge{F: simple.Node(a), T: simple.Node(b)})
	}
	tracing.SortEdges(g.edges)
	g.closure(dg)
	return g, nil
}

// closure fills down and up. TarjanSCC returns components in reverse
// topological order of the condensation: every component comes after all
// the components it reaches, so one pass accumulates reachability.
func (g *Graph) closure(dg *simple.DirectedGraph) {
	n := len(g.names)
	g.down = make([]bitset, n)
	g.up = make([]bitset, n)
	for _, scc := range topo.TarjanSCC(dg) {
		r := newBitset(n)
		for _, v := range scc {
			r.set(int(v.ID()))
		}
		for _, v := range scc {
			succ := dg.From(v.ID())
			for succ.Next() {
				if w := int(succ.Node().ID()); g.down[w] != nil {
					r.or(g.down[w])
				}
			}
		}
		for _, v := range scc {
			g.down[v.ID()] = r // shared by the component, read-only
		}
	}
	for v := range n {
		g.up[v] = newBitset(n)
	}
	for v := range n {
		g.down[v].each(func(w int) { g.up[w].set(v) })
	}
}

// Services returns the graph's services, sorted.
func (g *Graph) Services() []string { return slices.Clone(g.names) }

// Edges returns the graph's edges, sorted by caller then callee, with
// repeated pairs summed.
func (g *Graph) Edges() []tracing.Edge { return slices.Clone(g.edges) }

// Has reports whether service is in the graph.
func (g *Graph) Has(service string) bool { _, ok := g.index[service]; return ok }

// Region returns the services, sorted, of scope resolved for a test with
// the given change and measure services. ScopeAll is every service of the
// graph plus change and measure. An invalid scope gives an error wrapping
// ErrInvalid.
func (g *Graph) Region(scope Scope, change, measure string) ([]string, error) {
	if !scope.Valid() {
		return nil, fmt.Errorf("scope %q is not a scope: %w", scope, ErrInvalid)
	}
	u := newUniverse(g, []Test{{ChangeService: change, MeasureService: measure}})
	return u.names(u.region(scope, change, measure)), nil
}

// Volume returns the call volume through services: the sum of the counts
// of the edges with at least one end in services (each edge once).
// Services not in the graph contribute nothing.
func (g *Graph) Volume(services []string) int64 {
	b := newBitset(len(g.names))
	for _, s := range services {
		if i, ok := g.index[s]; ok {
			b.set(i)
		}
	}
	return g.volume(b)
}

// volume is Volume over a bitset of service indices; indices past the
// graph's services are ignored.
//
//	volume(S) = Σ_{v∈S} out(v) + Σ_{v∈S} Σ_{u→v, u∉S} count(u→v)
func (g *Graph) volume(s bitset) int64 {
	var vol int64
	n := len(g.names)
	s.each(func(v int) {
		if v >= n {
			return
		}
		vol += g.out[v]
		for _, e := range g.in[v] {
			if !s.has(e.from) {
				vol += e.count
			}
		}
	})
	return vol
}

// universe indexes the services considered by one computation: the
// graph's services, then the tests' change and measure services that are
// not in the graph, sorted.
type universe struct {
	g     *Graph
	extra []string
	index map[string]int // extra services only
	n     int            // total services
	all   bitset
	cache map[regionKey]bitset
}

type regionKey struct {
	scope Scope
	a, b  string
}

func newUniverse(g *Graph, tests []Test) *universe {
	u := &universe{g: g, index: map[string]int{}, cache: map[regionKey]bitset{}}
	for _, t := range tests {
		for _, s := range [2]string{t.ChangeService, t.MeasureService} {
			if _, ok := g.index[s]; ok {
				continue
			}
			if _, ok := u.index[s]; !ok {
				u.index[s] = -1
				u.extra = append(u.extra, s)
			}
		}
	}
	slices.Sort(u.extra)
	for i, s := range u.extra {
		u.index[s] = len(g.names) + i
	}
	u.n = len(g.names) + len(u.extra)
	u.all = newBitset(u.n)
	for i := range u.n {
		u.all.set(i)
	}
	return u
}

func (u *universe) idx(s string) int {
	if i, ok := u.g.index[s]; ok {
		return i
	}
	return u.index[s]
}

func (u *universe) name(i int) string {
	if i < len(u.g.names) {
		return u.g.names[i]
	}
	return u.extra[i-len(u.g.names)]
}

func (u *universe) names(b bitset) []string {
	out := make([]string, 0, b.count())
	b.each(func(i int) { out = append(out, u.name(i)) })
	if len(u.extra) > 0 {
		slices.Sort(out) // extra services may sort before graph ones
	}
	return out
}

// single returns {s}.
func (u *universe) single(s string) bitset {
	b := newBitset(u.n)
	b.set(u.idx(s))
	return b
}

// reach returns s and everything it reaches (down) or that reaches it.
func (u *universe) reach(s string, down bool) bitset {
	i, ok := u.g.index[s]
	if !ok {
		return u.single(s)
	}
	b := newBitset(u.n)
	if down {
		b.or(u.g.down[i])
	} else {
		b.or(u.g.up[i])
	}
	return b
}

// region resolves scope for change and measure; results are cached and
// must not be modified.
func (u *universe) region(scope Scope, change, measure string) bitset {
	k := regionKey{scope: scope}
	switch scope {
	case ScopeChange, ScopeChangeDownstream, ScopeChangeUpstream:
		k.a = change
	case ScopeMeasure, ScopeMeasureDownstream, ScopeMeasureUpstream:
		k.a = measure
	case ScopeChangeToMeasure:
		k.a, k.b = change, measure
	case ScopeAll:
		return u.all
	}
	if r, ok := u.cache[k]; ok {
		return r
	}
	var r bitset
	switch scope {
	case ScopeChange, ScopeMeasure:
		r = u.single(k.a)
	case ScopeChangeDownstream, ScopeMeasureDownstream:
		r = u.reach(k.a, true)
	case ScopeChangeUpstream, ScopeMeasureUpstream:
		r = u.reach(k.a, false)
	case ScopeChangeToMeasure:
		r = u.between(change, measure)
	}
	u.cache[k] = r
	return r
}

// between is the change_to_measure region: down(c) ∩ up(m) when c reaches
// m, else down(m) ∩ up(c) when m reaches c, else {c, m}.
func (u *universe) between(c, m string) bitset {
	if r := u.reach(c, true).and(u.reach(m, false)); !r.empty() {
		return r
	}
	if r := u.reach(m, true).and(u.reach(c, false)); !r.empty() {
		return r
	}
	r := u.single(c)
	r.set(u.idx(m))
	return r
}
