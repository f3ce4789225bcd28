package assign

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// Config is a complete, immutable assignment configuration: what abmeshd's
// Watch streams to SDKs and what Compile turns into an Engine. Experiments
// are sorted by ID, layers by ID, overrides by (Experiment, Unit). A Config
// obtained from an Engine or a Registry shares memory with it and must not
// be modified; use Clone for a private copy.
type Config struct {
	// Version increases with every change of the Registry's state; SDKs
	// report it and compare it to know whether they are current.
	Version     uint64
	Experiments []Experiment
	Layers      []Layer
	Overrides   []Override
}

// ConfigField is the field a *FieldError names when the whole
// configuration is at fault (its total size), not one of its entities.
const ConfigField = "config"

// Validate checks a whole configuration: every experiment, layer and
// override on its own, unique ids, experiments' layers exist, salts are
// unique and no layer id, active (running or paused) experiments of a layer
// own disjoint slices, overrides name an existing experiment and variant
// and are unique per (experiment, unit), and the whole encodes to at most
// MaxConfigBytes (EncodedSize; the error's field is ConfigField). Errors
// are *FieldError with paths like `experiments["checkout"].variants[1].weight`
// or `overrides[3].variant`. It takes time linear in the configuration's
// size (n log n in the number of experiments).
func (c *Config) Validate() error {
	if n := c.EncodedSize(); n > MaxConfigBytes {
		return fieldErr(ConfigField, "%d bytes encoded, over the limit of %d (assign.MaxConfigBytes): remove experiments, variants, targeting values or overrides", n, MaxConfigBytes)
	}
	layers := make(map[string]bool, len(c.Layers))
	for i := range c.Layers {
		l := &c.Layers[i]
		p := elemPath("layers", i, l.ID)
		if err := l.Validate(); err != nil {
			return prefixField(p, err)
		}
		if layers[l.ID] {
			return fieldErr(p+".id", "duplicate layer id %q", l.ID)
		}
		layers[l.ID] = true
	}
	exps := make(map[string]*Experiment, len(c.Experiments))
	all := make([]*Experiment, len(c.Experiments))
	for i := range c.Experiments {
		e := &c.Experiments[i]
		p := elemPath("experiments", i, e.ID)
		if err := e.Validate(); err != nil {
			return prefixField(p, err)
		}
		if exps[e.ID] != nil {
			return fieldErr(p+".id", "duplicate experiment id %q", e.ID)
		}
		exps[e.ID] = e
		all[i] = e
	}
	idx := newConflictIndex(all)
	for i, e := range all {
		if err := conflictsWith(e, layers, idx.sameSalt[e], idx.overlap[e]); err != nil {
			return prefixField(elemPath("experiments", i, e.ID), err)
		}
	}
	type key struct{ exp, unit string }
	seen := make(map[key]bool, len(c.Overrides))
	for i := range c.Overrides {
		o := &c.Overrides[i]
		p := "overrides[" + strconv.Itoa(i) + "]"
		if err := o.Validate(); err != nil {
			return prefixField(p, err)
		}
		e := exps[o.Experiment]
		if e == nil {
			return fieldErr(p+".experiment", "experiment %q not found", o.Experiment)
		}
		if e.variantIndex(o.Variant) < 0 {
			return fieldErr(p+".variant", "%q is not a variant of experiment %q", o.Variant, o.Experiment)
		}
		k := key{o.Experiment, o.Unit}
		if seen[k] {
			return fieldErr(p, "duplicate override of unit %q in experiment %q", clip(o.Unit), o.Experiment)
		}
		seen[k] = true
	}
	return nil
}

// elemPath names element i of a list by its id when the id is valid, by
// its index otherwise.
func elemPath(list string, i int, id string) string {
	if ValidID(id) {
		return list + "[" + strconv.Quote(id) + "]"
	}
	return list + "[" + strconv.Itoa(i) + "]"
}

