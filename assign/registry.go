package assign

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Registry is the state machine of experiments, layers and overrides. It is
// safe for concurrent use. Mutations are serialized, persisted through a
// Store, bump the configuration version and publish a freshly compiled
// Engine; readers get that Engine from Snapshot without taking a lock.
//
// Errors wrap the package's sentinels: ErrInvalid (always as a
// *FieldError naming the field), ErrNotFound, ErrAlreadyExists,
// ErrFailedPrecondition; anything else comes from the Store. A failed
// mutation changes nothing.
//
// Lifecycle:
//
//	DRAFT ──Start──▶ RUNNING ──Pause──▶ PAUSED ──Start──▶ RUNNING
//	RUNNING, PAUSED ──Conclude(winner)──▶ CONCLUDED
//
// Start of a draft opens phase 1. Update of a running or paused experiment
// that changes who gets what (variant names or weights, layer, slice,
// targeting) opens the next phase.
type Registry struct {
	store  Store
	sticky StickyStore
	now    func() time.Time

	mu   sync.Mutex // serializes mutations; guards st and subs
	st   state
	subs map[*subscriber]struct{}

	snap atomic.Pointer[Engine]
}

// state is the registry's state. Its values are never modified in place:
// a mutation replaces them, so the maps can be copied shallowly.
type state struct {
	version   uint64
	exps      map[string]*Experiment
	layers    map[string]*Layer
	overrides map[[2]string]Override // (experiment, unit)
}

func (s *state) clone() state {
	return state{
		version:   s.version,
		exps:      maps.Clone(s.exps),
		layers:    maps.Clone(s.layers),
		overrides: maps.Clone(s.overrides),
	}
}

func (s *state) config() Config {
	c := Config{Version: s.version}
	for _, e := range s.exps {
		c.Experiments = append(c.Experiments, *e)
	}
	for _, l := range s.layers {
		c.Layers = append(c.Layers, *l)
	}
	for _, o := range s.overrides {
		c.Overrides = append(c.Overrides, o)
	}
	c.sort()
	return c
}

func (s *state) experiments() []*Experiment {
	return slices.Collect(maps.Values(s.exps))
}

func (s *state) layerSet() map[string]bool {
	m := make(map[string]bool, len(s.layers))
	for id := range s.layers {
		m[id] = true
	}
	return m
}

type subscriber struct{ ch chan *Engine }

// NewRegistry loads the state from store and compiles it. Options:
// WithSticky (the StickyStore of sticky experiments; without one they are
// evaluated by hash only) and WithClock. A loaded state that does not
// validate is an error.
func NewRegistry(ctx context.Context, store Store, opts ...Option) (*Registry, error) {
	o := buildOptions(opts)
	cfg, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("load registry: %w", err)
	}
	r := &Registry{
		store:  store,
		sticky: o.sticky,
		now:    o.now,
		subs:   map[*subscriber]struct{}{},
	}
	st, eng, err := r.stateOf(cfg)
	if err != nil {
		return nil, fmt.Errorf("load registry: stored state is invalid: %w", err)
	}
	r.st = st
	r.snap.Store(eng)
	return r, nil
}

// stateOf returns the state of cfg and its compiled Engine.
func (r *Registry) stateOf(cfg Config) (state, *Engine, error) {
	st := state{
		version:   cfg.Version,
		exps:      make(map[string]*Experiment, len(cfg.Experiments)),
		layers:    make(map[string]*Layer, len(cfg.Layers)),
		overrides: make(map[[2]string]Override, len(cfg.Overrides)),
	}
	for _, e := range cfg.Experiments {
		st.exps[e.ID] = e.Clone()
	}
	for _, l := range cfg.Layers {
		st.layers[l.ID] = &l
	}
	for _, ov := range cfg.Overrides {
		st.overrides[[2]string{ov.Experiment, ov.Unit}] = ov
	}
	eng, err := Compile(st.config(), WithSticky(r.sticky))
	return st, eng, err
}

