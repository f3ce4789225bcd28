package tracing

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// GraphConfig sets a Graph's sliding window.
type GraphConfig struct {
	// Window is how far back calls count. Default 1h. Negative: calls never
	// age out (offline analysis of files).
	Window time.Duration
	// Bucket is the granularity calls age out with. Default 1m.
	Bucket time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// GraphSnapshot is the dependency graph over a window: the services seen
// (in traces or as an edge end), sorted, and the edges sorted by caller,
// then callee.
type GraphSnapshot struct {
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Services []string  `json:"services"`
	Edges    []Edge    `json:"edges"`
}

// Graph is the service dependency graph: caller→callee call counts over a
// sliding window, bucketed by time. Calls come from observations
// (ConsumeObservation, AddCalls) and from external dependency links
// (Merge); because both may count the same calls, an edge's count is the
// larger of the two sources' sums, never their total. A Graph is safe for
// concurrent use; it marshals to and from JSON for persistence.
type Graph struct {
	window time.Duration
	bucket time.Duration
	now    func() time.Time

	mu      sync.Mutex
	buckets map[int64]*graphBucket // by bucket index: unix time / bucket
}

type edgeKey struct{ caller, callee string }

type graphBucket struct {
	observed map[edgeKey]uint64
	external map[edgeKey]uint64
	services map[string]struct{}
}

func newGraphBucket() *graphBucket {
	return &graphBucket{
		observed: map[edgeKey]uint64{},
		external: map[edgeKey]uint64{},
		services: map[string]struct{}{},
	}
}

// NewGraph returns an empty Graph. It fails when Bucket is negative or a
// positive Window is shorter than Bucket.
func NewGraph(cfg GraphConfig) (*Graph, error) {
	if cfg.Window == 0 {
		cfg.Window = time.Hour
	}
	if cfg.Bucket == 0 {
		cfg.Bucket = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Bucket < 0 {
		return nil, fmt.Errorf("graph: Bucket is %v, want > 0", cfg.Bucket)
	}
	if cfg.Window > 0 && cfg.Window < cfg.Bucket {
		return nil, fmt.Errorf("graph: Window %v is shorter than Bucket %v", cfg.Window, cfg.Bucket)
	}
	return &Graph{window: cfg.Window, bucket: cfg.Bucket, now: cfg.Now, buckets: map[int64]*graphBucket{}}, nil
}

func (g *Graph) index(t time.Time) int64 {
	if g.window < 0 {
		return 0
	}
	return t.UnixNano() / int64(g.bucket)
}

// nBuckets is how many buckets the window spans.
func (g *Graph) nBuckets() int64 { return int64((g.window + g.bucket - 1) / g.bucket) }

// at returns the bucket for time t, or nil when t is outside the window;
// g.mu is held.
func (g *Graph) at(t time.Time) *graphBucket {
	i := g.index(t)
	if g.window > 0 {
		cur := g.index(g.now())
		if i <= cur-g.nBuckets() || i > cur {
			return nil
		}
	}
	b := g.buckets[i]
	if b == nil {
		b = newGraphBucket()
		g.buckets[i] = b
	}
	return b
}

// prune drops buckets that left the window; g.mu is held.
func (g *Graph) prune(cur int64) {
	if g.window < 0 {
		return
	}
	for i := range g.buckets {
		if i <= cur-g.nBuckets() {
			delete(g.buckets, i)
		}
	}
}

// ConsumeObservation adds the observation's services and edges at the
// current time, so a Graph can be an Assembler's Consumer.
func (g *Graph) ConsumeObservation(o *Observation) { g.AddCalls(g.now(), o.Services, o.Edges) }

// AddCalls counts edges (and services) observed at time at; calls outside
// the window are ignored.
func (g *Graph) AddCalls(at time.Time, services []string, edges []Edge) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.at(at)
	if b == nil {
		return
	}
	for _, s := range services {
		b.services[s] = struct{}{}
	}
	for _, e := range edges {
		if e.Caller == e.Callee || e.Calls == 0 {
			continue
		}
		b.observed[edgeKey{e.Caller, e.Callee}] += e.Calls
		b.services[e.Caller] = struct{}{}
		b.services[e.Callee] = struct{}{}
	}
}

// Merge adds external dependency links (e.g. from Jaeger's GetDependencies
// for the period ending at at) to the bucket of time at. Self links and
// links outside the window are ignored.
func (g *Graph) Merge(at time.Time, links []Edge) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.at(at)
	if b == nil {
		return
	}
	for _, l := range links {
		if l.Caller == l.Callee || l.Caller == "" || l.Callee == "" {
			continue
		}
		b.external[edgeKey{l.Caller, l.Callee}] += l.Calls
		b.services[l.Caller] = struct{}{}
		b.services[l.Callee] = struct{}{}
	}
}

