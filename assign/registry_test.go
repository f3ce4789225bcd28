package assign

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/testkit"
)

// tickingClock returns 2026-01-01T00:00:01Z plus one second per call.
func tickingClock() func() time.Time {
	c := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC))
	c.Step(time.Second)
	return c.Now
}

func newRegistry(t *testing.T, opts ...Option) (*Registry, *MemStore) {
	t.Helper()
	st := &MemStore{}
	r, err := NewRegistry(context.Background(), st, append([]Option{WithClock(tickingClock())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r, st
}

// draft returns a valid experiment definition as a team would submit it.
func draft(id string, vs ...Variant) *Experiment {
	x := testExp(id, vs...)
	x.Status, x.Phase, x.Phases = StatusDraft, 0, nil
	x.Plan = Plan{MDE: 1}
	return &x
}

// must returns v when err is nil and fails the test otherwise:
// must(r.Create(ctx, x))(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// TestLifecycle runs sequences of registry operations and checks each
// one's error class and the resulting status.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	type step struct {
		op         string // create, start, pause, conclude:<winner>, delete, update
		wantErr    error  // nil, or a sentinel
		wantField  string
		wantStatus Status
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"happy path", []step{
			{"create", nil, "", StatusDraft},
			{"start", nil, "", StatusRunning},
			{"pause", nil, "", StatusPaused},
			{"start", nil, "", StatusRunning},
			{"conclude:treatment", nil, "", StatusConcluded},
			{"delete", nil, "", 0},
		}},
		{"idempotent start, pause, conclude", []step{
			{"create", nil, "", StatusDraft},
			{"start", nil, "", StatusRunning},
			{"start", nil, "", StatusRunning},
			{"pause", nil, "", StatusPaused},
			{"pause", nil, "", StatusPaused},
			{"conclude:control", nil, "", StatusConcluded},
			{"conclude:control", nil, "", StatusConcluded},
		}},
		{"errors", []step{
			{"start", ErrNotFound, "", 0},
			{"create", nil, "", StatusDraft},
			{"create", ErrAlreadyExists, "", StatusDraft},
			{"pause", ErrFailedPrecondition, "", StatusDraft},
			{"conclude:control", ErrFailedPrecondition, "", StatusDraft},
			{"start", nil, "", StatusRunning},
			{"delete", ErrFailedPrecondition, "", StatusRunning},
			{"conclude:nope", ErrInvalid, "winner", StatusRunning},
			{"conclude:", ErrInvalid, "winner", StatusRunning},
			{"conclude:treatment", nil, "", StatusConcluded},
			{"conclude:control", ErrFailedPrecondition, "", StatusConcluded},
			{"start", ErrFailedPrecondition, "", StatusConcluded},
			{"pause", ErrFailedPrecondition, "", StatusConcluded},
			{"update", ErrFailedPrecondition, "", StatusConcluded},
			{"delete", nil, "", 0},
			{"delete", ErrNotFound, "", 0},
			{"pause", ErrNotFound, "", 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newRegistry(t)
			for i, s := range tt.steps {
				v0 := r.Version()
				var err error
				switch {
				case s.op == "create":
					_, err = r.Create(ctx, draft("exp"))
				case s.op == "update":
					_, err = r.Update(ctx, draft("exp"))
				case s.op == "start":
					_, err = r.Start(ctx, "exp")
				case s.op == "pause":
					_, err = r.Pause(ctx, "exp")
				case s.op == "delete":
					err = r.Delete(ctx, "exp")
				case strings.HasPrefix(s.op, "conclude:"):
					_, err = r.Conclude(ctx, "exp", s.op[9:])
				default:
					t.Fatalf("bad op %q", s.op)
				}
				if s.wantErr == nil && err != nil || !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d %s: err = %v, want %v", i, s.op, err, s.wantErr)
				}
				if s.wantField != "" {
					var fe *FieldError
					if !errors.As(err, &fe) || fe.Field != s.wantField {
						t.Fatalf("step %d %s: err = %v, want field %q", i, s.op, err, s.wantField)
					}
				}
				if err != nil && r.Version() != v0 {
					t.Fatalf("step %d %s: failed mutation bumped the version", i, s.op)
				}
				x, gerr := r.Experiment("exp")
				if errors.Is(gerr, ErrNotFound) {
					continue
				}
				if x.Status != s.wantStatus {
					t.Fatalf("step %d %s: status %s, want %s", i, s.op, x.Status, s.wantStatus)
				}
			}
		})
	}
}

