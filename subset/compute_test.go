package subset

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/abmesh/abmesh/tracing"
)

// workedGraph is the five-service example: a front end Svc1 calling two
// chains, Svc1→Svc2→Svc3 and Svc1→Svc4→Svc5.
func workedGraph(t testing.TB) *Graph {
	t.Helper()
	g, err := NewGraph([]tracing.Edge{
		{Caller: "Svc1", Callee: "Svc2", Calls: 100},
		{Caller: "Svc2", Callee: "Svc3", Calls: 80},
		{Caller: "Svc1", Callee: "Svc4", Calls: 50},
		{Caller: "Svc4", Callee: "Svc5", Calls: 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// workedTests: the viewpoint test on Svc2 is susceptible to latency over
// what Svc2 calls; the tests on Svc3 and Svc5 slow down their callers.
func workedTests() []Test {
	return []Test{
		{
			ID: "t2", ChangeService: "Svc2", MeasureService: "Svc2",
			Susceptible: []Interference{{KindLatency, ScopeChangeDownstream}},
			Variants:    []string{"control", "treatment"}, Metric: MetricLatencyMS, Running: true,
		},
		{
			ID: "t3", ChangeService: "Svc3", MeasureService: "Svc3",
			Emits:    []Interference{{KindLatency, ScopeChangeUpstream}},
			Variants: []string{"a", "b", "c"}, Metric: MetricLatencyMS, Running: true,
		},
		{
			ID: "t5", ChangeService: "Svc5", MeasureService: "Svc5",
			Emits:    []Interference{{KindLatency, ScopeChangeUpstream}},
			Variants: []string{"off", "on"}, Metric: MetricError, Running: true,
		},
	}
}

func TestComputeWorkedExample(t *testing.T) {
	subs, err := Compute(workedTests(), workedGraph(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []Subset{
		{
			Viewpoint: "t2",
			Members: []Member{
				{Test: "t2"},
				{Test: "t3", Volume: 180, Reasons: []Reason{{
					Kind: KindLatency, EmitScope: ScopeChangeUpstream, SusceptibleScope: ScopeChangeDownstream,
					Shared: []string{"Svc2", "Svc3"},
				}}},
			},
			Services: []string{"Svc2", "Svc3"},
		},
		{Viewpoint: "t3", Members: []Member{{Test: "t3"}}, Services: []string{"Svc3"}},
		{Viewpoint: "t5", Members: []Member{{Test: "t5"}}, Services: []string{"Svc5"}},
	}
	if !reflect.DeepEqual(subs, want) {
		t.Fatalf("Compute:\n got %+v\nwant %+v", subs, want)
	}
}

func TestRegion(t *testing.T) {
	g, err := NewGraph([]tracing.Edge{
		{Caller: "a", Callee: "b", Calls: 1}, {Caller: "b", Callee: "c", Calls: 1},
		{Caller: "c", Callee: "d", Calls: 1}, {Caller: "a", Callee: "x", Calls: 1},
		{Caller: "x", Callee: "d", Calls: 1}, {Caller: "e", Callee: "c", Calls: 1},
		{Caller: "d", Callee: "d", Calls: 9}, // self call: skipped
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		scope           Scope
		change, measure string
		want            []string
	}{
		{ScopeChange, "b", "d", []string{"b"}},
		{ScopeMeasure, "b", "d", []string{"d"}},
		{ScopeChangeDownstream, "b", "d", []string{"b", "c", "d"}},
		{ScopeChangeUpstream, "c", "d", []string{"a", "b", "c", "e"}},
		{ScopeMeasureDownstream, "b", "x", []string{"d", "x"}},
		{ScopeMeasureUpstream, "b", "x", []string{"a", "x"}},
		{ScopeChangeToMeasure, "a", "d", []string{"a", "b", "c", "d", "x"}},
		{ScopeChangeToMeasure, "b", "d", []string{"b", "c", "d"}},
		// measure upstream of change: the walks from measure to change
		{ScopeChangeToMeasure, "c", "a", []string{"a", "b", "c"}},
		// neither reaches the other
		{ScopeChangeToMeasure, "x", "e", []string{"e", "x"}},
		{ScopeChangeToMeasure, "b", "b", []string{"b"}},
		// services not in the graph are their own regions
		{ScopeChangeDownstream, "ghost", "d", []string{"ghost"}},
		{ScopeChangeToMeasure, "ghost", "d", []string{"d", "ghost"}},
		{ScopeAll, "b", "ghost", []string{"a", "b", "c", "d", "e", "ghost", "x"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tc.scope, tc.change, tc.measure), func(t *testing.T) {
			got, err := g.Region(tc.scope, tc.change, tc.measure)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Region = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := g.Region("sideways", "a", "b"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Region(sideways) error = %v, want ErrInvalid", err)
	}
}

func TestRegionCycle(t *testing.T) {
	// a ⇄ b → c: with cycles the closure covers the whole component.
	g, err := NewGraph([]tracing.Edge{{Caller: "a", Callee: "b", Calls: 1}, {Caller: "b", Callee: "a", Calls: 1}, {Caller: "b", Callee: "c", Calls: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		scope Scope
		svc   string
		want  []string
	}{
		{ScopeChangeDownstream, "a", []string{"a", "b", "c"}},
		{ScopeChangeUpstream, "c", []string{"a", "b", "c"}},
		{ScopeChangeUpstream, "a", []string{"a", "b"}},
	} {
		got, _ := g.Region(tc.scope, tc.svc, tc.svc)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Region(%s, %s) = %v, want %v", tc.scope, tc.svc, got, tc.want)
		}
	}
}

func TestNewGraph(t *testing.T) {
	g, err := NewGraph([]tracing.Edge{{Caller: "a", Callee: "b", Calls: 2}, {Caller: "a", Callee: "b", Calls: 3}, {Caller: "b", Callee: "b", Calls: 7}, {Caller: "b", Callee: "c", Calls: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := g.Edges(), []tracing.Edge{{Caller: "a", Callee: "b", Calls: 5}, {Caller: "b", Callee: "c", Calls: 1}}; !slices.Equal(got, want) {
		t.Errorf("Edges = %v, want %v", got, want)
	}
	if got, want := g.Services(), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("Services = %v, want %v", got, want)
	}
	for _, tc := range []struct {
		svcs []string
		want int64
	}{
		{nil, 0}, {[]string{"a"}, 5}, {[]string{"b"}, 6}, {[]string{"a", "b"}, 6},
		{[]string{"a", "b", "c"}, 6}, {[]string{"c", "ghost"}, 1},
	} {
		if got := g.Volume(tc.svcs); got != tc.want {
			t.Errorf("Volume(%v) = %d, want %d", tc.svcs, got, tc.want)
		}
	}
	for _, bad := range [][]tracing.Edge{{{Caller: "", Callee: "b", Calls: 1}}, {{Caller: "a", Callee: "", Calls: 1}}} {
		if _, err := NewGraph(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewGraph(%v) error = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestComputeInvalid(t *testing.T) {
	ok := Test{ID: "t", ChangeService: "a", MeasureService: "a"}
	for name, tests := range map[string][]Test{
		"empty id":      {{ChangeService: "a", MeasureService: "a"}},
		"empty change":  {{ID: "t", MeasureService: "a"}},
		"empty measure": {{ID: "t", ChangeService: "a"}},
		"empty kind":    {{ID: "t", ChangeService: "a", MeasureService: "a", Emits: []Interference{{"", ScopeAll}}}},
		"bad scope":     {{ID: "t", ChangeService: "a", MeasureService: "a", Susceptible: []Interference{{"latency", "near"}}}},
		"repeated id":   {ok, ok},
	} {
		if _, err := Compute(tests, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error = %v, want ErrInvalid", name, err)
		}
	}
}

func TestComputeKinds(t *testing.T) {
	// Kinds must match exactly; custom kinds work like the built-in ones.
	tests := []Test{
		{ID: "v", ChangeService: "a", MeasureService: "a", Susceptible: []Interference{{"cache_pressure", ScopeAll}, {KindErrorRate, ScopeChange}}},
		{ID: "u1", ChangeService: "b", MeasureService: "b", Emits: []Interference{{"cache_pressure", ScopeChange}}},
		{ID: "u2", ChangeService: "a", MeasureService: "a", Emits: []Interference{{KindLatency, ScopeAll}}},
		{ID: "u3", ChangeService: "a", MeasureService: "a", Emits: []Interference{{KindErrorRate, ScopeChange}, {"cache_pressure", ScopeMeasure}}},
	}
	subs, err := Compute(tests, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := subs[0].Tests(), []string{"v", "u1", "u3"}; !slices.Equal(got, want) {
		t.Fatalf("members = %v, want %v", got, want)
	}
	if got := len(subs[0].Members[2].Reasons); got != 2 {
		t.Errorf("u3 has %d reasons, want 2 (cache_pressure and error_rate)", got)
	}
	for _, s := range subs[1:] {
		if len(s.Members) != 1 {
			t.Errorf("%s: subset %v, want only itself", s.Viewpoint, s.Tests())
		}
	}
}

func TestComputeCap(t *testing.T) {
	// Viewpoint v on "hub" is susceptible to latency over what hub calls;
	// u0..u7 each change a service "s<i>" called by hub with count 10·(i+1)
	// and emit latency there, so each shares {s<i>} with v, with volume
	// 10·(i+1).
	var edges []tracing.Edge
	tests := []Test{{ID: "v", ChangeService: "hub", MeasureService: "hub", Susceptible: []Interference{{KindLatency, ScopeChangeDownstream}}}}
	edges = append(edges, tracing.Edge{Caller: "front", Callee: "hub", Calls: 1000})
	for i := range 8 {
		svc := fmt.Sprintf("s%d", i)
		edges = append(edges, tracing.Edge{Caller: "hub", Callee: svc, Calls: uint64(10 * (i + 1))})
		tests = append(tests, Test{ID: fmt.Sprintf("u%d", i), ChangeService: svc, MeasureService: svc, Emits: []Interference{{KindLatency, ScopeChange}}})
	}
	// u8 ties with u7's volume through the same service: ties go to the smaller id.
	tests = append(tests, Test{ID: "u8", ChangeService: "s7", MeasureService: "s7", Emits: []Interference{{KindLatency, ScopeChange}}})
	g, err := NewGraph(edges)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cap         int
		members     []string
		notModelled []string
	}{
		{0, []string{"v", "u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"}, nil},
		{DefaultCap, []string{"v", "u4", "u5", "u6", "u7", "u8"}, []string{"u0", "u1", "u2", "u3"}},
		{3, []string{"v", "u7", "u8"}, []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6"}},
		{2, []string{"v", "u7"}, []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u8"}},
		{1, []string{"v"}, []string{"u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"}},
		{10, []string{"v", "u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"}, nil},
	} {
		opts := []Option{WithCap(tc.cap)}
		if tc.cap == DefaultCap {
			opts = nil
		}
		subs, err := Compute(tests, g, opts...)
		if err != nil {
			t.Fatal(err)
		}
		s := subs[0]
		var nm []string
		for _, m := range s.NotModelled {
			nm = append(nm, m.Test)
			if len(m.Reasons) == 0 {
				t.Errorf("cap %d: not modelled %s has no reasons", tc.cap, m.Test)
			}
		}
		if !slices.Equal(s.Tests(), tc.members) || !slices.Equal(nm, tc.notModelled) {
			t.Errorf("cap %d: members %v not modelled %v, want %v and %v", tc.cap, s.Tests(), nm, tc.members, tc.notModelled)
		}
	}
	subs, _ := Compute(tests, g)
	if m := subs[0].Members[len(subs[0].Members)-1]; m.Test != "u8" || m.Volume != 80 {
		t.Errorf("last member %s volume %d, want u8 80", m.Test, m.Volume)
	}
	// Emitting upstream, each u shares {hub, s<i>} with v: every edge
	// touching hub counts, 1000 + 360, so all tie and the smallest ids win.
	for i := range tests[1:] {
		tests[1+i].Emits = []Interference{{KindLatency, ScopeChangeUpstream}}
	}
	subs, _ = Compute(tests, g, WithCap(3))
	if got, want := subs[0].Tests(), []string{"v", "u0", "u1"}; !slices.Equal(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}
	if m := subs[0].Members[1]; m.Volume != 1360 || !slices.Equal(m.Reasons[0].Shared, []string{"hub", "s0"}) {
		t.Errorf("member %+v, want volume 1360 sharing hub, s0", m)
	}
}

// --- property test against a brute-force implementation ---

type bruteGraph struct {
	services map[string]bool
	down     map[string][]string
	up       map[string][]string
	edges    map[[2]string]int64
}

func newBruteGraph(edges []tracing.Edge) bruteGraph {
	b := bruteGraph{services: map[string]bool{}, down: map[string][]string{}, up: map[string][]string{}, edges: map[[2]string]int64{}}
	for _, e := range edges {
		b.services[e.Caller], b.services[e.Callee] = true, true
		if e.Caller == e.Callee {
			continue
		}
		k := [2]string{e.Caller, e.Callee}
		if _, ok := b.edges[k]; !ok {
			b.down[e.Caller] = append(b.down[e.Caller], e.Callee)
			b.up[e.Callee] = append(b.up[e.Callee], e.Caller)
		}
		b.edges[k] += int64(e.Calls)
	}
	return b
}

func bfs(adj map[string][]string, from string) map[string]bool {
	seen := map[string]bool{from: true}
	queue := []string{from}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range adj[v] {
			if !seen[w] {
				seen[w] = true
				queue = append(queue, w)
			}
		}
	}
	return seen
}

func inter(a, b map[string]bool) map[string]bool {
	r := map[string]bool{}
	for k := range a {
		if b[k] {
			r[k] = true
		}
	}
	return r
}

func (b bruteGraph) region(scope Scope, t Test, all map[string]bool) map[string]bool {
	c, m := t.ChangeService, t.MeasureService
	switch scope {
	case ScopeChange:
		return map[string]bool{c: true}
	case ScopeMeasure:
		return map[string]bool{m: true}
	case ScopeChangeDownstream:
		return bfs(b.down, c)
	case ScopeChangeUpstream:
		return bfs(b.up, c)
	case ScopeMeasureDownstream:
		return bfs(b.down, m)
	case ScopeMeasureUpstream:
		return bfs(b.up, m)
	case ScopeChangeToMeasure:
		if r := inter(bfs(b.down, c), bfs(b.up, m)); len(r) > 0 {
			return r
		}
		if r := inter(bfs(b.down, m), bfs(b.up, c)); len(r) > 0 {
			return r
		}
		return map[string]bool{c: true, m: true}
	case ScopeAll:
		return all
	}
	panic(scope)
}

func (b bruteGraph) volume(s map[string]bool) int64 {
	var v int64
	for k, c := range b.edges {
		if s[k[0]] || s[k[1]] {
			v += c
		}
	}
	return v
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// bruteCompute is Compute written the obvious way.
func bruteCompute(tests []Test, edges []tracing.Edge, capN int) []Subset {
	b := newBruteGraph(edges)
	all := map[string]bool{}
	for s := range b.services {
		all[s] = true
	}
	for _, t := range tests {
		all[t.ChangeService], all[t.MeasureService] = true, true
	}
	var out []Subset
	for _, t := range tests {
		var cands []Member
		for _, u := range tests {
			if u.ID == t.ID {
				continue
			}
			var reasons []Reason
			union := map[string]bool{}
			for _, s := range t.Susceptible {
				for _, e := range u.Emits {
					if e.Kind != s.Kind {
						continue
					}
					sh := inter(b.region(e.Scope, u, all), b.region(s.Scope, t, all))
					if len(sh) == 0 {
						continue
					}
					r := Reason{Kind: e.Kind, EmitScope: e.Scope, SusceptibleScope: s.Scope, Shared: sortedKeys(sh)}
					if !slices.ContainsFunc(reasons, func(x Reason) bool { return reflect.DeepEqual(x, r) }) {
						reasons = append(reasons, r)
					}
					for k := range sh {
						union[k] = true
					}
				}
			}
			if len(reasons) > 0 {
				slices.SortFunc(reasons, compareReasons)
				cands = append(cands, Member{Test: u.ID, Reasons: reasons, Volume: b.volume(union)})
			}
		}
		s := Subset{Viewpoint: t.ID, Members: []Member{{Test: t.ID}}}
		if capN > 0 && len(cands)+1 > capN {
			sort.SliceStable(cands, func(i, j int) bool {
				if cands[i].Volume != cands[j].Volume {
					return cands[i].Volume > cands[j].Volume
				}
				return cands[i].Test < cands[j].Test
			})
			s.NotModelled = slices.Clone(cands[capN-1:])
			cands = cands[:capN-1]
			sort.Slice(s.NotModelled, func(i, j int) bool { return s.NotModelled[i].Test < s.NotModelled[j].Test })
		}
		sort.Slice(cands, func(i, j int) bool { return cands[i].Test < cands[j].Test })
		s.Members = append(s.Members, cands...)
		svc := map[string]bool{}
		for _, m := range s.Members {
			for _, x := range tests {
				if x.ID == m.Test {
					svc[x.ChangeService], svc[x.MeasureService] = true, true
				}
			}
			for _, r := range m.Reasons {
				for _, k := range r.Shared {
					svc[k] = true
				}
			}
		}
		s.Services = sortedKeys(svc)
		out = append(out, s)
	}
	return out
}

var propKinds = []string{KindLatency, KindErrorRate, "custom"}

func randomCase(r *rand.Rand) ([]tracing.Edge, []Test, int) {
	n := 1 + r.IntN(25)
	svc := func(i int) string { return fmt.Sprintf("s%02d", i) }
	var edges []tracing.Edge
	m := r.IntN(3 * n)
	for range m {
		a, b := r.IntN(n), r.IntN(n)
		if r.IntN(4) > 0 && a > b { // mostly downhill: DAG-ish with some cycles
			a, b = b, a
		}
		edges = append(edges, tracing.Edge{Caller: svc(a), Callee: svc(b), Calls: uint64(r.IntN(100))})
	}
	pick := func() string {
		if r.IntN(15) == 0 {
			return fmt.Sprintf("ghost%d", r.IntN(3))
		}
		return svc(r.IntN(n))
	}
	attrs := func() []Interference {
		var out []Interference
		for range r.IntN(4) {
			out = append(out, Interference{propKinds[r.IntN(len(propKinds))], Scopes[r.IntN(len(Scopes))]})
		}
		return out
	}
	var tests []Test
	for i := range 1 + r.IntN(12) {
		tests = append(tests, Test{ID: fmt.Sprintf("t%02d", i), ChangeService: pick(), MeasureService: pick(), Emits: attrs(), Susceptible: attrs()})
	}
	r.Shuffle(len(tests), func(i, j int) { tests[i], tests[j] = tests[j], tests[i] })
	return edges, tests, r.IntN(8) // cap 0 = no cap
}

func normalize(subs []Subset) []Subset {
	for i := range subs {
		if len(subs[i].NotModelled) == 0 {
			subs[i].NotModelled = nil
		}
	}
	return subs
}

func TestComputeMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for c := range 400 {
		edges, tests, capN := randomCase(r)
		g, err := NewGraph(edges)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Compute(tests, g, WithCap(capN))
		if err != nil {
			t.Fatal(err)
		}
		want := bruteCompute(tests, edges, capN)
		if !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Fatalf("case %d (cap %d):\nedges %v\ntests %+v\n got %+v\nwant %+v", c, capN, edges, tests, got, want)
		}
	}
}

func TestLayerMatesNeverJoin(t *testing.T) {
	ux := []Interference{{KindUserExperience, ScopeMeasure}}
	tests := []Test{
		{ID: "pay", ChangeService: "payment", MeasureService: "checkout", Layer: "checkout-flow", Emits: ux, Susceptible: ux},
		{ID: "ship", ChangeService: "shipping", MeasureService: "checkout", Layer: "checkout-flow", Emits: ux, Susceptible: ux},
		{ID: "fx", ChangeService: "currency", MeasureService: "checkout", Emits: ux, Susceptible: ux},
	}
	g, err := NewGraph([]tracing.Edge{{Caller: "checkout", Callee: "payment", Calls: 1}, {Caller: "checkout", Callee: "shipping", Calls: 1}, {Caller: "checkout", Callee: "currency", Calls: 1}})
	if err != nil {
		t.Fatal(err)
	}
	subs, err := Compute(tests, g)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"pay": {"pay", "fx"}, "ship": {"ship", "fx"}, "fx": {"fx", "pay", "ship"}}
	for _, s := range subs {
		if got := s.Tests(); !slices.Equal(got, want[s.Viewpoint]) {
			t.Errorf("subset of %s = %v, want %v", s.Viewpoint, got, want[s.Viewpoint])
		}
	}
}
