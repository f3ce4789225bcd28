package subset

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/tracing"
)

// Subsetter holds the current tests and the service dependency graph and
// keeps every running test's subset up to date. It computes; it stores no
// cells. After every change it hands the resulting View of each running
// viewpoint to its ViewSink (a *Windows, which rolls the analysis windows
// those views define). It is safe for concurrent use.
//
// A View's Since is the latest of its members' running-since times. A
// test's running-since time is its PhaseStart when it is first seen
// running or when its phase changes (now when PhaseStart is zero), and now
// when it is seen to go from not running to running (a resume) or its
// variants, stickiness, measure service or metric change in the same
// phase.
//
// Recomputation is eager: each mutation recomputes every subset with
// Compute (cheap: reachability is precomputed per Graph) and hands the
// sink the new views, in mutation order, under the Subsetter's lock.
type Subsetter struct {
	cfg config

	mu       sync.Mutex
	sink     ViewSink
	tests    map[string]*testState
	graph    *Graph
	admitted []tracing.Edge // the traced edges ObserveEdges last admitted
	subsets  []Subset       // current, sorted by viewpoint
}

// ViewSink receives the views of every running viewpoint after each
// recomputation of the subsets, sorted by viewpoint, with the time of the
// change. Calls are serialized and in the order of the changes.
type ViewSink interface {
	SetViews(now time.Time, views []View)
}

// View is what one running viewpoint's analysis window is made of: the
// viewpoint's measurement, its subset's members (viewpoint first) each in
// its current phase with its reasons, the interfering tests the cap left
// out, and Since, the latest time at which one of the members started
// running in its current phase.
type View struct {
	Viewpoint      string
	MeasureService string
	Metric         string
	Aggregate      assign.Aggregate
	Members        []WindowMember
	NotModelled    []Member
	Since          time.Time
}

// key is the view's measurement.
func (v View) key() viewKey { return viewKey{v.MeasureService, v.Metric, v.Aggregate} }

type testState struct {
	t     Test
	since time.Time // running in the current phase since; zero when not running
}

// NewSubsetter returns a Subsetter with no tests and an empty graph that
// hands its views to sink (nil: subsets only, no windows). Options:
// WithCap, WithClock, WithMinEdgeCalls.
func NewSubsetter(sink ViewSink, opts ...Option) *Subsetter {
	return &Subsetter{
		cfg:   newConfig(opts),
		sink:  sink,
		tests: map[string]*testState{},
		graph: emptyGraph,
	}
}

// PutTest creates or replaces the test with t.ID (create, start, stop,
// pause, phase or attribute change) and recomputes. An invalid test gives
// an error wrapping ErrInvalid and changes nothing.
func (s *Subsetter) PutTest(t Test) error {
	if err := t.Validate(); err != nil {
		return err
	}
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tests[t.ID] = s.nextState(t, now)
	s.recompute(now)
	return nil
}

// SetTests replaces all tests with tests (tests not listed are removed)
// and recomputes once: the way to load the tests at startup. An invalid or
// repeated test gives an error wrapping ErrInvalid and changes nothing.
func (s *Subsetter) SetTests(tests []Test) error {
	seen := make(map[string]struct{}, len(tests))
	for _, t := range tests {
		if err := t.Validate(); err != nil {
			return err
		}
		if _, dup := seen[t.ID]; dup {
			return fmt.Errorf("test %q: id is repeated: %w", t.ID, ErrInvalid)
		}
		seen[t.ID] = struct{}{}
	}
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*testState, len(tests))
	for _, t := range tests {
		next[t.ID] = s.nextState(t, now)
	}
	s.tests = next
	s.recompute(now)
	return nil
}

// RemoveTest forgets the test (as if stopped) and recomputes. Its windows
// stay readable. Removing an unknown test does nothing.
func (s *Subsetter) RemoveTest(id string) {
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tests[id]; !ok {
		return
	}
	delete(s.tests, id)
	s.recompute(now)
}