// TestPhases checks that starting opens phase 1, that resuming and
// non-assignment edits keep the phase, and that weight, targeting and
// slice changes open the next one.
func TestPhases(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	must(r.CreateLayer(ctx, &Layer{ID: "l"}))(t)
	x := draft("exp")
	must(r.Create(ctx, x))(t)
	x.Variants = weights(1, 1) // edits of a draft open no phase
	got := must(r.Update(ctx, x))(t)
	if got.Phase != 0 || len(got.Phases) != 0 {
		t.Fatalf("draft update: phase %d %v", got.Phase, got.Phases)
	}
	got = must(r.Start(ctx, "exp"))(t)
	if got.Phase != 1 || len(got.Phases) != 1 || !slices.Equal(got.Phases[0].Weights, []uint32{1, 1}) {
		t.Fatalf("start: phase %d %+v", got.Phase, got.Phases)
	}
	steps := []struct {
		name      string
		mod       func(x *Experiment)
		wantPhase int
	}{
		{"description", func(x *Experiment) { x.Description = "new text" }, 1},
		{"sticky", func(x *Experiment) { x.Sticky = true }, 1},
		{"plan", func(x *Experiment) { x.Plan.MDE = 3 }, 1},
		{"weights", func(x *Experiment) { x.Variants = weights(1, 3) }, 2},
		{"same weights again", func(x *Experiment) { x.Variants = weights(1, 3) }, 2},
		{"targeting", func(x *Experiment) { x.Targeting = []Rule{{"grade", OpEq, []string{"vip"}}} }, 3},
		{"layer and slice", func(x *Experiment) { x.Layer, x.Slice = "l", Slice{0, 100} }, 4},
		{"slice", func(x *Experiment) { x.Slice = Slice{0, 200} }, 5},
		{"new variant", func(x *Experiment) { x.Variants = append(x.Variants, Variant{"v2", 1}) }, 6},
	}
	for _, s := range steps {
		s.mod(x)
		got = must(r.Update(ctx, x))(t)
		if got.Phase != s.wantPhase || len(got.Phases) != s.wantPhase {
			t.Fatalf("%s: phase %d with %d phases, want %d", s.name, got.Phase, len(got.Phases), s.wantPhase)
		}
		last := got.Phases[len(got.Phases)-1]
		if last.Number != got.Phase || len(last.Weights) != len(x.Variants) {
			t.Fatalf("%s: last phase %+v", s.name, last)
		}
		if a := mustEval(t, r.Snapshot(), "exp", "user-1", map[string]string{"grade": "vip"}); a.Phase != s.wantPhase {
			t.Fatalf("%s: assignment phase %d", s.name, a.Phase)
		}
	}
	must(r.Pause(ctx, "exp"))(t)
	got = must(r.Start(ctx, "exp"))(t)
	if got.Phase != 6 {
		t.Errorf("resume opened a phase: %d", got.Phase)
	}
	x.Variants = weights(1, 1, 1)
	must(r.Pause(ctx, "exp"))(t)
	if got = must(r.Update(ctx, x))(t); got.Phase != 7 {
		t.Errorf("weight change while paused: phase %d, want 7", got.Phase)
	}
	x.Salt = "other"
	_, err := r.Update(ctx, x)
	checkFieldErr(t, err, "salt")
}

