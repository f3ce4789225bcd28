package assign

import (
	"time"

	"github.com/cespare/xxhash/v2"
)

// Assignment is the variant one unit gets in one experiment.
type Assignment struct {
	Test    string // experiment id
	Variant string // variant name
	Reason  Reason // why; Reason.Randomized says whether it counts in analysis
	// Phase is the experiment's phase the assignment belongs to: the
	// current phase, or for ReasonSticky the phase in which the unit was
	// first assigned. 0 for drafts.
	Phase int
}

// Filter selects the experiments an evaluation covers. The zero Filter
// selects all.
type Filter struct {
	// Service, when set, keeps only experiments whose ChangeService is
	// Service: the ones the calling service serves.
	Service string
	// Tests, when non-empty, keeps only these experiment ids, evaluated in
	// this order; unknown ids are skipped.
	Tests []string
}

// HeaderPrefix starts the name of the header that carries a unit's variant
// of an experiment to the service mesh: "x-abmesh-<experiment id>".
const HeaderPrefix = "x-abmesh-"

// HeaderName returns HeaderPrefix + test: the mesh routing header of a
// unit's variant of test (ids are lowercase DNS labels, so the name is a
// valid lowercase header name).
func HeaderName(test string) string { return HeaderPrefix + test }

// Option configures Compile and NewRegistry.
type Option interface{ apply(*options) }

type options struct {
	sticky StickyStore
	now    func() time.Time
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithSticky makes sticky experiments remember first assignments in s. An
// Engine without a StickyStore evaluates sticky experiments by hash only
// (what SDKs evaluating locally do).
func WithSticky(s StickyStore) Option {
	return optionFunc(func(o *options) { o.sticky = s })
}

// WithClock sets the Registry's clock (time.Now by default), used for
// CreatedAt, UpdatedAt and Phase.StartedAt. Compile ignores it.
func WithClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = now })
}

func buildOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}

// Engine evaluates assignments from one compiled Config. It is immutable
// and safe for concurrent use; a configuration change compiles a new
// Engine. Two Engines compiled from equal Configs give identical answers on
// any machine (given the same StickyStore contents).
//
// A nil *Engine is an empty configuration: it assigns nothing.
type Engine struct {
	cfg       Config
	tests     []test
	byID      map[string]int
	byService map[string][]int
	sticky    StickyStore
}

// test is an experiment compiled for evaluation.
type test struct {
	exp     *Experiment
	id      string
	status  Status
	phase   int
	digest  xxhash.Digest // salt + "/"
	names   []string      // variant names
	cum     []uint32      // cumulative weights: variant i owns [cum[i-1], cum[i])
	total   uint32
	control string
	winner  string
	layer   *xxhash.Digest // layer id + "/", nil when not layered
	slice   Slice
	rules   []rule
	sticky  bool
	// overrides maps unit → variant name; nil when the test has none.
	overrides map[string]string
}

type rule struct {
	attr   string
	op     Op
	values []string
	set    map[string]struct{} // for long value lists
}

const ruleSetMin = 8

// Compile validates cfg (see Config.Validate) and precomputes what
// evaluation needs: salted hash states, cumulative weights, layer slices,
// targeting sets and override maps. It keeps a sorted deep copy of cfg, so
// the caller may reuse cfg. The error, if any, is a *FieldError.
func Compile(cfg Config, opts ...Option) (*Engine, error) {
	cfg = cfg.Clone()
	cfg.sort()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	e := &Engine{
		cfg:       cfg,
		tests:     make([]test, len(cfg.Experiments)),
		byID:      make(map[string]int, len(cfg.Experiments)),
		byService: map[string][]int{},
		sticky:    o.sticky,
	}
	layers := make(map[string]*xxhash.Digest, len(cfg.Layers))
	for _, l := range cfg.Layers {
		d := prefixDigest(l.ID)
		layers[l.ID] = &d
	}
	for i := range cfg.Experiments {
		x := &cfg.Experiments[i]
		t := &e.tests[i]
		*t = test{
			exp:     x,
			id:      x.ID,
			status:  x.Status,
			phase:   x.Phase,
			digest:  prefixDigest(x.EffectiveSalt()),
			names:   make([]string, len(x.Variants)),
			cum:     make([]uint32, len(x.Variants)),
			control: x.Variants[0].Name,
			winner:  x.Winner,
			slice:   x.Slice,
			sticky:  x.Sticky,
		}
		for j, v := range x.Variants {
			t.total += v.Weight // Validate bounds the sum
			t.names[j] = v.Name
			t.cum[j] = t.total
		}
		if x.Layer != "" {
			t.layer = layers[x.Layer]
		}
		for _, r := range x.Targeting {
			cr := rule{attr: r.Attribute, op: r.Op, values: r.Values}
			if len(r.Values) > ruleSetMin {
				cr.set = make(map[string]struct{}, len(r.Values))
				for _, v := range r.Values {
					cr.set[v] = struct{}{}
				}
			}
			t.rules = append(t.rules, cr)
		}
		e.byID[x.ID] = i
		e.byService[x.ChangeService] = append(e.byService[x.ChangeService], i)
	}
	for _, ov := range cfg.Overrides {
		if Minted(ov.Unit) {
			continue // never a trusted claim (see Minted)
		}
		t := &e.tests[e.byID[ov.Experiment]]
		if t.overrides == nil {
			t.overrides = map[string]string{}
		}
		t.overrides[ov.Unit] = t.names[t.index(ov.Variant)]
	}
	return e, nil
}

