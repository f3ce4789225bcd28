package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/testkit/pgtest"
)

// leaders records which of several replicas' work runs.
type leaders struct {
	mu      sync.Mutex
	running map[int]bool
	most    int // most replicas running at once
}

func (l *leaders) work(i int) func(context.Context) {
	return func(ctx context.Context) {
		l.mu.Lock()
		l.running[i] = true
		l.most = max(l.most, len(l.running))
		l.mu.Unlock()
		<-ctx.Done()
		l.mu.Lock()
		delete(l.running, i)
		l.mu.Unlock()
	}
}

// leader waits up to 5 s for exactly one replica other than not to run
// the work, and returns it.
func (l *leaders) leader(t *testing.T, not int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		n, who := len(l.running), -1
		for i := range l.running {
			who = i
		}
		l.mu.Unlock()
		if n == 1 && who != not {
			return who
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no single leader other than %d within 5 s", not)
	return -1
}

// Three replicas contend for the advisory lock: one leads at a time; when
// the leader's session is killed by the server, or the leader closes its
// store (its process ending), another takes over within a few intervals.
func TestLeaderHandOver(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	const interval = 100 * time.Millisecond
	l := &leaders{running: map[int]bool{}}
	dbs := make([]*DB, 3)
	cancels := make([]context.CancelFunc, 3)
	var wg sync.WaitGroup
	for i := range dbs {
		dbs[i] = openDB(t, url)
		ctx, cancel := context.WithCancel(context.Background())
		cancels[i] = cancel
		wg.Go(func() { dbs[i].Lead(ctx, LeaderKey, interval, l.work(i)) })
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
		wg.Wait()
	}()
	first := l.leader(t, -1)
	time.Sleep(time.Second) // steady state: nobody else starts
	if l.most != 1 {
		t.Fatalf("%d replicas led at once", l.most)
	}

	// The server ends the leader's session (as when its host vanishes and
	// keepalive gives up).
	start := time.Now()
	if _, err := dbs[(first+1)%3].pool.Exec(context.Background(),
		`SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted`); err != nil {
		t.Fatal(err)
	}
	second := l.leader(t, first)
	t.Logf("hand-over after the leader's session was terminated: %v", time.Since(start))

	// The leader stops leading (its process exits: context canceled and
	// store closed).
	start = time.Now()
	cancels[second]()
	dbs[second].Close()
	third := l.leader(t, second)
	t.Logf("hand-over after the leader stopped: %v (replica %d → %d → %d)", time.Since(start), first, second, third)
}
