package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/testkit/pgtest"
	"github.com/abmesh/abmesh/subset"
)

// openDB opens the store at url, closed when t ends.
func openDB(t *testing.T, url string, opts ...Option) *DB {
	t.Helper()
	d, err := Open(context.Background(), url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// replica is one abmeshd's store and registry on a shared database.
func replica(t *testing.T, url string) (*DB, *assign.Registry) {
	t.Helper()
	d := openDB(t, url)
	r, err := assign.NewRegistry(context.Background(), d, assign.WithSticky(d))
	if err != nil {
		t.Fatal(err)
	}
	return d, r
}

func experiment(id string) *assign.Experiment {
	return &assign.Experiment{
		ID: id, ChangeService: "rec", MeasureService: "frontend",
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "ml", Weight: 1}},
		Plan:     assign.Plan{MDE: 1},
	}
}

func TestUnreachableServerNamesAddress(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = Open(context.Background(), "postgres://abmesh@"+addr+"/abmesh?sslmode=disable&connect_timeout=2")
	if err == nil || !strings.Contains(err.Error(), "cannot reach PostgreSQL at "+addr) {
		t.Fatalf("err = %v, want one naming %s", err, addr)
	}
	if _, err := Open(context.Background(), "postgres://a@b:notaport/x"); err == nil || !strings.Contains(err.Error(), "--store") {
		t.Errorf("bad URL: err = %v", err)
	}
}