// Version returns the compiled configuration's version; 0 for a nil Engine.
func (e *Engine) Version() uint64 {
	if e == nil {
		return 0
	}
	return e.cfg.Version
}

// Config returns the compiled configuration. It shares memory with the
// Engine and must not be modified.
func (e *Engine) Config() Config {
	if e == nil {
		return Config{}
	}
	return e.cfg
}

// Experiment returns the experiment with the given id. It shares memory
// with the Engine and must not be modified.
func (e *Engine) Experiment(id string) (*Experiment, bool) {
	t := e.test(id)
	if t == nil {
		return nil, false
	}
	return t.exp, true
}

func (e *Engine) test(id string) *test {
	if e == nil {
		return nil
	}
	i, ok := e.byID[id]
	if !ok {
		return nil
	}
	return &e.tests[i]
}

// Evaluate validates unit and attrs (ValidateUnit, ValidateAttributes) and
// returns the unit's assignments in the experiments f selects, as
// AppendAssignments does. Errors are *FieldError.
func (e *Engine) Evaluate(unit string, attrs map[string]string, f Filter) ([]Assignment, error) {
	if err := ValidateUnit(unit); err != nil {
		return nil, err
	}
	if err := ValidateAttributes(attrs); err != nil {
		return nil, err
	}
	return e.AppendAssignments(make([]Assignment, 0, e.capacity(f)), unit, attrs, f), nil
}

// capacity bounds the number of assignments f selects.
func (e *Engine) capacity(f Filter) int {
	switch {
	case e == nil:
		return 0
	case len(f.Tests) > 0:
		return len(f.Tests)
	case f.Service != "":
		return len(e.byService[f.Service])
	}
	return len(e.tests)
}

// EvaluateTest validates unit and attrs and returns the unit's assignment
// in one experiment, whatever its status (a draft gives the control with
// ReasonPaused, unless the unit has an override). It returns an error
// wrapping ErrNotFound for an unknown experiment, a *FieldError for an
// invalid unit or attributes.
func (e *Engine) EvaluateTest(testID, unit string, attrs map[string]string) (Assignment, error) {
	if err := ValidateUnit(unit); err != nil {
		return Assignment{}, err
	}
	if err := ValidateAttributes(attrs); err != nil {
		return Assignment{}, err
	}
	t := e.test(testID)
	if t == nil {
		return Assignment{}, notFound("experiment", testID)
	}
	a, _ := e.eval(t, unit, attrs, false)
	return a, nil
}

// AppendAssignments appends to dst the unit's assignment in every
// experiment f selects and returns the extended slice; with a dst of
// sufficient capacity it does not allocate (a StickyStore may). It does not
// validate unit and attrs: callers at a trust boundary check them first with
// ValidateUnit and ValidateAttributes.
//
// Experiments are evaluated in id order (or f.Tests order). For each:
//
//	concluded             → winner, ReasonWinner
//	unit has an override  → its variant, ReasonOverride
//	draft                 → skipped (not appended)
//	paused                → control, ReasonPaused
//	attrs miss targeting  → control, ReasonNotTargeted
//	layer bucket ∉ slice  → control, ReasonNotInSlice
//	sticky, stored entry  → stored variant, ReasonSticky (stored phase)
//	otherwise             → hashed variant, ReasonHash (stored if sticky)
//
// A rule matches when: OpEq, the attribute is present and equals
// Values[0]; OpIn, it is present and one of Values; OpNotIn, it is absent
// or none of Values. A unit is targeted when it matches every rule.
func (e *Engine) AppendAssignments(dst []Assignment, unit string, attrs map[string]string, f Filter) []Assignment {
	if e == nil {
		return dst
	}
	switch {
	case len(f.Tests) > 0:
		for _, id := range f.Tests {
			i, ok := e.byID[id]
			if !ok {
				continue
			}
			t := &e.tests[i]
			if f.Service != "" && t.exp.ChangeService != f.Service {
				continue
			}
			if a, ok := e.eval(t, unit, attrs, true); ok {
				dst = append(dst, a)
			}
		}
	case f.Service != "":
		for _, i := range e.byService[f.Service] {
			if a, ok := e.eval(&e.tests[i], unit, attrs, true); ok {
				dst = append(dst, a)
			}
		}
	default:
		for i := range e.tests {
			if a, ok := e.eval(&e.tests[i], unit, attrs, true); ok {
				dst = append(dst, a)
			}
		}
	}
	return dst
}