// TestVersionAndPersistence checks that every mutation bumps the version,
// no-ops do not, and a registry reloaded from the same store has the same
// configuration.
func TestVersionAndPersistence(t *testing.T) {
	ctx := context.Background()
	r, st := newRegistry(t)
	ops := []struct {
		name string
		do   func() error
		bump bool
	}{
		{"create layer", func() error { _, err := r.CreateLayer(ctx, &Layer{ID: "l"}); return err }, true},
		{"update layer", func() error { _, err := r.UpdateLayer(ctx, &Layer{ID: "l", Description: "d"}); return err }, true},
		{"create", func() error { _, err := r.Create(ctx, draft("a")); return err }, true},
		{"create b", func() error {
			x := draft("b")
			x.Layer, x.Slice = "l", Slice{0, 5000}
			_, err := r.Create(ctx, x)
			return err
		}, true},
		{"start", func() error { _, err := r.Start(ctx, "a"); return err }, true},
		{"start again", func() error { _, err := r.Start(ctx, "a"); return err }, false},
		{"override", func() error { return r.SetOverride(ctx, Override{"a", "user-1", "treatment"}) }, true},
		{"override b", func() error { return r.SetOverride(ctx, Override{"b", "user-1", "treatment"}) }, true},
		{"update", func() error {
			_, err := r.Update(ctx, draft("a", Variant{"control", 1}, Variant{"treatment", 2}))
			return err
		}, true},
		{"delete override", func() error { return r.DeleteOverride(ctx, "a", "user-1") }, true},
		{"start b", func() error { _, err := r.Start(ctx, "b"); return err }, true},
		{"pause b", func() error { _, err := r.Pause(ctx, "b"); return err }, true},
		{"delete b", func() error { return r.Delete(ctx, "b") }, true},
	}
	for i, op := range ops {
		v0 := r.Version()
		if err := op.do(); err != nil {
			t.Fatalf("%s: %v", op.name, err)
		}
		want := v0
		if op.bump {
			want++
		}
		if r.Version() != want {
			t.Fatalf("%s: version %d, want %d", op.name, r.Version(), want)
		}
		r2, err := NewRegistry(ctx, st)
		if err != nil {
			t.Fatalf("%s: reload: %v", op.name, err)
		}
		c1, c2 := r.Snapshot().Config(), r2.Snapshot().Config()
		if fmt.Sprintf("%+v", c1) != fmt.Sprintf("%+v", c2) {
			t.Fatalf("step %d %s: reloaded config differs:\n%+v\n%+v", i, op.name, c1, c2)
		}
	}
	// Deleting b deleted its override too.
	if ovs, _ := r.Overrides("a"); len(ovs) != 0 {
		t.Errorf("overrides of a: %v", ovs)
	}
	if n := len(r.Snapshot().Config().Overrides); n != 0 {
		t.Errorf("%d overrides left after delete", n)
	}
}

// failingStore fails every Apply.
type failingStore struct{ MemStore }

func (*failingStore) Apply(context.Context, Change) error { return errors.New("disk full") }

func TestStoreFailureChangesNothing(t *testing.T) {
	ctx := context.Background()
	r, err := NewRegistry(ctx, &failingStore{})
	if err != nil {
		t.Fatal(err)
	}
	ch := r.Subscribe(t.Context())
	<-ch
	if _, err := r.Create(ctx, draft("a")); err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want the store's error", err)
	}
	if r.Version() != 0 || len(r.Experiments()) != 0 {
		t.Errorf("failed create left state behind: v%d %v", r.Version(), r.Experiments())
	}
	select {
	case e := <-ch:
		t.Errorf("failed create published v%d", e.Version())
	default:
	}
}

