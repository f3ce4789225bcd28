package subset

import (
	"errors"
	"fmt"
	"time"

	"github.com/abmesh/abmesh/assign"
)

// ErrInvalid is wrapped by every error that reports bad input (a test, an
// edge, an option). The server maps it to InvalidArgument; the wrapping
// message names the offending field.
var ErrInvalid = errors.New("invalid")

// Scope names a region of the service dependency graph, resolved for one
// test from its change and measure services.
type Scope string

// The scopes. Every region contains the services it is named after, even
// when they are not (yet) in the graph.
const (
	// ScopeChange is the change service alone.
	ScopeChange Scope = "change"
	// ScopeMeasure is the measure service alone.
	ScopeMeasure Scope = "measure"
	// ScopeChangeToMeasure is every service on some call walk from the
	// change service to the measure service, both included: the services
	// that the change service reaches and that reach the measure service.
	// When the change service does not reach the measure service but the
	// measure service reaches the change service (the measure service is
	// upstream), it is the services on the walks from the measure service
	// to the change service. When neither reaches the other it is just the
	// two services. (Walks, not simple paths: with cycles a service on a
	// cycle between the two counts.)
	ScopeChangeToMeasure Scope = "change_to_measure"
	// ScopeChangeDownstream is the change service and every service it
	// reaches through calls.
	ScopeChangeDownstream Scope = "change_downstream"
	// ScopeChangeUpstream is the change service and every service that
	// reaches it through calls.
	ScopeChangeUpstream Scope = "change_upstream"
	// ScopeMeasureDownstream is the measure service and every service it
	// reaches.
	ScopeMeasureDownstream Scope = "measure_downstream"
	// ScopeMeasureUpstream is the measure service and every service that
	// reaches it.
	ScopeMeasureUpstream Scope = "measure_upstream"
	// ScopeAll is every service known: the graph's services and the change
	// and measure services of every test considered together.
	ScopeAll Scope = "all"
)

// Scopes lists every valid scope, in documentation order.
var Scopes = []Scope{
	ScopeChange, ScopeMeasure, ScopeChangeToMeasure,
	ScopeChangeDownstream, ScopeChangeUpstream,
	ScopeMeasureDownstream, ScopeMeasureUpstream, ScopeAll,
}

// Valid reports whether s is one of Scopes.
func (s Scope) Valid() bool {
	for _, v := range Scopes {
		if s == v {
			return true
		}
	}
	return false
}

// Well-known interference kinds. Any non-empty kind is allowed; two
// interferences match when their kinds are equal strings.
const (
	KindUserExperience = "user_experience"
	KindLatency        = "latency"
	KindErrorRate      = "error_rate"
	KindResource       = "resource"
)

// Interference is one kind of interference over one scope, e.g.
// {Kind: "latency", Scope: ScopeChangeDownstream}.
type Interference struct {
	Kind  string
	Scope Scope
}

// Test is what the subsetter and the counter need to know about one A/B
// test.
//
// Compute reads only ID, ChangeService, MeasureService, Emits,
// Susceptible and Layer and treats every test it is given as running. The
// Subsetter additionally reads Running, Phase, PhaseStart and Slice
// (windows), and the CellCounter reads Variants, Metric and Sticky.
type Test struct {
	ID             string
	ChangeService  string // where the change is deployed
	MeasureService string // where the metric is measured
	Emits          []Interference
	Susceptible    []Interference
	// Layer is the test's layer, "" when none. Tests of one layer are
	// mutually exclusive and never join each other's subsets; two or more
	// of them in a third test's subset form one factor (see Compute).
	Layer string
	// Slice is the test's slice of its layer's buckets (meaningful only
	// with a Layer): a layer factor has an "outside" level unless its
	// tests' slices cover the layer.
	Slice assign.Slice

	// Variants are the variant names, control first. A cell records each
	// member's variant as an index into its Variants.
	Variants []string
	// Metric is the outcome metric's name as assign.Metric.String spells
	// it ("latency_ms", "error" or "attribute:<key>"), the key
	// tracing.Observation.Metric reads.
	Metric string
	// Aggregate is how the metric is aggregated per unit; a change opens a
	// new window.
	Aggregate assign.Aggregate
	// Sticky tests keep a unit's first assignment, so a served variant may
	// legitimately differ from the current hash; the counter skips the
	// assignment-mismatch check for them.
	Sticky bool

	// Running is true while the test is randomizing units (assign's
	// RUNNING). Only running tests are viewpoints or members.
	Running bool
	// Phase is the current phase number (0 before the first start).
	Phase int
	// PhaseStart is when the current phase started; zero means unknown.
	PhaseStart time.Time
}

