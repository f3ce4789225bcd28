package bolt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/subset"
)

func TestStateSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	exp := assign.Experiment{
		ID: "rec-model", ChangeService: "recommendation", MeasureService: "frontend",
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "ml", Weight: 1}},
		Status:   assign.StatusRunning, Phase: 2,
		Phases: []assign.Phase{{Number: 1, Weights: []uint32{1, 1}}, {Number: 2, Weights: []uint32{1, 3}, StartedAt: time.Unix(100, 0).UTC()}},
		Emits:  []assign.Interference{{Kind: "latency", Scope: "change_downstream"}},
	}
	ch := assign.Change{
		Version:        7,
		PutExperiments: []assign.Experiment{exp, {ID: "gone"}},
		PutLayers:      []assign.Layer{{ID: "checkout"}},
		PutOverrides:   []assign.Override{{Experiment: "rec-model", Unit: "u1", Variant: "ml"}, {Experiment: "rec-model", Unit: "u2", Variant: "ml"}},
	}
	if err := d.Apply(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(ctx, assign.Change{Version: 8, DeleteExperiments: []string{"gone"}, DeleteOverrides: []assign.Override{{Experiment: "rec-model", Unit: "u2"}}}); err != nil {
		t.Fatal(err)
	}
	d.Put("rec-model", "u9", "ml", 2)
	if err := d.PutBlob("graph", []byte(`{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := d.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 8 {
		t.Errorf("version = %d, want 8", c.Version)
	}
	if len(c.Experiments) != 1 || c.Experiments[0].ID != "rec-model" || c.Experiments[0].Phase != 2 || len(c.Experiments[0].Phases) != 2 ||
		!c.Experiments[0].Phases[1].StartedAt.Equal(time.Unix(100, 0)) || c.Experiments[0].Emits[0].Scope != "change_downstream" {
		t.Errorf("experiments = %+v", c.Experiments)
	}
	if len(c.Layers) != 1 || len(c.Overrides) != 1 || c.Overrides[0].Unit != "u1" {
		t.Errorf("layers %+v overrides %+v", c.Layers, c.Overrides)
	}
	if v, ph, ok := d.Get("rec-model", "u9"); !ok || v != "ml" || ph != 2 {
		t.Errorf("sticky = %q %d %v", v, ph, ok)
	}
	if b, err := d.GetBlob("graph"); err != nil || string(b) != `{"x":1}` {
		t.Errorf("blob = %q, %v", b, err)
	}
	if _, err := d.GetBlob("nope"); !errors.Is(err, ErrNoBlob) {
		t.Errorf("missing blob err = %v", err)
	}
	d.DeleteTest("rec-model")
	if _, _, ok := d.Get("rec-model", "u9"); ok {
		t.Error("sticky entry survived DeleteTest")
	}
}

func TestOpenFailsOnBadDir(t *testing.T) {
	if _, err := Open("/proc/definitely/not/here"); err == nil {
		t.Fatal("want error")
	}
}

// openWindows opens a store in a temporary directory, closed at the end
// of the test, and returns its window store.
func openWindows(t *testing.T) Windows {
	t.Helper()
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d.Windows()
}

func TestWindowsRoundTrip(t *testing.T) {
	ws := openWindows(t)
	ctx := context.Background()
	w := subset.WindowCells{Viewpoint: "rec", Seq: 2, Metric: "latency_ms",
		Members: []subset.WindowMember{{Test: "rec", Phase: 1, Variants: []string{"control", "ml"}}},
		Cells:   []subset.Cell{{Variants: []int{1}, Stats: analysis.CellStats{N: 3, Mean: 2.5, M2: 1}}}}
	if err := ws.SaveWindow(ctx, w, subset.UnitChanges{}); err != nil {
		t.Fatal(err)
	}
	w.Cells[0].Stats.N = 4 // a later flush replaces the stored window
	if err := ws.SaveWindow(ctx, w, subset.UnitChanges{}); err != nil {
		t.Fatal(err)
	}
	if err := ws.SaveWindow(ctx, subset.WindowCells{Viewpoint: "ui", Seq: 1}, subset.UnitChanges{}); err != nil {
		t.Fatal(err)
	}
	got, err := ws.LoadWindows(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Viewpoint != "rec" || got[0].Cells[0].Stats.N != 4 || got[0].Cells[0].Stats.Mean != 2.5 || got[1].Viewpoint != "ui" {
		t.Fatalf("windows = %+v", got)
	}
}

func TestWindowUnitsRoundTrip(t *testing.T) {
	ws := openWindows(t)
	ctx := context.Background()
	w := subset.WindowCells{Viewpoint: "rec", Seq: 3}
	load := func() map[uint64]subset.UnitState {
		t.Helper()
		got := map[uint64]subset.UnitState{}
		if err := ws.LoadUnits(ctx, "rec", 3, func(u subset.UnitState) error { got[u.Key] = u; return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	a := subset.UnitState{Key: 1 << 63, Cell: 5, Sum: -2.25, Requests: 3, NonZero: true}
	b := subset.UnitState{Key: 7, Cell: 0, Sum: 0, Requests: 1}
	if err := ws.SaveWindow(ctx, w, subset.UnitChanges{Put: []subset.UnitState{a, b}}); err != nil {
		t.Fatal(err)
	}
	a.Sum, a.Requests = 4.5, 4 // a later save replaces a unit's totals
	if err := ws.SaveWindow(ctx, w, subset.UnitChanges{Put: []subset.UnitState{a}}); err != nil {
		t.Fatal(err)
	}
	if got := load(); len(got) != 2 || got[a.Key] != a || got[b.Key] != b {
		t.Fatalf("units = %+v", got)
	}
	if err := ws.SaveWindow(ctx, w, subset.UnitChanges{Drop: true}); err != nil {
		t.Fatal(err)
	}
	if got := load(); len(got) != 0 {
		t.Fatalf("after drop: %+v", got)
	}
}

func TestSecondOpenNamesTheCause(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second open: %v", err)
	}
}

// BenchmarkSaveMillionUnits: one flush of a window whose million units
// all changed, into a real store file.
func BenchmarkSaveMillionUnits(b *testing.B) {
	d, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	units := make([]subset.UnitState, 1_000_000)
	for i := range units {
		units[i] = subset.UnitState{Key: subset.UnitKey(fmt.Sprint("user-", i)), Cell: uint64(i % 4), Sum: float64(i), Requests: 3}
	}
	w := subset.WindowCells{Viewpoint: "rec", Seq: 1}
	for b.Loop() {
		if err := d.Windows().SaveWindow(context.Background(), w, subset.UnitChanges{Put: units}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(units)), "ns/unit")
}

// TestAuditLogSurvivesReopen: the audit entries the Registry writes with
// its changes are read back, newest first and paged, after the store is
// closed and opened again, and numbering continues from there.
func TestAuditLogSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := assign.WithActor(context.Background(), assign.Actor{Kind: assign.ActorDeclared, Name: "alice", Peer: "127.0.0.1:1"})
	exp := &assign.Experiment{ID: "rec-model", ChangeService: "s", MeasureService: "s",
		Variants: []assign.Variant{{Name: "control", Weight: 1}, {Name: "ml", Weight: 1}}, Plan: assign.Plan{MDE: 1}}
	reg := func(d *DB) *assign.Registry {
		r, err := assign.NewRegistry(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := reg(d)
	if _, err := r.Create(ctx, exp); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(ctx, "rec-model"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetOverride(ctx, assign.Override{Experiment: "rec-model", Unit: "u1", Variant: "ml"}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if d, err = Open(dir); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	r = reg(d)
	if _, err := r.Pause(ctx, "rec-model"); err != nil {
		t.Fatal(err)
	}
	all, err := r.Changes(ctx, assign.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range all {
		got = append(got, fmt.Sprintf("%d %s %s v%d %s", e.Seq, e.Action, e.Name, e.Version, e.Actor))
	}
	want := "[4 experiment.pause rec-model v4 alice@127.0.0.1:1 3 override.set rec-model/u1 v3 alice@127.0.0.1:1 " +
		"2 experiment.start rec-model v2 alice@127.0.0.1:1 1 experiment.create rec-model v1 alice@127.0.0.1:1]"
	if fmt.Sprint(got) != want {
		t.Errorf("log after reopen:\n%v\nwant\n%s", got, want)
	}
	if string(all[3].Before) != "" || !strings.Contains(string(all[3].After), `"ID":"rec-model"`) {
		t.Errorf("create entry: before %s, after %s", all[3].Before, all[3].After)
	}
	for _, c := range []struct {
		q    assign.AuditQuery
		want []uint64
	}{
		{assign.AuditQuery{Before: 4, Limit: 2}, []uint64{3, 2}},
		{assign.AuditQuery{Before: 2}, []uint64{1}},
		{assign.AuditQuery{Before: 99, Limit: 1}, []uint64{4}},
		{assign.AuditQuery{Kind: assign.AuditOverride}, []uint64{3}},
		{assign.AuditQuery{Name: "rec-model", Kind: assign.AuditExperiment, Before: 4}, []uint64{2, 1}},
	} {
		es, err := d.Changes(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, e := range es {
			seqs = append(seqs, e.Seq)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(c.want) {
			t.Errorf("%+v: seqs %v, want %v", c.q, seqs, c.want)
		}
	}
}
