package subset

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/tracing"
)

// benchGraph is a DAG-ish service graph: services in layers of callers
// before callees, each calling about three later services (mostly near
// ones), with a few back edges making cycles.
func benchGraph(r *rand.Rand, n int) []tracing.Edge {
	svc := func(i int) string { return fmt.Sprintf("svc-%03d", i) }
	var edges []tracing.Edge
	for i := range n {
		for range r.IntN(5) + 1 { // fan-out 1..5, mean 3
			if i == n-1 {
				break
			}
			j := i + 1 + min(r.IntN(20), n-i-2)
			if r.IntN(100) == 0 {
				j = r.IntN(i + 1) // back edge
			}
			edges = append(edges, tracing.Edge{Caller: svc(i), Callee: svc(j), Calls: uint64(1 + r.IntN(1000))})
		}
	}
	return edges
}

var benchScopes = []struct {
	s Scope
	w int
}{
	{ScopeChange, 25}, {ScopeMeasure, 15}, {ScopeChangeToMeasure, 15}, {ScopeChangeDownstream, 20},
	{ScopeMeasureUpstream, 10}, {ScopeChangeUpstream, 5}, {ScopeMeasureDownstream, 5}, {ScopeAll, 5},
}

func benchScope(r *rand.Rand) Scope {
	x := r.IntN(100)
	for _, s := range benchScopes {
		if x < s.w {
			return s.s
		}
		x -= s.w
	}
	return ScopeChange
}

// benchTests returns n running tests on g's services: the measure service
// is the change service or one of its callers.
func benchTests(r *rand.Rand, g *Graph, n int) []Test {
	kinds := []string{KindLatency, KindErrorRate, KindUserExperience, KindResource}
	names := g.Services()
	callers := map[string][]string{}
	for _, e := range g.Edges() {
		callers[e.Callee] = append(callers[e.Callee], e.Caller)
	}
	attrs := func() []Interference {
		var out []Interference
		for range 1 + r.IntN(2) {
			out = append(out, Interference{kinds[r.IntN(len(kinds))], benchScope(r)})
		}
		return out
	}
	var tests []Test
	for i := range n {
		c := names[r.IntN(len(names))]
		m := c
		if cs := callers[c]; len(cs) > 0 && r.IntN(2) == 0 {
			m = cs[r.IntN(len(cs))]
		}
		tests = append(tests, Test{
			ID: fmt.Sprintf("test-%03d", i), ChangeService: c, MeasureService: m,
			Emits: attrs(), Susceptible: attrs(),
			Variants: []string{"control", "treatment"}, Metric: "latency_ms",
			Running: true, Phase: 1, PhaseStart: t0,
		})
	}
	return tests
}

func benchSetup(b *testing.B) (*Graph, []tracing.Edge, []Test) {
	r := rand.New(rand.NewPCG(7, 7))
	edges := benchGraph(r, 500)
	g, err := NewGraph(edges)
	if err != nil {
		b.Fatal(err)
	}
	return g, edges, benchTests(r, g, 200)
}

