package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/adapter/postgres"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/otlproute"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	"github.com/abmesh/abmesh/internal/testkit/pgtest"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// minEdgeCalls is the edge admission threshold of the plan tests.
const minEdgeCalls = 12

// planTests are two experiments whose subsets depend on the edge
// web → cart: a (at web) is susceptible to latency downstream of web, b
// emits latency at cart, so b joins a's subset once the edge is admitted.
func planTests() []assign.Experiment {
	a := orderValueTest("a")
	a.Susceptible = []assign.Interference{{Kind: subset.KindLatency, Scope: string(subset.ScopeMeasureDownstream)}}
	b := orderValueTest("b")
	b.ChangeService = "cart"
	b.Emits = []assign.Interference{{Kind: subset.KindLatency, Scope: string(subset.ScopeChange)}}
	return []assign.Experiment{a, b}
}

// checkout sends one trace of unit: a web server span (a's exposure, the
// metric) calling a cart span (b's exposure), routed by trace id.
func checkout(t *testing.T, web, cart trace.Tracer, eng *assign.Engine, unit string, value float64) trace.TraceID {
	ctx, span := web.Start(context.Background(), "GET /checkout", trace.WithSpanKind(trace.SpanKindServer))
	expose(t, span, eng, "a", unit)
	_, call := cart.Start(ctx, "POST /cart", trace.WithSpanKind(trace.SpanKindServer))
	expose(t, call, eng, "b", unit)
	call.End()
	span.SetAttributes(attribute.Float64("order.value", value))
	span.End()
	return span.SpanContext().TraceID()
}

// replicaOf is the replica the routing sends trace id to.
func replicaOf(id trace.TraceID, n int) int { return otlproute.Pick(id[:], n) }

// windowIdentity is what must be the same on every replica: each
// viewpoint's current window's seq, start, opening time and members.
// (Closed windows are listed only where they counted something.)
func windowIdentity(d *daemon.Daemon, viewpoints ...string) string {
	var out string
	for _, vp := range viewpoints {
		w, ok := d.Windows().Current(vp)
		out += fmt.Sprintf("%s %v #%d start=%s opened=%s members=%v\n", vp, ok, w.Seq, w.Start.UTC().Format(time.RFC3339Nano),
			w.Opened.UTC().Format(time.RFC3339Nano), memberNames(w.Members))
	}
	return out
}

func memberNames(ms []subset.WindowMember) []string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s@%d%v", m.Test, m.Phase, m.Variants))
	}
	return out
}