func TestRegistryErrors(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	must(r.CreateLayer(ctx, &Layer{ID: "home"}))(t)
	must(r.Create(ctx, draft("a")))(t)
	inLayer := func(id string, s Slice) *Experiment {
		x := draft(id)
		x.Layer, x.Slice = "home", s
		return x
	}
	must(r.Create(ctx, inLayer("b", Slice{0, 5000})))(t)
	must(r.Start(ctx, "b"))(t)
	must(r.Create(ctx, inLayer("c", Slice{4000, 6000})))(t) // drafts may overlap
	tests := []struct {
		name   string
		do     func() error
		wantIs error
		field  string
	}{
		{"create invalid", func() error { x := draft("x"); x.Variants = nil; _, err := r.Create(ctx, x); return err }, ErrInvalid, "variants"},
		{"create unknown layer", func() error {
			x := draft("x")
			x.Layer, x.Slice = "nope", Slice{0, 1}
			_, err := r.Create(ctx, x)
			return err
		}, ErrInvalid, "layer"},
		{"create shared salt", func() error { x := draft("x"); x.Salt = "a"; _, err := r.Create(ctx, x); return err }, ErrInvalid, "salt"},
		{"create salt is layer", func() error { x := draft("x"); x.Salt = "home"; _, err := r.Create(ctx, x); return err }, ErrInvalid, "salt"},
		{"create duplicate", func() error { _, err := r.Create(ctx, draft("a")); return err }, ErrAlreadyExists, ""},
		{"update unknown", func() error { _, err := r.Update(ctx, draft("nope")); return err }, ErrNotFound, ""},
		{"update invalid id", func() error { _, err := r.Update(ctx, draft("No")); return err }, ErrInvalid, "id"},
		{"start overlapping", func() error { _, err := r.Start(ctx, "c"); return err }, ErrFailedPrecondition, ""},
		{"delete unknown", func() error { return r.Delete(ctx, "nope") }, ErrNotFound, ""},
		{"override unknown experiment", func() error { return r.SetOverride(ctx, Override{"nope", "u", "control"}) }, ErrNotFound, ""},
		{"override unknown variant", func() error { return r.SetOverride(ctx, Override{"a", "u", "nope"}) }, ErrInvalid, "variant"},
		{"override empty unit", func() error { return r.SetOverride(ctx, Override{"a", "", "control"}) }, ErrInvalid, "unit_id"},
		{"override long unit", func() error { return r.SetOverride(ctx, Override{"a", string(make([]byte, 257)), "control"}) }, ErrInvalid, "unit_id"},
		{"delete missing override", func() error { return r.DeleteOverride(ctx, "a", "u") }, ErrNotFound, ""},
		{"create layer duplicate", func() error { _, err := r.CreateLayer(ctx, &Layer{ID: "home"}); return err }, ErrAlreadyExists, ""},
		{"create layer invalid", func() error { _, err := r.CreateLayer(ctx, &Layer{ID: "Home"}); return err }, ErrInvalid, "id"},
		{"create layer named like a salt", func() error { _, err := r.CreateLayer(ctx, &Layer{ID: "a"}); return err }, ErrInvalid, "id"},
		{"update layer unknown", func() error { _, err := r.UpdateLayer(ctx, &Layer{ID: "nope"}); return err }, ErrNotFound, ""},
		{"delete layer unknown", func() error { return r.DeleteLayer(ctx, "nope") }, ErrNotFound, ""},
		{"delete layer in use", func() error { return r.DeleteLayer(ctx, "home") }, ErrFailedPrecondition, ""},
		{"get unknown", func() error { _, err := r.Experiment("nope"); return err }, ErrNotFound, ""},
		{"get unknown layer", func() error { _, err := r.Layer("nope"); return err }, ErrNotFound, ""},
		{"overrides of unknown", func() error { _, err := r.Overrides("nope"); return err }, ErrNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if tt.wantIs == nil {
				return
			}
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			if tt.field != "" {
				checkFieldErr(t, err, tt.field)
			}
		})
	}
	// A running experiment's slice may not grow into another active one's.
	must(r.Start(ctx, "a"))(t)
	x := inLayer("d", Slice{5000, 6000})
	must(r.Create(ctx, x))(t)
	must(r.Start(ctx, "d"))(t)
	_, err := r.Update(ctx, inLayer("d", Slice{4999, 6000})) // b owns [0, 5000)
	checkFieldErr(t, err, "slice")
	// Once the overlapping experiments are gone, the layer can be deleted.
	must(r.Pause(ctx, "b"))(t)
	must(r.Pause(ctx, "d"))(t)
	for _, id := range []string{"b", "c", "d"} {
		if err := r.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.DeleteLayer(ctx, "home"); err != nil {
		t.Fatal(err)
	}
}

// TestOverrides checks the override flow through the registry: a pinned
// unit gets its variant with reason OVERRIDE (not randomized), across
// pause, until the experiment concludes; removing a variant drops the
// overrides pinned to it.
func TestOverrides(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	x := draft("exp", weights(1, 0, 0)...) // the hash always gives control
	must(r.Create(ctx, x))(t)
	if err := r.SetOverride(ctx, Override{"exp", "qa-user", "v1"}); err != nil {
		t.Fatal(err)
	}
	check := func(unit string, want Assignment) {
		t.Helper()
		if got := mustEval(t, r.Snapshot(), "exp", unit, nil); got != want {
			t.Errorf("%s: %+v, want %+v", unit, got, want)
		}
	}
	check("qa-user", Assignment{"exp", "v1", ReasonOverride, 0}) // QA before launch
	if as := r.Snapshot().AppendAssignments(nil, "other", nil, Filter{}); len(as) != 0 {
		t.Errorf("draft assigned a unit without override: %v", as)
	}
	must(r.Start(ctx, "exp"))(t)
	check("qa-user", Assignment{"exp", "v1", ReasonOverride, 1})
	check("other", Assignment{"exp", "control", ReasonHash, 1})
	if err := r.SetOverride(ctx, Override{"exp", "qa-user", "v2"}); err != nil { // replace
		t.Fatal(err)
	}
	check("qa-user", Assignment{"exp", "v2", ReasonOverride, 1})
	must(r.Pause(ctx, "exp"))(t)
	check("qa-user", Assignment{"exp", "v2", ReasonOverride, 1})
	check("other", Assignment{"exp", "control", ReasonPaused, 1})
	must(r.Start(ctx, "exp"))(t)
	// Dropping v2 drops the override pinned to it.
	x.Variants = weights(1, 0)
	must(r.Update(ctx, x))(t)
	if ovs := must(r.Overrides("exp"))(t); len(ovs) != 0 {
		t.Errorf("overrides after removing their variant: %v", ovs)
	}
	check("qa-user", Assignment{"exp", "control", ReasonHash, 2})
	if err := r.SetOverride(ctx, Override{"exp", "qa-user", "v1"}); err != nil {
		t.Fatal(err)
	}
	if ovs := must(r.Overrides("exp"))(t); len(ovs) != 1 || ovs[0] != (Override{"exp", "qa-user", "v1"}) {
		t.Errorf("Overrides = %v", ovs)
	}
	must(r.Conclude(ctx, "exp", "control"))(t)
	check("qa-user", Assignment{"exp", "control", ReasonWinner, 2})
	if err := r.SetOverride(ctx, Override{"exp", "qa-user", "v1"}); !errors.Is(err, ErrFailedPrecondition) {
		t.Errorf("override of a concluded experiment: %v", err)
	}
	if err := r.DeleteOverride(ctx, "exp", "qa-user"); err != nil {
		t.Error(err)
	}
}