// eval assigns unit in t. ok is false when skipDrafts is set and t is a
// draft the unit has no override in.
func (e *Engine) eval(t *test, unit string, attrs map[string]string, skipDrafts bool) (a Assignment, ok bool) {
	a = Assignment{Test: t.id, Phase: t.phase}
	if t.status == StatusConcluded {
		a.Variant, a.Reason = t.winner, ReasonWinner
		return a, true
	}
	if t.overrides != nil {
		if v, ok := t.overrides[unit]; ok {
			a.Variant, a.Reason = v, ReasonOverride
			return a, true
		}
	}
	a.Variant = t.control
	switch t.status {
	case StatusDraft:
		if skipDrafts {
			return a, false
		}
		a.Reason = ReasonPaused
		return a, true
	case StatusPaused:
		a.Reason = ReasonPaused
		return a, true
	}
	if !t.targeted(attrs) {
		a.Reason = ReasonNotTargeted
		return a, true
	}
	if !t.inSlice(unit) {
		a.Reason = ReasonNotInSlice
		return a, true
	}
	if t.sticky && e.sticky != nil {
		if v, ph, ok := e.sticky.Get(t.id, unit); ok {
			if i := t.index(v); i >= 0 {
				a.Variant, a.Reason, a.Phase = t.names[i], ReasonSticky, ph
				return a, true
			}
		}
		a.Variant, a.Reason = t.hashVariant(unit), ReasonHash
		e.sticky.Put(t.id, unit, a.Variant, t.phase)
		return a, true
	}
	a.Variant, a.Reason = t.hashVariant(unit), ReasonHash
	return a, true
}

func (t *test) hashVariant(unit string) string {
	b := Bucket(sum(&t.digest, unit), t.total)
	for i, c := range t.cum {
		if b < c {
			return t.names[i]
		}
	}
	return t.names[len(t.names)-1] // unreachable: b < total == cum[last]
}

func (t *test) inSlice(unit string) bool {
	if t.layer == nil {
		return true
	}
	return t.slice.Contains(Bucket(sum(t.layer, unit), LayerBuckets))
}

func (t *test) targeted(attrs map[string]string) bool {
	for i := range t.rules {
		r := &t.rules[i]
		v, present := attrs[r.attr]
		switch r.op {
		case OpEq:
			if !present || v != r.values[0] {
				return false
			}
		case OpIn:
			if !present || !r.has(v) {
				return false
			}
		case OpNotIn:
			if present && r.has(v) {
				return false
			}
		}
	}
	return true
}

func (r *rule) has(v string) bool {
	if r.set != nil {
		_, ok := r.set[v]
		return ok
	}
	for _, x := range r.values {
		if x == v {
			return true
		}
	}
	return false
}

func (t *test) index(name string) int {
	for i, n := range t.names {
		if n == name {
			return i
		}
	}
	return -1
}

// HashVariant returns the variant the unit's hash gives the experiment
// with its current weights (its current phase), whatever its status,
// overrides, targeting, slice or sticky entries: what the unit was assigned
// by randomization. ok is false for an unknown experiment. The trace
// consumer uses it for experiments whose service a request did not reach,
// and to detect served variants that disagree with the hash.
func (e *Engine) HashVariant(testID, unit string) (variant string, ok bool) {
	t := e.test(testID)
	if t == nil {
		return "", false
	}
	return t.hashVariant(unit), true
}

// InSlice reports whether unit's layer bucket is in the experiment's slice:
// whether the experiment can randomize the unit at all. It is true for an
// experiment without a layer and false for an unknown experiment.
func (e *Engine) InSlice(testID, unit string) bool {
	t := e.test(testID)
	return t != nil && t.inSlice(unit)
}