// SetGraph replaces the dependency graph and recomputes. nil is the empty
// graph. Under a cap, call-volume changes alone can change which members
// are kept, and so open new windows: feed graphs at a coarse interval.
func (s *Subsetter) SetGraph(g *Graph) {
	if g == nil {
		g = emptyGraph
	}
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.graph = g
	s.recompute(now)
}

// ObserveEdges sets the graph from the traced edges of the service graph's
// window, through a hysteresis gate: an edge enters once it carries
// WithMinEdgeCalls calls and, once in, stays while it carries any call.
// Rare call paths then cannot keep reopening analysis windows. The graph is
// replaced (and the subsets recomputed) only when the set of admitted
// caller → callee pairs changed: call counts alone matter only under the
// cap, and re-ranking on every count change would churn windows. An edge
// with an empty service name is an error wrapping ErrInvalid, and changes
// nothing.
func (s *Subsetter) ObserveEdges(edges []tracing.Edge) error {
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	admitted := admit(edges, s.admitted, s.cfg.minEdgeCalls)
	if slices.EqualFunc(admitted, s.admitted, samePair) {
		return nil
	}
	g, err := NewGraph(admitted)
	if err != nil {
		return err
	}
	s.graph, s.admitted = g, admitted
	s.recompute(now)
	return nil
}

// SetAdmitted makes edges the admitted traced edges, as if ObserveEdges
// had admitted exactly these (edges sorted by caller, then callee), and
// recomputes when their caller → callee pairs changed: how a follower
// replica takes the graph its leader admitted, so that its subsets agree
// and, should it lead, its hysteresis continues the leader's. An edge
// with an empty service name is an error wrapping ErrInvalid, and changes
// nothing.
func (s *Subsetter) SetAdmitted(edges []tracing.Edge) error {
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.EqualFunc(edges, s.admitted, samePair) {
		s.admitted = slices.Clone(edges)
		return nil
	}
	g, err := NewGraph(edges)
	if err != nil {
		return err
	}
	s.graph, s.admitted = g, slices.Clone(edges)
	s.recompute(now)
	return nil
}

// Admitted returns the traced edges ObserveEdges (or SetAdmitted) last
// admitted, sorted by caller, then callee.
func (s *Subsetter) Admitted() []tracing.Edge {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.admitted)
}

// SetSink makes sink receive the views from now on (nil: none) and, when
// sink is not nil, hands it the current views at once. A replica that
// follows its leader's windows has no sink; it gets one when it leads.
func (s *Subsetter) SetSink(sink ViewSink) {
	now := s.cfg.clock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sink = sink
	if sink != nil {
		s.sink.SetViews(now, s.views(s.subsets))
	}
}

// admit returns the edges of edges that pass the hysteresis gate given the
// previously admitted ones: Calls ≥ minCalls, or Calls > 0 for an edge
// admitted before. edges are taken as sorted by caller, then callee (as a
// tracing.GraphSnapshot gives them); so is the result.
func admit(edges, before []tracing.Edge, minCalls int) []tracing.Edge {
	known := make(map[[2]string]bool, len(before))
	for _, e := range before {
		known[[2]string{e.Caller, e.Callee}] = true
	}
	out := make([]tracing.Edge, 0, len(edges))
	for _, e := range edges {
		if e.Calls >= uint64(max(minCalls, 1)) || (known[[2]string{e.Caller, e.Callee}] && e.Calls > 0) {
			out = append(out, e)
		}
	}
	return out
}

func samePair(a, b tracing.Edge) bool { return a.Caller == b.Caller && a.Callee == b.Callee }

// Graph returns the current graph (never nil).
func (s *Subsetter) Graph() *Graph {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.graph
}

// Tests returns the tests, sorted by id.
func (s *Subsetter) Tests() []Test {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Test, 0, len(s.tests))
	for _, id := range slices.Sorted(maps.Keys(s.tests)) {
		out = append(out, s.tests[id].t)
	}
	return out
}

// Subsets returns the current subsets of all running tests, sorted by
// viewpoint. The result must be treated as read-only.
func (s *Subsetter) Subsets() []Subset {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.subsets)
}