func TestStateSurvivesReopen(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx := context.Background()
	d, r := replica(t, url)
	if _, err := r.CreateLayer(ctx, &assign.Layer{ID: "checkout"}); err != nil {
		t.Fatal(err)
	}
	x := experiment("rec-model")
	x.Layer, x.Slice, x.Sticky = "checkout", assign.Slice{Start: 0, End: 5000}, true
	if _, err := r.Create(ctx, x); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, experiment("gone")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(ctx, "rec-model"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetOverride(ctx, assign.Override{Experiment: "rec-model", Unit: "u1", Variant: "ml"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	d.Put("rec-model", "u9", "ml", 1)
	if err := d.PutBlob("graph", []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	want := r.Snapshot().Config()
	if want.Version != 6 {
		t.Errorf("version after 6 changes = %d", want.Version)
	}
	d.Close()

	d2, r2 := replica(t, url)
	got := r2.Snapshot().Config()
	if jsonArg(got) != jsonArg(want) {
		t.Errorf("reloaded config\n%s\nwant\n%s", jsonArg(got), jsonArg(want))
	}
	if v, ph, ok := d2.Get("rec-model", "u9"); !ok || v != "ml" || ph != 1 {
		t.Errorf("sticky = %q %d %v", v, ph, ok)
	}
	if b, err := d2.GetBlob("graph"); err != nil || string(b) != `{"x":1}` {
		t.Errorf("blob = %q, %v", b, err)
	}
	if _, err := d2.GetBlob("nope"); !errors.Is(err, ErrNoBlob) {
		t.Errorf("missing blob err = %v", err)
	}
	log, err := r2.Changes(ctx, assign.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		actions = append(actions, fmt.Sprintf("%d:%s@%d", e.Seq, e.Action, e.Version))
	}
	if got, want := strings.Join(actions, " "), "6:experiment.delete@6 5:override.set@5 4:experiment.start@4 3:experiment.create@3 2:experiment.create@2 1:layer.create@1"; got != want {
		t.Errorf("audit log %s\nwant %s", got, want)
	}
	page, err := r2.Changes(ctx, assign.AuditQuery{Kind: assign.AuditExperiment, Before: 4, Limit: 1})
	if err != nil || len(page) != 1 || page[0].Seq != 3 {
		t.Errorf("filtered page = %+v, %v", page, err)
	}
	d2.DeleteTest("rec-model")
	if _, _, ok := d2.Get("rec-model", "u9"); ok {
		t.Error("sticky entry survived DeleteTest")
	}
}

func TestSchemaNewerThanBinaryIsRefused(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	d := openDB(t, url)
	if _, err := d.pool.Exec(context.Background(), `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), url)
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d, this binary knows up to %d", SchemaVersion+1, SchemaVersion)) {
		t.Fatalf("err = %v, want ErrSchemaTooNew naming both versions", err)
	}
}

func TestReplicasMigrateTogether(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			d, err := Open(context.Background(), url)
			if err == nil {
				d.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

var conflictMsg = regexp.MustCompile(`experiment "x" was changed by another replica: expected resource version (\d+), actual (\d+)`)

// Two replicas update one experiment at once, 20 times: each time exactly
// one wins, the other gets ErrConflict naming both resource versions, and
// the stored experiment is the winner's.
func TestConcurrentConflictingUpdates(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx := context.Background()
	_, a := replica(t, url)
	if _, err := a.Create(ctx, experiment("x")); err != nil {
		t.Fatal(err)
	}
	_, b := replica(t, url)
	regs := []*assign.Registry{a, b}
	for round := range 20 {
		for _, r := range regs { // both start from the current state
			if err := r.Reload(ctx); err != nil {
				t.Fatal(err)
			}
		}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, r := range regs {
			wg.Go(func() {
				x := experiment("x")
				x.Description = fmt.Sprintf("round %d by %d", round, i)
				_, errs[i] = r.Update(ctx, x)
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: both updates succeeded", round)
				}
				winner = i
			case errors.Is(err, assign.ErrConflict):
				m := conflictMsg.FindStringSubmatch(err.Error())
				if m == nil || m[1] == m[2] {
					t.Fatalf("round %d: conflict error %q does not name the versions", round, err)
				}
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no update succeeded: %v", round, errs)
		}
		// The loser caught up at once (Registry reloads on a conflict):
		// both now hold the winner's description.
		for i, r := range regs {
			got, _ := r.Experiment("x")
			if want := fmt.Sprintf("round %d by %d", round, winner); got.Description != want {
				t.Fatalf("round %d: replica %d holds %q, want %q", round, i, got.Description, want)
			}
		}
	}
	log, err := a.Changes(ctx, assign.AuditQuery{Name: "x"})
	if err != nil || len(log) != 21 {
		t.Fatalf("audit log has %d entries of x (want 1 create + 20 updates): %v", len(log), err)
	}
}

// A stale replica's change to other entities is merged, not lost; one
// that is only invalid together with another replica's change is a
// conflict.
func TestStaleReplicaMergesOrConflicts(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx := context.Background()
	_, a := replica(t, url)
	_, b := replica(t, url)
	if _, err := a.Create(ctx, experiment("from-a")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(ctx, experiment("from-b")); err != nil {
		t.Fatalf("stale replica's create of another experiment: %v", err)
	}
	if ids := fmt.Sprint(len(b.Experiments())); ids != "2" || b.Version() != 2 {
		t.Errorf("replica b holds %s experiments at version %d, want 2 at 2", ids, b.Version())
	}
	x, y := experiment("salted-a"), experiment("salted-b")
	x.Salt, y.Salt = "same", "same"
	if _, err := a.Create(ctx, x); err != nil {
		t.Fatal(err)
	}
	_, err := b.Create(ctx, y)
	if !errors.Is(err, assign.ErrConflict) || !strings.Contains(err.Error(), "salt") {
		t.Fatalf("create with another replica's salt: err = %v, want a conflict naming the salt", err)
	}
	if _, err := b.Experiment("salted-b"); err == nil {
		t.Error("the conflicting experiment was stored")
	}
}

// An admin change on replica 1 reaches a subscriber of replica 3 within
// 1 s through LISTEN/NOTIFY, and again after the server restarts
// (reconnect and full resync).
func TestWatchSeesOtherReplicasChanges(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var regs []*assign.Registry
	for range 3 {
		d, r := replica(t, url)
		go d.Watch(ctx, func(ctx context.Context) { _ = r.Reload(ctx) })
		regs = append(regs, r)
	}
	sub := regs[2].Subscribe(ctx)
	<-sub // the current engine
	seen := func(id string) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := regs[0].Create(ctx, experiment(id)); err != nil {
			t.Fatal(err)
		}
		timeout := time.After(time.Second)
		for {
			select {
			case eng := <-sub:
				if _, ok := eng.Experiment(id); ok {
					return time.Since(start)
				}
			case <-timeout:
				t.Fatalf("replica 3 did not see %s within 1 s", id)
			}
		}
	}
	time.Sleep(200 * time.Millisecond) // the listeners are up
	t.Logf("seen by replica 3 after %v", seen("first"))

	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// Replica 1's pool redials on its own; replica 3's listener
	// reconnects within its backoff and resyncs.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := regs[0].Create(ctx, experiment("probe")); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("replica 1 cannot write after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // the most a listener waits to reconnect
	t.Logf("after a server restart, seen by replica 3 after %v", seen("second"))
	if _, ok := regs[2].Snapshot().Experiment("probe"); !ok {
		t.Error("replica 3 missed the change made while it reconnected")
	}
}

// A listener whose connection is killed resyncs once it has reconnected,
// without any notification.
func TestWatchResyncsOnReconnect(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t) + "&application_name=watcher"
	d := openDB(t, url)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	syncs := make(chan struct{}, 10)
	go d.Watch(ctx, func(context.Context) { syncs <- struct{}{} })
	<-syncs
	if _, err := d.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'watcher' AND query LIKE 'LISTEN%'`); err != nil {
		t.Fatal(err)
	}
	select {
	case <-syncs:
	case <-time.After(3 * time.Second):
		t.Fatal("no resync within 3 s of losing the listening connection")
	}
}

func TestWindowsRoundTrip(t *testing.T) {
	d := openDB(t, pgtest.Start(t).NewDatabase(t))
	ctx := context.Background()
	w, other := d.Windows("r1"), d.Windows("r2")
	cells := subset.WindowCells{Viewpoint: "rec", Seq: 3, Start: time.Unix(10, 0).UTC(), Metric: "latency_ms"}
	units := []subset.UnitState{{Key: 1<<64 - 1, Cell: 1 << 63, Sum: 0.1 + 0.2, Requests: 1<<32 - 1, NonZero: true}, {Key: 5, Cell: 0, Sum: -1e-300, Requests: 1}}
	if err := w.SaveWindows(ctx, []subset.WindowSave{{Cells: cells, Units: subset.UnitChanges{Put: units}}}, map[string][]byte{"graph": []byte("g")}); err != nil {
		t.Fatal(err)
	}
	got, err := w.LoadWindows(ctx)
	if err != nil || len(got) != 1 || jsonArg(got[0]) != jsonArg(cells) {
		t.Fatalf("windows = %+v, %v", got, err)
	}
	if got, err := other.LoadWindows(ctx); err != nil || len(got) != 0 {
		t.Errorf("another replica loads %d windows, %v", len(got), err)
	}
	loaded := map[uint64]subset.UnitState{}
	if err := w.LoadUnits(ctx, "rec", 3, func(u subset.UnitState) error { loaded[u.Key] = u; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, u := range units {
		if loaded[u.Key] != u {
			t.Errorf("unit %d = %+v, want %+v", u.Key, loaded[u.Key], u)
		}
	}
	if b, err := d.GetBlob("graph"); err != nil || string(b) != "g" {
		t.Errorf("blob saved with the windows = %q, %v", b, err)
	}
	// Closed windows keep their units: another replica's may merge with them.
	if err := w.SaveWindow(ctx, cells, subset.UnitChanges{Drop: true}); err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = w.LoadUnits(ctx, "rec", 3, func(subset.UnitState) error { n++; return nil })
	if n != 2 {
		t.Errorf("%d units after Drop, want 2 kept", n)
	}
}

// A unit assigned on one replica is sticky on another.
func TestStickyAcrossReplicas(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	a, b := openDB(t, url), openDB(t, url)
	a.Put("exp", "u1", "ml", 2)
	a.sticky.close() // flushes
	if v, ph, ok := b.Get("exp", "u1"); !ok || v != "ml" || ph != 2 {
		t.Errorf("replica b: sticky = %q %d %v", v, ph, ok)
	}
}