// Three replicas receive traces routed by trace id, so each sees a third
// of the calls web → cart: fewer than the admission threshold on every
// replica, more in total. The leader admits the edge from the replicas'
// merged graph, as the single node does from all traces, and every
// replica adopts the window it opens (a's subset gains b): every replica
// ends with the same windows, and its reports equal the single node's to
// 1e-9.
func TestReplicasOpenTheLeadersWindows(t *testing.T) {
	graph := func(c *daemon.Config) {
		c.MinEdgeCalls = minEdgeCalls
		c.GraphRefresh = 200 * time.Millisecond
		// A trace's two spans are exported one by one: under load the
		// second may come long after the first.
		c.Assembly.IdleTimeout = 2 * time.Second
	}
	rs := startReplicaSet(t, pgtest.Start(t).NewDatabase(t), 3, graph)
	rs.createStarted(planTests()...)
	eng := rs.reps[0].Registry().Snapshot()
	web, cart := rs.tracer("web"), rs.tracer("cart")
	members := func(d *daemon.Daemon) int {
		w, _ := d.Windows().Current("a")
		return len(w.Members)
	}
	for i, d := range append([]*daemon.Daemon{rs.single}, rs.reps...) {
		testkit.Eventually(t, fmt.Sprintf("node %d's window of a (1 member)", i), func() bool { return members(d) == 1 })
	}

	// Calls web → cart: minEdgeCalls in total, fewer on every replica.
	rng := rand.New(rand.NewPCG(14, 3))
	perReplica := make([]int, len(rs.reps))
	for i := range minEdgeCalls {
		id := checkout(t, web, cart, eng, fmt.Sprintf("warm-%d", i), 20+80*rng.Float64())
		perReplica[replicaOf(id, len(rs.reps))]++
	}
	if slices.Max(perReplica) >= minEdgeCalls {
		t.Fatalf("calls per replica %v: one replica alone reaches the threshold %d", perReplica, minEdgeCalls)
	}
	testkit.Eventually(t, "the single node admitting web → cart (a's window with 2 members)", func() bool { return members(rs.single) == 2 })
	for i, d := range rs.reps {
		testkit.Eventually(t, fmt.Sprintf("replica %d's window of a with 2 members (calls per replica %v)", i+1, perReplica),
			func() bool { return members(d) == 2 })
	}

	total := 0
	for u := range 150 {
		unit := fmt.Sprintf("user-%d", u)
		for range 1 + rng.IntN(4) {
			checkout(t, web, cart, eng, unit, 20+80*rng.Float64())
			total++
		}
	}
	shares := rs.waitCounted("a", int64(total))
	want := windowIdentity(rs.reps[0], "a", "b")
	for i, d := range rs.reps[1:] {
		if got := windowIdentity(d, "a", "b"); got != want {
			t.Errorf("replica %d's windows:\n%s\nreplica 1's:\n%s", i+2, got, want)
		}
	}
	subsetOf := func(d *daemon.Daemon) string {
		sub, _ := d.Subsetter().Subset("a")
		return fmt.Sprint(sub.Members)
	}
	for i, d := range rs.reps {
		if got, want := subsetOf(d), subsetOf(rs.single); got != want {
			t.Errorf("replica %d's subset of a (GetSubsets) is %s, the single node's %s", i+1, got, want)
		}
	}
	if w, _ := rs.reps[0].Windows().Current("a"); w.Seq != 2 {
		t.Errorf("a's current window is #%d, want #2 (the single node's: the window with b)", w.Seq)
	}
	rs.compareReports([]string{"a"}, int64(total), 150)
	t.Logf("web → cart calls per replica %v (threshold %d); %d traces of 150 units split %v; windows:\n%s", perReplica, minEdgeCalls, total, shares, want)
}

// The leader of three replicas stops. Another leads, takes a new term and
// keeps the windows it had adopted (same seq, start and opening time on
// every survivor); a test started afterwards joins a's subset, and every
// survivor counts into the window the new leader opened next: a#2.
func TestLeaderHandOverContinuesWindowSeq(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fast := func(c *daemon.Config) { c.FlushInterval, c.GraphRefresh = 100*time.Millisecond, 200*time.Millisecond }
	var reps []*daemon.Daemon
	for range 3 {
		reps = append(reps, daemontest.Start(t, daemontest.Store(url), fast))
	}
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := planTests()[0]
	daemontest.CreateStarted(t, reps[0].Registry(), &a)
	agreed := func(ds []*daemon.Daemon, what string, cond func(w subset.WindowCells) bool) string {
		t.Helper()
		var id string
		testkit.Eventually(t, what, func() bool {
			id = windowIdentity(ds[0], "a")
			for _, d := range ds {
				w, ok := d.Windows().Current("a")
				if !ok || !cond(w) || windowIdentity(d, "a") != id {
					return false
				}
			}
			return true
		})
		return id
	}
	before := agreed(reps, "every replica in window a#1", func(w subset.WindowCells) bool { return w.Seq == 1 })
	var leader int
	testkit.Eventually(t, "one leader", func() bool {
		n := 0
		for i, d := range reps {
			if d.Leads() {
				n, leader = n+1, i
			}
		}
		return n == 1
	})
	old, err := db.LoadPlan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	reps[leader].Stop()
	survivors := slices.Delete(slices.Clone(reps), leader, leader+1)
	var plan postgres.Plan
	testkit.Eventually(t, "a new leader publishing its plan", func() bool {
		plan, err = db.LoadPlan(ctx)
		return err == nil && plan.Term > old.Term && plan.Generation > old.Generation
	})
	t.Logf("replica %d stopped; a new leader published generation %d of term %d after %v", leader+1, plan.Generation, plan.Term, time.Since(stopped))
	if after := agreed(survivors, "the survivors' windows", func(subset.WindowCells) bool { return true }); after != before {
		t.Fatalf("the windows changed with the leader:\n%s\nwere:\n%s", after, before)
	}

	c := orderValueTest("c")
	c.Emits = []assign.Interference{{Kind: subset.KindLatency, Scope: string(subset.ScopeChange)}}
	started := time.Now()
	daemontest.CreateStarted(t, survivors[0].Registry(), &c)
	next := agreed(survivors, "every survivor in a#2 with c", func(w subset.WindowCells) bool {
		return w.Seq == 2 && len(w.Members) == 2 && w.Members[1].Test == "c"
	})
	t.Logf("c created and started on a survivor; every survivor in a#2 after %v; windows:\n%s", time.Since(started), next)
}