// Clone returns a deep copy of c.
func (c *Config) Clone() Config {
	out := Config{
		Version:     c.Version,
		Experiments: make([]Experiment, len(c.Experiments)),
		Layers:      slices.Clone(c.Layers),
		Overrides:   slices.Clone(c.Overrides),
	}
	for i := range c.Experiments {
		out.Experiments[i] = *c.Experiments[i].Clone()
	}
	return out
}

// sort orders c's lists canonically.
func (c *Config) sort() {
	slices.SortFunc(c.Experiments, func(a, b Experiment) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(c.Layers, func(a, b Layer) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(c.Overrides, func(a, b Override) int {
		return cmp.Or(cmp.Compare(a.Experiment, b.Experiment), cmp.Compare(a.Unit, b.Unit))
	})
}

// Clone returns a deep copy of e: no slice is shared.
func (e *Experiment) Clone() *Experiment {
	c := *e
	c.Variants = slices.Clone(e.Variants)
	c.Targeting = slices.Clone(e.Targeting)
	for i := range c.Targeting {
		c.Targeting[i].Values = slices.Clone(c.Targeting[i].Values)
	}
	c.Emits = slices.Clone(e.Emits)
	c.Susceptible = slices.Clone(e.Susceptible)
	c.Plan.Interactions = slices.Clone(e.Plan.Interactions)
	c.Phases = slices.Clone(e.Phases)
	for i := range c.Phases {
		c.Phases[i].Weights = slices.Clone(c.Phases[i].Weights)
	}
	return &c
}

// Change is one atomic mutation of the persisted state, as the Registry
// hands it to Store.Apply: puts replace the whole entity with the same key
// (experiment ID, layer ID, override (Experiment, Unit)); deletes of absent
// keys are no-ops. Deleting an experiment lists its overrides in
// DeleteOverrides explicitly. Version is the configuration version after
// the change, to be stored with it. Audit, when not nil, is the change's
// audit log entry, to be appended (with the next Seq) in the same atomic
// write.
type Change struct {
	Version           uint64
	Audit             *AuditEntry
	PutExperiments    []Experiment
	DeleteExperiments []string
	PutLayers         []Layer
	DeleteLayers      []string
	PutOverrides      []Override
	DeleteOverrides   []Override // only Experiment and Unit are meaningful
}

// Store persists the Registry's state. Implementations must be safe for
// concurrent use; the Registry calls them with its write lock held, one
// call at a time.
type Store interface {
	// Load returns the whole stored state with its version, in any order.
	// An empty store returns a zero Config and no error.
	Load(ctx context.Context) (Config, error)
	// Apply persists ch atomically (all of it or nothing) and records
	// ch.Version as the stored version, appending ch.Audit (if any) to
	// the audit log with the next sequence number. Idempotent but for the
	// audit entry.
	Apply(ctx context.Context, ch Change) error
	// Changes returns the audit log entries q selects, newest first.
	Changes(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

// SharedStore is a Store several Registries write, one per abmeshd
// replica (the PostgreSQL store). Writes are optimistic: every experiment,
// layer and override carries a resource version (the configuration version
// that last wrote it), and ApplyShared fails with an error wrapping
// ErrConflict, naming the entity and its expected and actual resource
// version, when an entity ch touches was changed by another registry since
// this one loaded it, or when ch, added to changes other registries made
// meanwhile to other entities, makes the configuration invalid. Otherwise
// it stores ch in one transaction at the version after the stored one
// (ch.Version is ignored) and returns the whole stored configuration,
// which the Registry installs. Load also records the resource versions
// the Registry's state is based on.
type SharedStore interface {
	Store
	ApplyShared(ctx context.Context, ch Change) (Config, error)
}

// MemStore is an in-memory Store for tests and for running without
// persistence. The zero value is an empty store ready to use.
type MemStore struct {
	mu        sync.Mutex
	version   uint64
	exps      map[string]Experiment
	layers    map[string]Layer
	overrides map[[2]string]Override
	audit     []AuditEntry
}

var _ Store = (*MemStore)(nil)

// Load returns a deep copy of the stored state.
func (s *MemStore) Load(context.Context) (Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Config{Version: s.version}
	for _, e := range s.exps {
		c.Experiments = append(c.Experiments, *e.Clone())
	}
	for _, l := range s.layers {
		c.Layers = append(c.Layers, l)
	}
	for _, o := range s.overrides {
		c.Overrides = append(c.Overrides, o)
	}
	c.sort()
	return c, nil
}

// Apply applies ch. It never fails.
func (s *MemStore) Apply(_ context.Context, ch Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exps == nil {
		s.exps = map[string]Experiment{}
		s.layers = map[string]Layer{}
		s.overrides = map[[2]string]Override{}
	}
	for _, id := range ch.DeleteExperiments {
		delete(s.exps, id)
	}
	for _, e := range ch.PutExperiments {
		s.exps[e.ID] = *e.Clone()
	}
	for _, id := range ch.DeleteLayers {
		delete(s.layers, id)
	}
	for _, l := range ch.PutLayers {
		s.layers[l.ID] = l
	}
	for _, o := range ch.DeleteOverrides {
		delete(s.overrides, [2]string{o.Experiment, o.Unit})
	}
	for _, o := range ch.PutOverrides {
		s.overrides[[2]string{o.Experiment, o.Unit}] = o
	}
	s.version = ch.Version
	if ch.Audit != nil {
		e := *ch.Audit
		e.Seq = uint64(len(s.audit)) + 1
		s.audit = append(s.audit, e)
	}
	return nil
}

// Changes implements Store.
func (s *MemStore) Changes(_ context.Context, q AuditQuery) ([]AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []AuditEntry
	for i := len(s.audit) - 1; i >= 0 && (q.Limit <= 0 || len(out) < q.Limit); i-- {
		if e := &s.audit[i]; (q.Before == 0 || e.Seq < q.Before) && q.Match(e) {
			out = append(out, *e)
		}
	}
	return out, nil
}

// StickyStore remembers the first randomized assignment of a unit in a
// sticky experiment. Implementations must be safe for concurrent use and
// fast: Get is on the evaluation path of every sticky experiment. They
// cannot fail the evaluation; a store that loses an entry only lets the
// unit be re-hashed.
type StickyStore interface {
	// Get returns the stored variant and phase of unit in test.
	Get(test, unit string) (variant string, phase int, ok bool)
	// Put stores variant and phase for unit in test, replacing any entry.
	Put(test, unit, variant string, phase int)
	// DeleteTest forgets every entry of test (the experiment was deleted,
	// so an experiment created later with the same id starts afresh).
	DeleteTest(test string)
}

// MemSticky is an in-memory StickyStore. The zero value is ready to use.
type MemSticky struct {
	mu sync.RWMutex
	m  map[string]map[string]stickyEntry
}

type stickyEntry struct {
	variant string
	phase   int
}

var _ StickyStore = (*MemSticky)(nil)

// Get implements StickyStore.
func (s *MemSticky) Get(test, unit string) (string, int, bool) {
	s.mu.RLock()
	e, ok := s.m[test][unit]
	s.mu.RUnlock()
	return e.variant, e.phase, ok
}

// Put implements StickyStore.
func (s *MemSticky) Put(test, unit, variant string, phase int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]map[string]stickyEntry{}
	}
	t := s.m[test]
	if t == nil {
		t = map[string]stickyEntry{}
		s.m[test] = t
	}
	t[unit] = stickyEntry{variant, phase}
}

// DeleteTest implements StickyStore.
func (s *MemSticky) DeleteTest(test string) {
	s.mu.Lock()
	delete(s.m, test)
	s.mu.Unlock()
}

// Len returns the number of entries of test.
func (s *MemSticky) Len(test string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m[test])
}

// String summarizes the change for logs.
func (c *Change) String() string {
	return fmt.Sprintf("change v%d: +%d/-%d experiments, +%d/-%d layers, +%d/-%d overrides",
		c.Version, len(c.PutExperiments), len(c.DeleteExperiments), len(c.PutLayers),
		len(c.DeleteLayers), len(c.PutOverrides), len(c.DeleteOverrides))
}