// FromExperiment converts an assign.Experiment: Running is Status ==
// StatusRunning, PhaseStart is the StartedAt of the entry of Phases whose
// Number is Phase (zero when there is none), Metric is the key that
// tracing.Observation.Metric reads for e.Metric.
func FromExperiment(e assign.Experiment) Test {
	t := Test{
		ID:             e.ID,
		ChangeService:  e.ChangeService,
		MeasureService: e.MeasureService,
		Sticky:         e.Sticky,
		Layer:          e.Layer,
		Slice:          e.Slice,
		Running:        e.Status == assign.StatusRunning,
		Phase:          e.Phase,
		Metric:         e.Metric.String(),
		Aggregate:      e.Metric.Aggregate,
	}
	for _, in := range e.Emits {
		t.Emits = append(t.Emits, Interference{Kind: in.Kind, Scope: Scope(in.Scope)})
	}
	for _, in := range e.Susceptible {
		t.Susceptible = append(t.Susceptible, Interference{Kind: in.Kind, Scope: Scope(in.Scope)})
	}
	for _, v := range e.Variants {
		t.Variants = append(t.Variants, v.Name)
	}
	for _, p := range e.Phases {
		if p.Number == e.Phase {
			t.PhaseStart = p.StartedAt
		}
	}
	return t
}

// validateShape checks the fields Compute reads.
func (t *Test) validateShape() error {
	if t.ID == "" {
		return fmt.Errorf("test: id is empty: %w", ErrInvalid)
	}
	if t.ChangeService == "" {
		return fmt.Errorf("test %q: change_service is empty: %w", t.ID, ErrInvalid)
	}
	if t.MeasureService == "" {
		return fmt.Errorf("test %q: measure_service is empty: %w", t.ID, ErrInvalid)
	}
	for field, list := range map[string][]Interference{"emits": t.Emits, "susceptible": t.Susceptible} {
		for i, in := range list {
			if in.Kind == "" {
				return fmt.Errorf("test %q: %s[%d].kind is empty: %w", t.ID, field, i, ErrInvalid)
			}
			if !in.Scope.Valid() {
				return fmt.Errorf("test %q: %s[%d].scope %q is not a scope: %w", t.ID, field, i, in.Scope, ErrInvalid)
			}
		}
	}
	return nil
}

// Validate reports whether t can be given to a Subsetter: a non-empty ID,
// change and measure services; non-empty kinds and valid scopes; at least
// one variant, with unique non-empty names; a metric name that
// assign.ParseMetric accepts. Errors wrap ErrInvalid.
func (t Test) Validate() error {
	if err := t.validateShape(); err != nil {
		return err
	}
	if len(t.Variants) == 0 {
		return fmt.Errorf("test %q: variants is empty: %w", t.ID, ErrInvalid)
	}
	for i, v := range t.Variants {
		if v == "" {
			return fmt.Errorf("test %q: variants[%d] is empty: %w", t.ID, i, ErrInvalid)
		}
		for _, w := range t.Variants[:i] {
			if v == w {
				return fmt.Errorf("test %q: variants[%d] %q is repeated: %w", t.ID, i, v, ErrInvalid)
			}
		}
	}
	if _, err := assign.ParseMetric(t.Metric); err != nil {
		return fmt.Errorf("test %q: %v: %w", t.ID, err, ErrInvalid)
	}
	return nil
}