// Reload reads the whole configuration from the store again and, when its
// version differs from the Registry's, installs and publishes it. With a
// SharedStore this is how a replica learns of changes other replicas made
// (the store's change notifications call it). A stored state that does not
// compile is an error and changes nothing.
func (r *Registry) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := r.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("reload registry: %w", err)
	}
	if cfg.Version == r.st.version {
		return nil
	}
	return r.install(cfg)
}

// install makes cfg the Registry's state and publishes its Engine. Called
// with r.mu held.
func (r *Registry) install(cfg Config) error {
	st, eng, err := r.stateOf(cfg)
	if err != nil {
		return fmt.Errorf("stored configuration version %d is invalid: %w", cfg.Version, err)
	}
	r.st = st
	r.snap.Store(eng)
	r.publish(eng)
	return nil
}

// Snapshot returns the Engine of the current configuration. It never
// blocks and never returns nil.
func (r *Registry) Snapshot() *Engine { return r.snap.Load() }

// Version returns the current configuration version.
func (r *Registry) Version() uint64 { return r.Snapshot().Version() }

// Subscribe returns a channel that first receives the current Engine, then
// the Engine of every later change. Delivery is coalesced: a subscriber
// that falls behind gets the latest Engine, not every intermediate one, and
// never slows the Registry down. The channel is closed when ctx is done.
func (r *Registry) Subscribe(ctx context.Context) <-chan *Engine {
	s := &subscriber{ch: make(chan *Engine, 1)}
	r.mu.Lock()
	s.ch <- r.Snapshot()
	r.subs[s] = struct{}{}
	r.mu.Unlock()
	context.AfterFunc(ctx, func() {
		r.mu.Lock()
		delete(r.subs, s)
		close(s.ch)
		r.mu.Unlock()
	})
	return s.ch
}

// publish sends eng to every subscriber, replacing an undelivered older
// Engine. Called with r.mu held: the only sender, so sends cannot block.
func (r *Registry) publish(eng *Engine) {
	for s := range r.subs {
		select {
		case <-s.ch:
		default:
		}
		s.ch <- eng
	}
}