// TestSticky checks that sticky units keep their first assignment when the
// weights change, even to 0%, while new units see the new weights, and
// that a non-sticky experiment moves them.
func TestSticky(t *testing.T) {
	ctx := context.Background()
	sticky := &MemSticky{}
	r, _ := newRegistry(t, WithSticky(sticky))
	for _, id := range []string{"sticky", "plain"} {
		x := draft(id, weights(1, 1)...)
		x.Sticky = id == "sticky"
		x.Salt = "same-split-" + id
		must(r.Create(ctx, x))(t)
		must(r.Start(ctx, id))(t)
	}
	const n = 5000
	first := map[string]string{}
	var buf []Assignment
	for i := 1; i <= n; i++ {
		u := unitID(i)
		buf = r.Snapshot().AppendAssignments(buf[:0], u, nil, Filter{Tests: []string{"sticky"}})
		if buf[0].Reason != ReasonHash || buf[0].Phase != 1 {
			t.Fatalf("first assignment %+v", buf[0])
		}
		first[u] = buf[0].Variant
	}
	if sticky.Len("sticky") != n || sticky.Len("plain") != 0 {
		t.Fatalf("sticky store holds %d/%d entries", sticky.Len("sticky"), sticky.Len("plain"))
	}
	next := n // new units get ids past next
	for _, step := range []struct {
		name string
		ws   []uint32
	}{{"v1 to 0%", []uint32{1, 0}}, {"control to 0%", []uint32{0, 1}}, {"3:1", []uint32{3, 1}}} {
		for _, id := range []string{"sticky", "plain"} {
			x := must(r.Experiment(id))(t)
			x.Variants = weights(step.ws...)
			must(r.Update(ctx, x))(t)
		}
		e := r.Snapshot()
		phase := must(r.Experiment("sticky"))(t).Phase
		movedPlain := 0
		for i := 1; i <= n; i++ {
			u := unitID(i)
			a := mustEval(t, e, "sticky", u, nil)
			if a.Variant != first[u] || a.Reason != ReasonSticky || a.Phase != 1 {
				t.Fatalf("%s: sticky unit %s: %+v, first %s", step.name, u, a, first[u])
			}
			p := mustEval(t, e, "plain", u, nil)
			if hv, _ := e.HashVariant("plain", u); p.Variant != hv || p.Reason != ReasonHash {
				t.Fatalf("%s: plain unit %s: %+v, hash %s", step.name, u, p, hv)
			}
			if p.Variant != first[u] {
				movedPlain++
			}
		}
		if movedPlain == 0 {
			t.Errorf("%s: the non-sticky experiment moved nobody", step.name)
		}
		// New units see the new weights and current phase.
		for i := next + 1; i <= next+2000; i++ {
			a := mustEval(t, e, "sticky", unitID(i), nil)
			hv, _ := e.HashVariant("sticky", unitID(i))
			if a.Reason != ReasonHash || a.Variant != hv || a.Phase != phase {
				t.Fatalf("%s: new unit: %+v (hash %s, phase %d)", step.name, a, hv, phase)
			}
			if step.ws[0] == 0 && a.Variant == "control" || step.ws[1] == 0 && a.Variant == "v1" {
				t.Fatalf("%s: new unit got a 0%% variant: %+v", step.name, a)
			}
		}
		next += 2000
	}
	// Deleting the experiment forgets its entries.
	must(r.Pause(ctx, "sticky"))(t)
	if err := r.Delete(ctx, "sticky"); err != nil {
		t.Fatal(err)
	}
	if sticky.Len("sticky") != 0 {
		t.Errorf("%d sticky entries after delete", sticky.Len("sticky"))
	}
}