// BenchmarkSubsets: all subsets for 200 running tests on a 500-service
// graph (graph closure built outside the loop).
func BenchmarkSubsets(b *testing.B) {
	g, _, tests := benchSetup(b)
	subs, _ := Compute(tests, g)
	members, capped, interfering := 0, 0, 0
	for _, s := range subs {
		members += len(s.Members)
		interfering += len(s.Members) + len(s.NotModelled) - 1
		if len(s.NotModelled) > 0 {
			capped++
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compute(tests, g); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(members)/float64(len(subs)), "members/subset")
	b.ReportMetric(float64(capped), "capped-subsets")
	b.ReportMetric(float64(interfering)/float64(len(subs)), "interfering/viewpoint")
}

// BenchmarkNewGraph: building a 500-service graph with its closure.
func BenchmarkNewGraph(b *testing.B) {
	_, edges, _ := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewGraph(edges); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecompute: a Subsetter reacting to a graph update (closure,
// subsets, window comparison, plan).
func BenchmarkRecompute(b *testing.B) {
	g, edges, tests := benchSetup(b)
	s := newStack()
	s.SetGraph(g)
	if err := s.SetTests(tests); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		g2, _ := NewGraph(edges)
		s.SetGraph(g2)
	}
}

// fnvHash is a HashAssigner of realistic cost: FNV-1a of test, '/', unit.
type fnvHash map[string][]string

func (h fnvHash) HashVariant(test, unit string) (string, bool) {
	vs, ok := h[test]
	if !ok {
		return "", false
	}
	x := uint64(14695981039346656037)
	for i := 0; i < len(test); i++ {
		x = (x ^ uint64(test[i])) * 1099511628211
	}
	x = (x ^ '/') * 1099511628211
	for i := 0; i < len(unit); i++ {
		x = (x ^ uint64(unit[i])) * 1099511628211
	}
	return vs[x%uint64(len(vs))], true
}

// benchObservations returns observations along random call paths, each
// served the tests changed on its path (with the hash's variant) and
// measured on every service, and the mean number of viewpoints each.
func benchObservations(r *rand.Rand, g *Graph, tests []Test, h fnvHash, n int) ([]*tracing.Observation, float64) {
	down := map[string][]string{}
	hasCaller := map[string]bool{}
	for _, e := range g.Edges() {
		down[e.Caller] = append(down[e.Caller], e.Callee)
		hasCaller[e.Callee] = true
	}
	var roots []string
	for _, s := range g.Services() {
		if !hasCaller[s] {
			roots = append(roots, s)
		}
	}
	byChange := map[string][]Test{}
	for _, t := range tests {
		byChange[t.ChangeService] = append(byChange[t.ChangeService], t)
	}
	var out []*tracing.Observation
	total := 0
	for len(out) < n {
		unit := fmt.Sprintf("user-%d", r.IntN(100000))
		o := &tracing.Observation{Unit: unit, Start: t0.Add(time.Hour)}
		onPath := map[string]bool{}
		// a request fans out: walk three random branches from a root
		root := roots[r.IntN(len(roots))]
		for range 3 {
			for s := root; s != ""; {
				onPath[s] = true
				next := ""
				if d := down[s]; len(d) > 0 && r.IntN(8) > 0 {
					next = d[r.IntN(len(d))]
				}
				s = next
			}
		}
		for _, s := range slices.Sorted(maps.Keys(onPath)) {
			for _, t := range byChange[s] {
				v, _ := h.HashVariant(t.ID, unit)
				o.Exposures = append(o.Exposures, tracing.Exposure{Test: t.ID, Variant: v, Service: s, Phase: 1, Reason: "hash"})
				onPath[t.MeasureService] = true // the measure service is a caller on the path
			}
		}
		for _, s := range slices.Sorted(maps.Keys(onPath)) {
			o.Metrics = append(o.Metrics, tracing.ServiceMetrics{Service: s, LatencyMS: r.Float64() * 100})
		}
		if len(o.Exposures) == 0 {
			continue
		}
		total += len(o.Exposures)
		out = append(out, o)
	}
	return out, float64(total) / float64(len(out))
}

func benchCounter(b *testing.B) (stack, *CellCounter, []*tracing.Observation, float64) {
	g, _, tests := benchSetup(b)
	h := fnvHash{}
	for _, t := range tests {
		h[t.ID] = t.Variants
	}
	s := newStack()
	s.SetGraph(g)
	if err := s.SetTests(tests); err != nil {
		b.Fatal(err)
	}
	obs, vps := benchObservations(rand.New(rand.NewPCG(3, 3)), g, tests, h, 1024)
	return s, NewCellCounter(s.Windows, h), obs, vps
}

// BenchmarkCount: one observation into the cells of every viewpoint
// served on its path; ns/viewpoint is the cost per viewpoint.
func BenchmarkCount(b *testing.B) {
	s, c, obs, vps := benchCounter(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.ConsumeObservation(obs[i&1023])
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*vps), "ns/viewpoint")
	b.ReportMetric(vps, "viewpoints/obs")
	checkBenchCounted(b, s)
}

// BenchmarkCountParallel: the same from GOMAXPROCS goroutines.
func BenchmarkCountParallel(b *testing.B) {
	s, c, obs, vps := benchCounter(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(1024)
		for pb.Next() {
			c.ConsumeObservation(obs[i&1023])
			i++
		}
	})
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*vps), "ns/viewpoint")
	checkBenchCounted(b, s)
}

func checkBenchCounted(b *testing.B, s stack) {
	var q Quality
	for _, w := range s.All() {
		q.Add(w.Quality)
	}
	if q.Excluded() != 0 || q.Counted == 0 {
		b.Fatalf("benchmark observations were excluded: %+v", q)
	}
}