// A follower restarts on its data directory: it adopts the stored plan
// before restoring its windows, so it resumes its part of the planned
// window (same seq, its counts kept); restarted after the plan moved on
// (a test started meanwhile), it counts into the leader's new window and
// keeps the old one closed with its counts, without renumbering.
func TestFollowerRestartAdoptsThePlan(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	fast := func(c *daemon.Config) {
		c.FlushInterval, c.GraphRefresh = 100*time.Millisecond, 200*time.Millisecond
		c.Assembly = tracing.Config{IdleTimeout: 200 * time.Millisecond}
	}
	leader := daemontest.Start(t, daemontest.Store(url), fast)
	testkit.Eventually(t, "replica 1 leading", leader.Leads)
	dir := t.TempDir()
	follower := daemontest.Start(t, daemontest.Store(url), daemontest.DataDir(dir), daemontest.OTLP(), fast)
	a := planTests()[0]
	daemontest.CreateStarted(t, leader.Registry(), &a)
	current := func(d *daemon.Daemon) subset.WindowCells { w, _ := d.Windows().Current("a"); return w }
	testkit.Eventually(t, "the follower in a#1", func() bool { return current(follower).Seq == 1 })

	eng := leader.Registry().Snapshot()
	send := func(d *daemon.Daemon, n int) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(otlpExporter(t, d.OTLPAddr())),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "web"))))
		defer tp.Shutdown(context.Background())
		for i := range n {
			_, span := tp.Tracer("t").Start(context.Background(), "GET /checkout", trace.WithSpanKind(trace.SpanKindServer))
			expose(t, span, eng, "a", fmt.Sprintf("user-%d", i))
			span.SetAttributes(attribute.Float64("order.value", float64(i)))
			span.End()
		}
	}
	send(follower, 5)
	testkit.Eventually(t, "5 counted in a#1", func() bool { return current(follower).Quality.Counted == 5 })
	follower.Stop()
	follower = daemontest.Start(t, daemontest.Store(url), daemontest.DataDir(dir), daemontest.OTLP(), fast)
	if w := current(follower); w.Seq != 1 || w.Quality.Counted != 5 || w.Start != current(leader).Start {
		t.Fatalf("restarted on the same plan: a#%d counted %d, start %v; want a#1 resumed with 5, start %v", w.Seq, w.Quality.Counted, w.Start, current(leader).Start)
	}
	send(follower, 3)
	testkit.Eventually(t, "8 counted in a#1", func() bool { return current(follower).Quality.Counted == 8 })

	follower.Stop()
	c := orderValueTest("c")
	c.Emits = []assign.Interference{{Kind: subset.KindLatency, Scope: string(subset.ScopeChange)}}
	daemontest.CreateStarted(t, leader.Registry(), &c)
	testkit.Eventually(t, "the leader in a#2", func() bool { return current(leader).Seq == 2 })
	follower = daemontest.Start(t, daemontest.Store(url), daemontest.DataDir(dir), daemontest.OTLP(), fast)
	// The leader may publish a#2 just after the restart read the plan:
	// then the follower adopts it on the notification.
	testkit.Eventually(t, "the restarted follower in the leader's windows", func() bool {
		return windowIdentity(follower, "a", "c") == windowIdentity(leader, "a", "c")
	})
	if ws := follower.Windows().List("a"); len(ws) != 2 || ws[0].Seq != 1 || ws[0].Open() || ws[0].Quality.Counted != 8 {
		t.Errorf("a's windows on the restarted follower: %+v; want #1 closed with its 8 requests, then #2", ws)
	}
}