// Subset returns the viewpoint's current subset; false when the test is
// unknown or not running.
func (s *Subsetter) Subset(viewpoint string) (Subset, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := slices.BinarySearchFunc(s.subsets, viewpoint, func(x Subset, id string) int {
		return strings.Compare(x.Viewpoint, id)
	})
	if !ok {
		return Subset{}, false
	}
	return s.subsets[i], true
}

// nextState returns t's state given its previous one.
func (s *Subsetter) nextState(t Test, now time.Time) *testState {
	t.Emits = slices.Clone(t.Emits)
	t.Susceptible = slices.Clone(t.Susceptible)
	t.Variants = slices.Clone(t.Variants)
	st := &testState{t: t}
	if !t.Running {
		return st
	}
	phaseStart := t.PhaseStart
	if phaseStart.IsZero() {
		phaseStart = now
	}
	old, existed := s.tests[t.ID]
	switch {
	case !existed:
		st.since = phaseStart
	case old.t.Phase != t.Phase:
		// A first start or a new phase: counting starts when the phase
		// did, as the registry recorded it (requests between that moment
		// and this call are the phase's too).
		st.since = phaseStart
	case !old.t.Running:
		// Resumed in the same phase: from now on.
		st.since = maxTime(now, t.PhaseStart)
	case !slices.Equal(old.t.Variants, t.Variants) || old.t.Sticky != t.Sticky ||
		old.t.MeasureService != t.MeasureService || old.t.Metric != t.Metric:
		st.since = now
	default:
		st.since = old.since
	}
	return st
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// recompute recomputes every subset and hands the sink the new views.
// Called with s.mu held.
func (s *Subsetter) recompute(now time.Time) {
	var running []Test
	for _, id := range slices.Sorted(maps.Keys(s.tests)) {
		if st := s.tests[id]; st.t.Running {
			running = append(running, st.t)
		}
	}
	subs, err := Compute(running, s.graph, WithCap(s.cfg.cap))
	if err != nil {
		// Unreachable: every stored test passed Validate.
		panic(fmt.Sprintf("subset: compute over validated tests: %v", err))
	}
	s.subsets = subs
	if s.sink != nil {
		s.sink.SetViews(now, s.views(subs))
	}
}

// views returns the view of each subset, in subs order. Called with s.mu
// held.
func (s *Subsetter) views(subs []Subset) []View {
	out := make([]View, len(subs))
	for i, sub := range subs {
		vp := s.tests[sub.Viewpoint].t
		v := View{Viewpoint: sub.Viewpoint, MeasureService: vp.MeasureService, Metric: vp.Metric, Aggregate: vp.Aggregate,
			Members: s.windowMembers(sub), NotModelled: sub.NotModelled}
		for _, m := range sub.Members {
			v.Since = maxTime(v.Since, s.tests[m.Test].since)
		}
		out[i] = v
	}
	return out
}

// windowMembers returns sub's factors (Subset.Factors) as window members:
// a test alone, or the layer factor of a layer's tests. Called with s.mu
// held.
func (s *Subsetter) windowMembers(sub Subset) []WindowMember {
	out := make([]WindowMember, 0, len(sub.Members))
	for _, f := range sub.Factors() {
		if f[0].Layer == "" {
			out = append(out, s.windowMember(f[0]))
			continue
		}
		tests := make([]WindowMember, len(f))
		for i, m := range f {
			tests[i] = s.windowMember(m)
		}
		out = append(out, newLayerFactor(layerFactorName(sub, f[0].Layer), f[0].Layer, tests))
	}
	return out
}

// windowMember returns m as a window member in its test's current phase;
// a layer factor's test carries its layer and slice. Called with s.mu
// held.
func (s *Subsetter) windowMember(m Member) WindowMember {
	t := s.tests[m.Test].t
	wm := WindowMember{Test: m.Test, Phase: t.Phase, Variants: t.Variants, Sticky: t.Sticky, Reasons: m.Reasons}
	if m.Layer != "" {
		wm.Layer, wm.Slice = m.Layer, t.Slice
	}
	return wm
}