// Snapshot returns the graph over the current window.
func (g *Graph) Snapshot() GraphSnapshot {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	cur := g.index(now)
	g.prune(cur)
	obs := map[edgeKey]uint64{}
	ext := map[edgeKey]uint64{}
	svc := map[string]struct{}{}
	for _, b := range g.buckets {
		for k, v := range b.observed {
			obs[k] += v
		}
		for k, v := range b.external {
			ext[k] += v
		}
		for s := range b.services {
			svc[s] = struct{}{}
		}
	}
	for k, v := range ext {
		obs[k] = max(obs[k], v)
	}
	snap := GraphSnapshot{To: now, Services: make([]string, 0, len(svc)), Edges: make([]Edge, 0, len(obs))}
	if g.window > 0 {
		snap.From = time.Unix(0, (cur-g.nBuckets()+1)*int64(g.bucket))
	}
	for s := range svc {
		snap.Services = append(snap.Services, s)
	}
	slices.Sort(snap.Services)
	for k, v := range obs {
		snap.Edges = append(snap.Edges, Edge{Caller: k.caller, Callee: k.callee, Calls: v})
	}
	SortEdges(snap.Edges)
	return snap
}

func SortEdges(es []Edge) {
	slices.SortFunc(es, func(x, y Edge) int {
		if c := strings.Compare(x.Caller, y.Caller); c != 0 {
			return c
		}
		return strings.Compare(x.Callee, y.Callee)
	})
}

type graphJSON struct {
	BucketSeconds float64           `json:"bucket_seconds"`
	Buckets       []graphBucketJSON `json:"buckets"`
}

type graphBucketJSON struct {
	Start    time.Time `json:"start"`
	Services []string  `json:"services"`
	Observed []Edge    `json:"observed"`
	External []Edge    `json:"external,omitempty"`
}

// MarshalJSON encodes the graph's buckets (not its configuration), oldest
// first, so that UnmarshalJSON can restore them.
func (g *Graph) MarshalJSON() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := graphJSON{BucketSeconds: g.bucket.Seconds(), Buckets: []graphBucketJSON{}}
	idx := make([]int64, 0, len(g.buckets))
	for i := range g.buckets {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	for _, i := range idx {
		b := g.buckets[i]
		bj := graphBucketJSON{Start: time.Unix(0, i*int64(g.bucket)).UTC(), Services: []string{}, Observed: []Edge{}}
		if g.window < 0 {
			bj.Start = time.Time{}
		}
		for s := range b.services {
			bj.Services = append(bj.Services, s)
		}
		slices.Sort(bj.Services)
		for k, v := range b.observed {
			bj.Observed = append(bj.Observed, Edge{k.caller, k.callee, v})
		}
		SortEdges(bj.Observed)
		for k, v := range b.external {
			bj.External = append(bj.External, Edge{k.caller, k.callee, v})
		}
		SortEdges(bj.External)
		out.Buckets = append(out.Buckets, bj)
	}
	return json.Marshal(out)
}

// UnmarshalJSON adds the buckets of a graph encoded by MarshalJSON to g
// (g's own window and bucket size apply; buckets outside the window are
// dropped at the next Snapshot). g must come from NewGraph.
func (g *Graph) UnmarshalJSON(data []byte) error {
	var in graphJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return fmt.Errorf("graph: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.buckets == nil {
		return fmt.Errorf("graph: UnmarshalJSON on a Graph not made by NewGraph")
	}
	for _, bj := range in.Buckets {
		i := g.index(bj.Start)
		b := g.buckets[i]
		if b == nil {
			b = newGraphBucket()
			g.buckets[i] = b
		}
		for _, s := range bj.Services {
			b.services[s] = struct{}{}
		}
		for _, e := range bj.Observed {
			b.observed[edgeKey{e.Caller, e.Callee}] += e.Calls
		}
		for _, e := range bj.External {
			b.external[edgeKey{e.Caller, e.Callee}] += e.Calls
		}
	}
	return nil
}

// Tee returns a Consumer that hands each observation to every non-nil
// consumer in cs, in order.
func Tee(cs ...Consumer) Consumer {
	cs = slices.DeleteFunc(slices.Clone(cs), func(c Consumer) bool { return c == nil })
	return ConsumerFunc(func(o *Observation) {
		for _, c := range cs {
			c.ConsumeObservation(o)
		}
	})
}

var _ Consumer = (*Graph)(nil)