// oneServiceTest is a running test that changes and measures latency on
// service "svc" and interferes with every other such test.
func oneServiceTest(id string, variants []string, agg assign.Aggregate) Test {
	return Test{ID: id, ChangeService: "svc", MeasureService: "svc", Metric: "latency_ms", Aggregate: agg,
		Variants: variants, Phase: 1, PhaseStart: t0, Running: true,
		Emits: []Interference{{KindLatency, ScopeAll}}, Susceptible: []Interference{{KindLatency, ScopeAll}}}
}

// oneServiceStack is a stack over the graph front → svc with tests.
func oneServiceStack(tb testing.TB, tests []Test, opts ...Option) stack {
	tb.Helper()
	g, err := NewGraph([]tracing.Edge{{Caller: "front", Callee: "svc", Calls: 1}})
	if err != nil {
		tb.Fatal(err)
	}
	s := newStack(opts...)
	s.SetGraph(g)
	if err := s.SetTests(tests); err != nil {
		tb.Fatal(err)
	}
	return s
}

// millionUnits returns a stack with seven tests that all change and
// measure one service (so every observation is counted in seven
// viewpoints) and observations of units user-0 … user-(units−1), one per
// unit, served the fnvHash variants.
func millionUnits(b *testing.B, units int) (stack, *CellCounter, func(i int) *tracing.Observation) {
	b.Helper()
	h := fnvHash{}
	var tests []Test
	for i := range 7 {
		tests = append(tests, oneServiceTest(fmt.Sprint("t", i), []string{"control", "treatment"}, assign.AggregateMean))
		h[tests[i].ID] = tests[i].Variants
	}
	s := oneServiceStack(b, tests, WithCap(8))
	names := make([]string, units)
	for i := range names {
		names[i] = fmt.Sprint("user-", i)
	}
	obs := func(i int) *tracing.Observation {
		u := names[i%units]
		o := &tracing.Observation{Unit: u, Start: t0.Add(time.Hour),
			Metrics: []tracing.ServiceMetrics{{Service: "svc", LatencyMS: float64(i % 97)}}}
		for _, t := range tests {
			v, _ := h.HashVariant(t.ID, u)
			o.Exposures = append(o.Exposures, tracing.Exposure{Test: t.ID, Variant: v, Service: "svc", Phase: 1, Reason: "hash"})
		}
		return o
	}
	return s, NewCellCounter(s.Windows, h), obs
}

// BenchmarkCountSevenViewpoints: observations of units already seen,
// each counted in seven viewpoint windows of seven members, with a
// thousand and a million units in every window (the cost of the units
// falling out of the CPU caches). B/unit-window is the heap the units
// took, per (unit, window).
func BenchmarkCountSevenViewpoints(b *testing.B) {
	for _, units := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprint("units=", units), func(b *testing.B) { benchSeenUnits(b, units) })
	}
}

func benchSeenUnits(b *testing.B, units int) {
	s, c, obs := millionUnits(b, units)
	pre := make([]*tracing.Observation, 4096)
	for i := range pre {
		pre[i] = obs(i * 241)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range units {
		c.ConsumeObservation(obs(i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	vps := float64(len(pre[0].Exposures))
	if w, _ := s.Current("t0"); len(w.Members) != 7 {
		b.Fatalf("t0's window has %d members, want 7", len(w.Members))
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		c.ConsumeObservation(pre[i&4095])
		i++
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(float64(b.N)*vps), "ns/viewpoint")
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(float64(units)*vps), "B/unit-window")
	checkBenchCounted(b, s)
	if w, _ := s.Current("t3"); w.Cells[0].Stats.N+w.Cells[1].Stats.N != int64(units) {
		b.Fatalf("t3 has %d+%d units, want %d", w.Cells[0].Stats.N, w.Cells[1].Stats.N, units)
	}
}

// BenchmarkCellsMillionUnits: a report's read of one window of a million
// units: cells computed from the units (after a new request), and cached.
func BenchmarkCellsMillionUnits(b *testing.B) {
	const units = 1_000_000
	s, c, obs := millionUnits(b, units)
	for i := range units {
		c.ConsumeObservation(obs(i))
	}
	one := obs(7)
	b.Run("recompute", func(b *testing.B) {
		for b.Loop() {
			c.ConsumeObservation(one)
			s.Current("t0")
		}
	})
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			s.Current("t0")
		}
	})
}