// Replicas upgraded from opening windows themselves find windows stored
// without a plan: the first leader numbers its windows after every stored
// seq, so no window of the plan shares (viewpoint, seq) with one of other
// members.
func TestFirstPlanNumbersAfterStoredWindows(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	old := subset.WindowCells{Viewpoint: "a", Seq: 3, Start: time.Now(), MeasureService: "web", Metric: "x",
		Members: []subset.WindowMember{{Test: "a", Phase: 1, Variants: []string{"off", "on"}}}}
	if err := db.Windows("before-the-plan").SaveWindow(ctx, old, subset.UnitChanges{}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	var reps []*daemon.Daemon
	for range 2 {
		reps = append(reps, daemontest.Start(t, daemontest.Store(url)))
	}
	a := planTests()[0]
	daemontest.CreateStarted(t, reps[0].Registry(), &a)
	for i, d := range reps {
		testkit.Eventually(t, fmt.Sprintf("replica %d in a#4", i+1), func() bool {
			w, _ := d.Windows().Current("a")
			return w.Seq == 4
		})
	}
}

// The leader's lock session is ended by the server, and another leader
// (here the test, queued on the lock) takes the lock and a new term at
// once and publishes a plan in which a's window is a#2: its notification
// reaches the old leader before the old leader notices that it lost the
// lock (it checks every 0.5 s). Once it notices, the old leader follows
// that plan; it must not keep its own windows until a next plan.
func TestDeposedLeaderAdoptsTheNewPlan(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := daemontest.Start(t, daemontest.Store(url))
	testkit.Eventually(t, "the replica leading", d.Leads)
	a := planTests()[0]
	daemontest.CreateStarted(t, d.Registry(), &a)
	current := func() subset.WindowCells { w, _ := d.Windows().Current("a"); return w }
	testkit.Eventually(t, "a#1", func() bool { return current().Seq == 1 })
	db, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var wp struct {
		ConfigVersion uint64            `json:"config_version"`
		Windows       subset.WindowPlan `json:"windows"`
		Edges         json.RawMessage   `json:"edges"`
	}
	testkit.Eventually(t, "a#1 in the published plan", func() bool {
		p, err := db.LoadPlan(ctx)
		return err == nil && p.Body != nil && json.Unmarshal(p.Body, &wp) == nil &&
			len(wp.Windows.Active) == 1 && wp.Windows.Active[0].Viewpoint == "a"
	})

	waiter, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close(context.Background())
	locked := make(chan error, 1)
	go func() {
		_, err := waiter.Exec(ctx, `SELECT pg_advisory_lock($1)`, postgres.LeaderKey)
		locked <- err
	}()
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	testkit.Eventually(t, "the test queued on the leader lock", func() bool {
		var n int
		err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&n)
		return err == nil && n == 1
	})
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted`); err != nil {
		t.Fatal(err)
	}
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
	p, err := db.TakeTerm(ctx, "the-test")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	w := &wp.Windows.Active[0]
	w.Seq, w.Start, w.Opened = 2, now, now
	wp.Windows.LastSeq = map[string]int{"a": 2}
	body, err := json.Marshal(wp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.PublishPlan(ctx, p.Term, body); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the old leader no longer leading", func() bool { return !d.Leads() })
	testkit.Eventually(t, "the old leader in the new leader's a#2", func() bool { return current().Seq == 2 })
}
