package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/testkit/pgtest"
	"github.com/abmesh/abmesh/internal/tool/killrun"
	"github.com/abmesh/abmesh/tracing/otlpload"
)

// runAsAbmeshd, set in a child's environment, makes this test binary run
// as abmeshd (main with the child's arguments) instead of the tests.
const runAsAbmeshd = "ABMESHD_TEST_RUN_AS_ABMESHD"

func TestMain(m *testing.M) {
	if os.Getenv(runAsAbmeshd) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestKill9LosesNoAcknowledgedTrace is issue 12's acceptance at small
// scale: a real abmeshd process (this binary, run as abmeshd) with a data
// directory is loaded by an OTLP exporter in this process (20k spans/s,
// retrying failed requests as OpenTelemetry's exporters do), killed with
// SIGKILL at three random moments and restarted under the load, then once
// more without load; after each restart, once every trace completed, the
// traces counted (the experiment window's seen) equal the traces
// acknowledged to the exporter.
func TestKill9LosesNoAcknowledgedTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts abmeshd four times (~30 s)")
	}
	kill9(t, killrun.Config{Kills: 3})
}

// TestKill9LosesNoAcknowledgedTraceOnPostgres is the same with the state
// in PostgreSQL (--store): the windows, the graph and the log's checkpoint
// are saved in one PostgreSQL transaction under the replica's id, and a
// restarted replica resumes its own partial windows.
func TestKill9LosesNoAcknowledgedTraceOnPostgres(t *testing.T) {
	kill9(t, killrun.Config{Kills: 2, Args: []string{"--store", pgtest.Start(t).NewDatabase(t)}})
}

// TestKill9OfReplicaCountsOnce is issue 14's kill -9 proof: three abmeshd
// replicas on one PostgreSQL, loaded by an exporter that routes each
// request by the FNV-1a hash of its trace id over the replicas that are up
// (the stand-in for the load-balancing exporter, not installed here); each
// replica in turn is killed with SIGKILL under load and stays down for
// 1 s, during which the exporter re-sends what failed there to the
// survivors, the survivors answer Assign, and an override set on one
// reaches a Watch stream on another; then it restarts on its data
// directory and replays its log. A proxy holds each replica's answers for
// 100 ms and drops them when it dies, so that most kills leave requests
// in the log unacknowledged, which the exporter re-sends to a survivor.
// After each restart the traces counted by all replicas together equal
// the traces acknowledged: none lost, none counted twice (the replicas'
// claims, --wal-claims). With ABMESH_TEST_NO_CLAIMS=1 the replicas run
// with --wal-claims=false, and the test fails: re-sent traces are counted
// twice.
func TestKill9OfReplicaCountsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts three abmeshd replicas (~40 s)")
	}
	var args []string
	if os.Getenv("ABMESH_TEST_NO_CLAIMS") == "1" {
		args = []string{"--wal-claims=false"}
	}
	rep := kill9(t, killrun.Config{Kills: 3, Replicas: 3, Store: pgtest.Start(t).NewDatabase(t), Outage: time.Second,
		AnswerDelay: 100 * time.Millisecond, Args: args})
	var moved, left, dropped int64
	for _, tr := range rep.Trials {
		moved += tr.Moved
		left += tr.HeldElsewhere
		dropped += tr.SpansClaimed
	}
	t.Logf("%d traces re-sent to a survivor after an attempt that may have reached the killed replica; %d of them left to the survivors on replay, %d re-sent spans dropped as claimed",
		moved, left, dropped)
	if moved == 0 {
		t.Error("no request was re-sent to a survivor: the test did not test the hazard")
	}
}

// kill9 runs killrun with cfg's Kills, Args and replicas under load, checks
// every trial counted exactly the traces acknowledged (and the survivors
// served), and returns the report.
func kill9(t *testing.T, cfg killrun.Config) killrun.Report {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg.Binary, cfg.Env, cfg.Dir = bin, []string{runAsAbmeshd + "=1"}, t.TempDir()
	cfg.Load = otlpload.Config{Rate: 20_000, Concurrency: 4, RequestSpans: 200}
	if cfg.AnswerDelay > 0 { // enough requests in flight for the rate
		cfg.Load.Concurrency = 4 + int(20_000/200*cfg.AnswerDelay.Seconds()*2)
	}
	cfg.MinUp, cfg.MaxUp, cfg.After = 1500*time.Millisecond, 4*time.Second, 1500*time.Millisecond
	cfg.IdleTimeout, cfg.FlushInterval = 500*time.Millisecond, 700*time.Millisecond
	cfg.Log = tlog{t}
	rep, err := killrun.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var replayed int64
	for _, tr := range rep.Trials {
		if !tr.OK() {
			t.Errorf("kill %d: %d traces acknowledged, %d counted, %d in doubt%s", tr.Kill, tr.Acked, tr.Counted, tr.InDoubt,
				map[bool]string{true: "", false: "; survivors: " + tr.Unserved}[tr.Unserved == ""])
		}
		replayed += max(tr.Replayed, 0)
	}
	// The test tests something: load was acknowledged between kills, the
	// log was replayed, and the exporter saw the kills.
	first, last := rep.Trials[0], rep.Trials[len(rep.Trials)-1]
	if first.Acked < 1000 || last.Acked <= first.Acked || replayed == 0 {
		t.Errorf("too little load: %+v", rep.Trials)
	}
	return rep
}

// tlog writes lines to the test's log.
type tlog struct{ t *testing.T }

func (l tlog) Write(p []byte) (int, error) { l.t.Log(string(p)); return len(p), nil }
