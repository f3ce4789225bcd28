package assign

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestAuditEachChangeOnce runs every kind of admin operation, some twice
// to no effect, and checks that each effective one appended exactly one
// audit entry with its action, name, actor and before/after, and that the
// no-ops appended none.
func TestAuditEachChangeOnce(t *testing.T) {
	r, st := newRegistry(t)
	alice := Actor{Kind: ActorDeclared, Name: "alice", Peer: "10.0.0.1:5000"}
	ctx := WithActor(context.Background(), alice)
	type step struct {
		do           func() error
		action, name string
		before       string // a field:value the Before JSON has, "" for none (nil Before)
		after        string // likewise for After
	}
	ok := func(_ any, err error) error { return err }
	changed := draft("a")
	changed.Owner = "team-b"
	steps := []step{
		{func() error { return ok(r.CreateLayer(ctx, &Layer{ID: "l1"})) }, "layer.create", "l1", "", `"ID":"l1"`},
		{func() error { return ok(r.UpdateLayer(ctx, &Layer{ID: "l1", Description: "d"})) }, "layer.update", "l1", `"Description":""`, `"Description":"d"`},
		{func() error { return ok(r.UpdateLayer(ctx, &Layer{ID: "l1", Description: "d"})) }, "", "", "", ""},
		{func() error { return ok(r.Create(ctx, draft("a"))) }, "experiment.create", "a", "", `"Status":0`},
		{func() error { return ok(r.Update(ctx, draft("a"))) }, "", "", "", ""},
		{func() error { return ok(r.Update(ctx, changed)) }, "experiment.update", "a", `"Owner":""`, `"Owner":"team-b"`},
		{func() error { return ok(r.Start(ctx, "a")) }, "experiment.start", "a", `"Status":0`, `"Status":1`},
		{func() error { return ok(r.Start(ctx, "a")) }, "", "", "", ""},
		{func() error { return r.SetOverride(ctx, Override{"a", "u1", "control"}) }, "override.set", "a/u1", "", `"Variant":"control"`},
		{func() error { return r.SetOverride(ctx, Override{"a", "u1", "control"}) }, "", "", "", ""},
		{func() error { return r.SetOverride(ctx, Override{"a", "u1", "treatment"}) }, "override.set", "a/u1", `"Variant":"control"`, `"Variant":"treatment"`},
		{func() error { return r.DeleteOverride(ctx, "a", "u1") }, "override.delete", "a/u1", `"Unit":"u1"`, ""},
		{func() error { return ok(r.Pause(ctx, "a")) }, "experiment.pause", "a", `"Status":1`, `"Status":2`},
		{func() error { return ok(r.Conclude(ctx, "a", "treatment")) }, "experiment.conclude", "a", `"Winner":""`, `"Winner":"treatment"`},
		{func() error { return ok(r.Conclude(ctx, "a", "treatment")) }, "", "", "", ""},
		{func() error { return r.Delete(ctx, "a") }, "experiment.delete", "a", `"Status":3`, ""},
		{func() error { return r.DeleteLayer(ctx, "l1") }, "layer.delete", "l1", `"ID":"l1"`, ""},
	}
	var seq uint64
	for i, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		log, err := st.Changes(ctx, AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if s.action == "" {
			if uint64(len(log)) != seq {
				t.Errorf("step %d, a no-op, recorded %q", i, log[0].Action)
			}
			continue
		}
		seq++
		if uint64(len(log)) != seq {
			t.Fatalf("step %d (%s): %d entries, want %d", i, s.action, len(log), seq)
		}
		e := log[0]
		if e.Seq != seq || e.Action != s.action || e.Name != s.name || e.Actor != alice || e.Version != r.Version() || e.Time.IsZero() {
			t.Errorf("step %d: entry %+v, want seq %d, %s on %s by %v at version %d", i, e, seq, s.action, s.name, alice, r.Version())
		}
		checkSide(t, i, "before", e.Before, s.before)
		checkSide(t, i, "after", e.After, s.after)
	}
}

// checkSide checks that raw is nil when want is "", else valid JSON
// containing want.
func checkSide(t *testing.T, step int, side string, raw json.RawMessage, want string) {
	t.Helper()
	if want == "" {
		if raw != nil {
			t.Errorf("step %d: %s = %s, want none", step, side, raw)
		}
		return
	}
	if !json.Valid(raw) || !strings.Contains(string(raw), want) {
		t.Errorf("step %d: %s = %s, want JSON with %s", step, side, raw, want)
	}
}

// TestAuditQuery: filters by name (an experiment's name includes its
// overrides) and kind, pages with Before, and a failed change records
// nothing; a change without an actor is the system's.
func TestAuditQuery(t *testing.T) {
	r, st := newRegistry(t)
	ctx := context.Background()
	must(r.Create(ctx, draft("a")))(t)
	must(r.Create(ctx, draft("ab")))(t)
	must(r.Start(ctx, "a"))(t)
	if err := r.SetOverride(ctx, Override{"a", "u1", "control"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, draft("a")); err == nil {
		t.Fatal("second create of a succeeded")
	}
	actions := func(q AuditQuery) []string {
		es, err := r.Changes(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Action+" "+e.Name)
		}
		return out
	}
	for _, c := range []struct {
		q    AuditQuery
		want string
	}{
		{AuditQuery{}, "[override.set a/u1 experiment.start a experiment.create ab experiment.create a]"},
		{AuditQuery{Name: "a"}, "[override.set a/u1 experiment.start a experiment.create a]"},
		{AuditQuery{Name: "a", Kind: AuditExperiment}, "[experiment.start a experiment.create a]"},
		{AuditQuery{Kind: AuditOverride}, "[override.set a/u1]"},
		{AuditQuery{Limit: 2}, "[override.set a/u1 experiment.start a]"},
		{AuditQuery{Before: 3, Limit: 1}, "[experiment.create ab]"},
		{AuditQuery{Name: "a", Before: 3}, "[experiment.create a]"},
		{AuditQuery{Name: "zz"}, "[]"},
	} {
		if got := fmt.Sprint(actions(c.q)); got != c.want {
			t.Errorf("%+v: %s, want %s", c.q, got, c.want)
		}
	}
	es, _ := st.Changes(ctx, AuditQuery{Limit: 1})
	if es[0].Actor != (Actor{Kind: ActorSystem}) || es[0].Actor.String() != "(system)" {
		t.Errorf("actor without WithActor = %+v (%s)", es[0].Actor, es[0].Actor)
	}
}