// TestStickyNotRandomizedNotStored checks that only hash assignments of a
// running experiment are stored.
func TestStickyNotRandomizedNotStored(t *testing.T) {
	sticky := &MemSticky{}
	x := testExp("exp")
	x.Sticky = true
	x.Targeting = []Rule{{"grade", OpEq, []string{"vip"}}}
	e := mustCompile(t, Config{Experiments: []Experiment{x}, Overrides: []Override{{"exp", "pinned", "treatment"}}}, WithSticky(sticky))
	mustEval(t, e, "exp", "untargeted", nil)
	mustEval(t, e, "exp", "pinned", map[string]string{"grade": "vip"})
	if sticky.Len("exp") != 0 {
		t.Errorf("stored %d non-randomized assignments", sticky.Len("exp"))
	}
	mustEval(t, e, "exp", "u", map[string]string{"grade": "vip"})
	if v, ph, ok := sticky.Get("exp", "u"); !ok || ph != 1 || v == "" {
		t.Errorf("sticky entry %q %d %v", v, ph, ok)
	}
}

// TestSubscribe checks that a subscriber gets the current engine, then the
// latest one after changes (coalesced), and that its channel closes with
// its context.
func TestSubscribe(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	sctx, cancel := context.WithCancel(ctx)
	ch := r.Subscribe(sctx)
	if e := <-ch; e.Version() != 0 {
		t.Fatalf("first engine v%d", e.Version())
	}
	must(r.Create(ctx, draft("a")))(t)
	must(r.Start(ctx, "a"))(t)
	must(r.Pause(ctx, "a"))(t)
	if e := <-ch; e.Version() != 3 || e != r.Snapshot() {
		t.Fatalf("coalesced engine v%d, want v3", e.Version())
	}
	select {
	case e := <-ch:
		t.Fatalf("extra engine v%d", e.Version())
	default:
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				must(r.Start(ctx, "a"))(t) // publishing after unsubscribe is fine
				return
			}
		case <-deadline:
			t.Fatal("channel not closed after cancel")
		}
	}
}

// TestConcurrentReadsDuringWrites evaluates from snapshots while another
// goroutine changes the weights: every answer must come from one
// consistent configuration (run with -race).
func TestConcurrentReadsDuringWrites(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	must(r.Create(ctx, draft("exp")))(t)
	must(r.Start(ctx, "exp"))(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			var buf []Assignment
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e := r.Snapshot()
				u := unitID(i)
				buf = e.AppendAssignments(buf[:0], u, nil, Filter{})
				x, _ := e.Experiment("exp")
				if len(buf) != 1 || buf[0].Phase != x.Phase {
					t.Errorf("inconsistent snapshot: %+v vs phase %d", buf, x.Phase)
					return
				}
			}
		})
	}
	for i := range 50 {
		x := draft("exp", weights(uint32(i%7+1), 3)...)
		must(r.Update(ctx, x))(t)
	}
	close(stop)
	wg.Wait()
}

func TestRegistryReturnsCopies(t *testing.T) {
	ctx := context.Background()
	r, _ := newRegistry(t)
	in := draft("exp")
	got := must(r.Create(ctx, in))(t)
	in.Variants[0].Name = "mutated-input"
	got.Variants[0].Name = "mutated-output"
	x := must(r.Experiment("exp"))(t)
	if x.Variants[0].Name != "control" {
		t.Fatalf("registry state shares memory: %q", x.Variants[0].Name)
	}
	x.Variants[0].Name = "mutated-get"
	if y := must(r.Experiment("exp"))(t); y.Variants[0].Name != "control" {
		t.Fatalf("Experiment returned shared memory")
	}
	if got.Plan.Alpha != DefaultAlpha || got.Plan.Power != DefaultPower {
		t.Errorf("defaults not applied: %+v", got.Plan)
	}
	if got.CreatedAt.IsZero() || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("timestamps %v %v", got.CreatedAt, got.UpdatedAt)
	}
}
