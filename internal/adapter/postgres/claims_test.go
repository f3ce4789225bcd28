package postgres

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/testkit/pgtest"
)

// holder answers claims with the ids it holds, and records what it was
// asked.
type holder struct {
	mu    sync.Mutex
	has   map[[16]byte]bool
	asked int
}

func (h *holder) answer(ids [][16]byte) [][16]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked++
	var held [][16]byte
	for _, id := range ids {
		if h.has[id] {
			held = append(held, id)
		}
	}
	return held
}

// Replica A claims three ids: B holds one, C another, and A hears from
// both. With C no longer answering but still connected, A waits its
// bound and names C; a replica that starts answering later answers the
// rounds of the last minute on its first sync.
func TestClaimTraces(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx := context.Background()
	id := func(b byte) [16]byte { return [16]byte{b} }
	a := openDB(t, url, AsReplica("a"))
	hs := map[string]*holder{"b": {has: map[[16]byte]bool{id(1): true}}, "c": {has: map[[16]byte]bool{id(2): true}}}
	stop := map[string]context.CancelFunc{}
	answer := func(name string) {
		db := openDB(t, url, AsReplica(name))
		actx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		stop[name] = func() { cancel(); <-done }
		t.Cleanup(stop[name])
		go func() {
			defer close(done)
			db.AnswerClaims(actx, name, hs[name].answer, func(err error) { t.Error(err) })
		}()
	}
	answer("b")
	answer("c")
	openDB(t, url) // not a replica: not waited for
	ids := [][16]byte{id(1), id(2), id(3)}
	var (
		held    map[[16]byte]bool
		missing []string
		err     error
	)
	// The answerers start listening in the background: until they answer,
	// a claim may wait its bound; both answer the round once listening.
	held, missing, err = a.ClaimTraces(ctx, "a", ids, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 0 || len(held) != 2 || !held[id(1)] || !held[id(2)] {
		t.Fatalf("held %v, missing %v; want ids 1 and 2 held, everyone answering", held, missing)
	}

	stop["c"]() // c stops answering; its store stays open
	stop["c"] = func() {}
	start := time.Now()
	held, missing, err = a.ClaimTraces(ctx, "a", ids, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(missing, []string{"c"}) || len(held) != 1 || !held[id(1)] || time.Since(start) < 300*time.Millisecond {
		t.Errorf("with c silent: held %v, missing %v after %v; want id 1, c missing after 300ms", held, missing, time.Since(start))
	}
	hs["d"] = &holder{has: map[[16]byte]bool{id(3): true}}
	answer("d") // answers both rounds on its first sync
	deadline := time.Now().Add(5 * time.Second)
	for {
		hs["d"].mu.Lock()
		asked := hs["d"].asked
		hs["d"].mu.Unlock()
		if asked == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("d answered %d rounds, want 2", asked)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Replicas of another database on the same server (another abmesh
// deployment, or staging beside production) are not replicas of this
// one: a claim does not wait for them, nor names them as missing.
func TestClaimIgnoresOtherDatabases(t *testing.T) {
	srv := pgtest.Start(t)
	url, other := srv.NewDatabase(t), srv.NewDatabase(t)
	ctx := context.Background()
	a := openDB(t, url, AsReplica("a"))
	openDB(t, other, AsReplica("x")) // never answers this database's claims
	b := openDB(t, url, AsReplica("b"))
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	h := &holder{has: map[[16]byte]bool{{1}: true}}
	go func() {
		defer close(done)
		b.AnswerClaims(actx, "b", h.answer, func(err error) { t.Error(err) })
	}()
	start := time.Now()
	held, missing, err := a.ClaimTraces(ctx, "a", [][16]byte{{1}, {2}}, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 0 || len(held) != 1 || !held[[16]byte{1}] {
		t.Errorf("held %v, missing %v after %v; want id 1 held by b, no replica missing", held, missing, time.Since(start))
	}
}