// commit persists ch with its audit entry, installs next and publishes its
// Engine. With a SharedStore it installs the stored configuration the
// store returns instead (next plus other replicas' changes). Called with
// r.mu held; on error nothing changes.
func (r *Registry) commit(ctx context.Context, next state, ch Change) error {
	next.version = r.st.version + 1
	ch.Version = next.version
	if ch.Audit != nil {
		ch.Audit.Version = ch.Version
	}
	if ss, ok := r.store.(SharedStore); ok {
		cfg, err := ss.ApplyShared(ctx, ch)
		if errors.Is(err, ErrConflict) {
			// Catch up at once, so that a retry is judged against the
			// current state (the store's notification would, a little
			// later).
			if cur, lerr := r.store.Load(ctx); lerr == nil && cur.Version != r.st.version {
				_ = r.install(cur)
			}
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return r.install(cfg)
	}
	eng, err := Compile(next.config(), WithSticky(r.sticky))
	if err != nil {
		return err
	}
	if err := r.store.Apply(ctx, ch); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	r.st = next
	r.snap.Store(eng)
	r.publish(eng)
	return nil
}

// Experiment returns a copy of the experiment with the given id, or an
// error wrapping ErrNotFound.
func (r *Registry) Experiment(id string) (*Experiment, error) {
	x, ok := r.Snapshot().Experiment(id)
	if !ok {
		return nil, notFound("experiment", id)
	}
	return x.Clone(), nil
}

// Experiments returns copies of all experiments, sorted by id.
func (r *Registry) Experiments() []*Experiment {
	cfg := r.Snapshot().Config()
	out := make([]*Experiment, len(cfg.Experiments))
	for i := range cfg.Experiments {
		out[i] = cfg.Experiments[i].Clone()
	}
	return out
}

// Layer returns a copy of the layer with the given id, or an error wrapping
// ErrNotFound.
func (r *Registry) Layer(id string) (*Layer, error) {
	cfg := r.Snapshot().Config()
	i, ok := slices.BinarySearchFunc(cfg.Layers, id, func(l Layer, id string) int { return cmp.Compare(l.ID, id) })
	if !ok {
		return nil, notFound("layer", id)
	}
	l := cfg.Layers[i]
	return &l, nil
}

// Layers returns all layers, sorted by id.
func (r *Registry) Layers() []Layer { return slices.Clone(r.Snapshot().Config().Layers) }

// Overrides returns the overrides of an experiment sorted by unit, or an
// error wrapping ErrNotFound for an unknown experiment. An empty
// experiment id returns every override, sorted by (experiment, unit).
func (r *Registry) Overrides(experiment string) ([]Override, error) {
	eng := r.Snapshot()
	if experiment == "" {
		return slices.Clone(eng.Config().Overrides), nil
	}
	if _, ok := eng.Experiment(experiment); !ok {
		return nil, notFound("experiment", experiment)
	}
	var out []Override
	for _, o := range eng.Config().Overrides {
		if o.Experiment == experiment {
			out = append(out, o)
		}
	}
	return out, nil
}

// Create registers a new experiment as a DRAFT and returns the stored copy.
// The lifecycle fields of in (Status, Winner, Phase, Phases, CreatedAt,
// UpdatedAt) are ignored; defaults are applied (Experiment.Defaults).
// Errors: *FieldError (Experiment.Validate; "layer" for an unknown layer,
// "salt" for a salt that is another experiment's salt or a layer id),
// ErrAlreadyExists.
func (r *Registry) Create(ctx context.Context, in *Experiment) (*Experiment, error) {
	x := in.Clone()
	x.Status, x.Winner, x.Phase, x.Phases = StatusDraft, "", 0, nil
	x.CreatedAt = r.now()
	x.UpdatedAt = x.CreatedAt
	x.Defaults()
	if err := x.Validate(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.st.exps[x.ID]; ok {
		return nil, fmt.Errorf("experiment %q: %w", x.ID, ErrAlreadyExists)
	}
	if err := conflicts(x, r.st.experiments(), r.st.layerSet()); err != nil {
		return nil, err
	}
	next := r.st.clone()
	next.exps[x.ID] = x
	ch := Change{PutExperiments: []Experiment{*x}, Audit: auditEntry(ctx, x.CreatedAt, "create", AuditExperiment, x.ID, nil, x)}
	if err := r.commit(ctx, next, ch); err != nil {
		return nil, fmt.Errorf("create experiment %q: %w", x.ID, err)
	}
	return x.Clone(), nil
}

// Update replaces the definition of an existing experiment and returns the
// stored copy. The lifecycle fields of in are ignored (they are the
// registry's). For a running or paused experiment, a change of variants
// (names or weights), layer, slice or targeting opens a new phase with the
// new weights; the salt cannot change once the experiment has started.
// Overrides pinned to a variant that no longer exists are deleted. An
// update that changes nothing but UpdatedAt is a no-op (no new version, no
// audit entry) returning the stored copy. Errors: ErrNotFound, ErrFailedPrecondition (concluded), *FieldError as
// for Create, or on "salt" for a salt change after start, or on "slice"
// for a slice overlapping another active experiment's in the layer.
func (r *Registry) Update(ctx context.Context, in *Experiment) (*Experiment, error) {
	if err := validateID("id", in.ID); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.st.exps[in.ID]
	if !ok {
		return nil, notFound("experiment", in.ID)
	}
	if old.Status == StatusConcluded {
		return nil, precondition("experiment %q is concluded: its definition is frozen", old.ID)
	}
	x := in.Clone()
	x.Status, x.Winner, x.Phase, x.Phases = old.Status, old.Winner, old.Phase, old.Phases
	x.CreatedAt, x.UpdatedAt = old.CreatedAt, r.now()
	x.Defaults()
	if err := x.Validate(); err != nil {
		return nil, err
	}
	if old.Status != StatusDraft && x.EffectiveSalt() != old.EffectiveSalt() {
		return nil, fieldErr("salt", "cannot change once the experiment has started (from %q to %q)", old.EffectiveSalt(), x.EffectiveSalt())
	}
	if old.active() && assignmentChanged(old, x) {
		x.Phases = append(slices.Clone(old.Phases), newPhase(old.Phase+1, x, x.UpdatedAt))
		x.Phase = old.Phase + 1
	}
	if err := conflicts(x, r.st.experiments(), r.st.layerSet()); err != nil {
		return nil, err
	}
	if unchanged(old, x) {
		return old.Clone(), nil
	}
	next := r.st.clone()
	next.exps[x.ID] = x
	ch := Change{PutExperiments: []Experiment{*x}, Audit: auditEntry(ctx, x.UpdatedAt, "update", AuditExperiment, x.ID, old, x)}
	for k, o := range r.st.overrides {
		if o.Experiment == x.ID && x.variantIndex(o.Variant) < 0 {
			delete(next.overrides, k)
			ch.DeleteOverrides = append(ch.DeleteOverrides, o)
		}
	}
	if err := r.commit(ctx, next, ch); err != nil {
		return nil, fmt.Errorf("update experiment %q: %w", x.ID, err)
	}
	return x.Clone(), nil
}

// unchanged reports whether x, an update of old, differs from it in
// nothing but UpdatedAt.
func unchanged(old, x *Experiment) bool {
	y := *x
	y.UpdatedAt = old.UpdatedAt
	return sameJSON(old, &y)
}

// assignmentChanged reports whether b assigns units differently from a.
func assignmentChanged(a, b *Experiment) bool {
	return !slices.Equal(a.Variants, b.Variants) || a.Layer != b.Layer || a.Slice != b.Slice ||
		!slices.EqualFunc(a.Targeting, b.Targeting, func(x, y Rule) bool {
			return x.Attribute == y.Attribute && x.Op == y.Op && slices.Equal(x.Values, y.Values)
		})
}

func newPhase(n int, x *Experiment, at time.Time) Phase {
	p := Phase{Number: n, Weights: make([]uint32, len(x.Variants)), StartedAt: at}
	for i, v := range x.Variants {
		p.Weights[i] = v.Weight
	}
	return p
}

// Delete removes an experiment with its overrides and sticky entries.
// Errors: ErrNotFound, ErrFailedPrecondition for a running experiment
// (pause or conclude it first).
func (r *Registry) Delete(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.st.exps[id]
	if !ok {
		return notFound("experiment", id)
	}
	if old.Status == StatusRunning {
		return precondition("experiment %q is running: pause or conclude it before deleting it", id)
	}
	next := r.st.clone()
	delete(next.exps, id)
	ch := Change{DeleteExperiments: []string{id}, Audit: auditEntry(ctx, r.now(), "delete", AuditExperiment, id, old, nil)}
	for k, o := range r.st.overrides {
		if o.Experiment == id {
			delete(next.overrides, k)
			ch.DeleteOverrides = append(ch.DeleteOverrides, o)
		}
	}
	if err := r.commit(ctx, next, ch); err != nil {
		return fmt.Errorf("delete experiment %q: %w", id, err)
	}
	if r.sticky != nil {
		r.sticky.DeleteTest(id)
	}
	return nil
}

// Start starts a draft (opening phase 1 with its current weights) or
// resumes a paused experiment, and returns the stored copy. Starting a
// running experiment is a no-op. Errors: ErrNotFound;
// ErrFailedPrecondition for a concluded experiment, or when the slice
// overlaps that of another running or paused experiment of the layer.
func (r *Registry) Start(ctx context.Context, id string) (*Experiment, error) {
	return r.transition(ctx, id, "start", func(x *Experiment, now time.Time) (bool, error) {
		switch x.Status {
		case StatusRunning:
			return false, nil
		case StatusConcluded:
			return false, precondition("experiment %q is concluded", id)
		case StatusDraft:
			x.Phase = 1
			x.Phases = []Phase{newPhase(1, x, now)}
		}
		x.Status = StatusRunning
		if o := overlapping(x, r.st.experiments()); o != nil {
			return false, precondition("experiment %q: slice [%d, %d) overlaps the slice [%d, %d) of %s experiment %q in layer %q",
				id, x.Slice.Start, x.Slice.End, o.Slice.Start, o.Slice.End, o.Status, o.ID, x.Layer)
		}
		return true, nil
	})
}

// Pause pauses a running experiment (everyone gets the control, reason
// PAUSED) and returns the stored copy. Pausing a paused experiment is a
// no-op. Errors: ErrNotFound; ErrFailedPrecondition for a draft or a
// concluded experiment.
func (r *Registry) Pause(ctx context.Context, id string) (*Experiment, error) {
	return r.transition(ctx, id, "pause", func(x *Experiment, _ time.Time) (bool, error) {
		switch x.Status {
		case StatusPaused:
			return false, nil
		case StatusRunning:
			x.Status = StatusPaused
			return true, nil
		}
		return false, precondition("experiment %q is %s: only a running experiment can be paused", id, x.Status)
	})
}

// Conclude ends a running or paused experiment with a winner, served to
// everyone from then on (reason WINNER), and returns the stored copy.
// Concluding again with the same winner is a no-op. Errors: ErrNotFound;
// *FieldError "winner" when winner is empty or not a variant;
// ErrFailedPrecondition for a draft, or a concluded experiment with
// another winner.
func (r *Registry) Conclude(ctx context.Context, id, winner string) (*Experiment, error) {
	if winner == "" {
		return nil, fieldErr("winner", "required")
	}
	return r.transition(ctx, id, "conclude", func(x *Experiment, _ time.Time) (bool, error) {
		switch x.Status {
		case StatusDraft:
			return false, precondition("experiment %q is a draft: start it before concluding it", id)
		case StatusConcluded:
			if x.Winner == winner {
				return false, nil
			}
			return false, precondition("experiment %q is already concluded with winner %q", id, x.Winner)
		}
		if x.variantIndex(winner) < 0 {
			return false, fieldErr("winner", "%q is not a variant of experiment %q", clip(winner), id)
		}
		x.Status, x.Winner = StatusConcluded, winner
		return true, nil
	})
}

// transition applies f to a copy of experiment id and commits it when f
// reports a change, audited as "experiment."+verb.
func (r *Registry) transition(ctx context.Context, id, verb string, f func(x *Experiment, now time.Time) (bool, error)) (*Experiment, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.st.exps[id]
	if !ok {
		return nil, notFound("experiment", id)
	}
	x := old.Clone()
	now := r.now()
	changed, err := f(x, now)
	if err != nil || !changed {
		return x, err
	}
	x.UpdatedAt = now
	next := r.st.clone()
	next.exps[id] = x
	ch := Change{PutExperiments: []Experiment{*x}, Audit: auditEntry(ctx, now, verb, AuditExperiment, id, old, x)}
	if err := r.commit(ctx, next, ch); err != nil {
		return nil, fmt.Errorf("experiment %q: %w", id, err)
	}
	return x.Clone(), nil
}

// SetOverride pins a unit to a variant of an experiment, replacing any
// earlier override of that unit (setting the same override again is a
// no-op). Errors: *FieldError ("experiment",
// "unit_id", "variant"), ErrNotFound for an unknown experiment,
// ErrFailedPrecondition for a concluded one. A minted-form unit (Minted)
// is refused: a minted id is an anonymous client's claim, never a trusted
// one.
func (r *Registry) SetOverride(ctx context.Context, o Override) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if Minted(o.Unit) {
		return fieldErr("unit_id", "%q is a minted id (%s and 32 hex digits): an anonymous client's claim, which overrides never trust; override an authenticated user's id", o.Unit, MintedPrefix)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	x, ok := r.st.exps[o.Experiment]
	if !ok {
		return notFound("experiment", o.Experiment)
	}
	if x.Status == StatusConcluded {
		return precondition("experiment %q is concluded: everyone gets the winner", o.Experiment)
	}
	if x.variantIndex(o.Variant) < 0 {
		return fieldErr("variant", "%q is not a variant of experiment %q", o.Variant, o.Experiment)
	}
	k := [2]string{o.Experiment, o.Unit}
	var before any
	if old, ok := r.st.overrides[k]; ok {
		if old == o {
			return nil
		}
		before = old
	}
	next := r.st.clone()
	next.overrides[k] = o
	ch := Change{PutOverrides: []Override{o}, Audit: auditEntry(ctx, r.now(), "set", AuditOverride, overrideName(o), before, o)}
	if err := r.commit(ctx, next, ch); err != nil {
		return fmt.Errorf("set override: %w", err)
	}
	return nil
}

// DeleteOverride removes the override of unit in experiment. Errors:
// ErrNotFound when there is none.
func (r *Registry) DeleteOverride(ctx context.Context, experiment, unit string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]string{experiment, unit}
	o, ok := r.st.overrides[k]
	if !ok {
		return fmt.Errorf("override of unit %q in experiment %q: %w", clip(unit), experiment, ErrNotFound)
	}
	next := r.st.clone()
	delete(next.overrides, k)
	ch := Change{DeleteOverrides: []Override{o}, Audit: auditEntry(ctx, r.now(), "delete", AuditOverride, overrideName(o), o, nil)}
	if err := r.commit(ctx, next, ch); err != nil {
		return fmt.Errorf("delete override: %w", err)
	}
	return nil
}

// CreateLayer registers a layer and returns the stored copy (CreatedAt is
// set). Errors: *FieldError (Layer.Validate, or "id" when the id is an
// experiment's salt), ErrAlreadyExists.
func (r *Registry) CreateLayer(ctx context.Context, in *Layer) (*Layer, error) {
	l := *in
	l.CreatedAt = r.now()
	if err := l.Validate(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.st.layers[l.ID]; ok {
		return nil, fmt.Errorf("layer %q: %w", l.ID, ErrAlreadyExists)
	}
	for _, x := range r.st.exps {
		if x.EffectiveSalt() == l.ID {
			return nil, fieldErr("id", "%q is the salt of experiment %q: the layer's slices would correlate with its split", l.ID, x.ID)
		}
	}
	next := r.st.clone()
	next.layers[l.ID] = &l
	ch := Change{PutLayers: []Layer{l}, Audit: auditEntry(ctx, l.CreatedAt, "create", AuditLayer, l.ID, nil, l)}
	if err := r.commit(ctx, next, ch); err != nil {
		return nil, fmt.Errorf("create layer %q: %w", l.ID, err)
	}
	return &l, nil
}

// UpdateLayer replaces a layer's description (CreatedAt is kept) and
// returns the stored copy; an update that changes nothing is a no-op.
// Errors: *FieldError, ErrNotFound.
func (r *Registry) UpdateLayer(ctx context.Context, in *Layer) (*Layer, error) {
	l := *in
	if err := l.Validate(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.st.layers[l.ID]
	if !ok {
		return nil, notFound("layer", l.ID)
	}
	l.CreatedAt = old.CreatedAt
	if sameJSON(old, &l) {
		return &l, nil
	}
	next := r.st.clone()
	next.layers[l.ID] = &l
	ch := Change{PutLayers: []Layer{l}, Audit: auditEntry(ctx, r.now(), "update", AuditLayer, l.ID, old, l)}
	if err := r.commit(ctx, next, ch); err != nil {
		return nil, fmt.Errorf("update layer %q: %w", l.ID, err)
	}
	return &l, nil
}

// DeleteLayer removes a layer. Errors: ErrNotFound; ErrFailedPrecondition
// while any experiment, whatever its status, is in the layer.
func (r *Registry) DeleteLayer(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.st.layers[id]
	if !ok {
		return notFound("layer", id)
	}
	var users []string
	for _, x := range r.st.exps {
		if x.Layer == id {
			users = append(users, x.ID)
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return precondition("layer %q is used by experiments %q", id, users)
	}
	next := r.st.clone()
	delete(next.layers, id)
	ch := Change{DeleteLayers: []string{id}, Audit: auditEntry(ctx, r.now(), "delete", AuditLayer, id, old, nil)}
	if err := r.commit(ctx, next, ch); err != nil {
		return fmt.Errorf("delete layer %q: %w", id, err)
	}
	return nil
}
