package postgres

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/testkit/pgtest"
)

// Two replicas take terms in turn: only the newest term publishes (an old
// leader's write is ErrDeposed and changes nothing), every plan reaches
// a listener on PlanChannel, and a plan reads back byte for byte.
func TestPlanTermsFenceOldLeaders(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := openDB(t, url), openDB(t, url)
	if p, err := a.LoadPlan(ctx); err != nil || p.Body != nil || p.Generation != 0 {
		t.Fatalf("plan before the first = %+v, %v; want none", p, err)
	}
	heard := make(chan int64, 16)
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	listening := make(chan struct{})
	go b.Listen(lctx, PlanChannel, func(ctx context.Context) {
		p, err := b.LoadPlan(ctx)
		if err == nil && p.Generation == 0 {
			close(listening)
		}
		if err == nil && p.Generation > 0 {
			heard <- p.Generation
		}
	})
	<-listening

	ta, err := a.TakeTerm(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	body := `{"active":[{"viewpoint":"x\\n\u00e9","seq":3}]}`
	if g, err := a.PublishPlan(ctx, ta.Term, []byte(body)); err != nil || g != 1 {
		t.Fatalf("publish = %d, %v; want generation 1", g, err)
	}
	tb, err := b.TakeTerm(ctx, "b")
	if err != nil || tb.Term != ta.Term+1 || string(tb.Body) != body || tb.Generation != 1 {
		t.Fatalf("b takes the term: %+v, %v; want term %d with a's plan", tb, err, ta.Term+1)
	}
	if _, err := a.PublishPlan(ctx, ta.Term, []byte(`{"active":[]}`)); !errors.Is(err, ErrDeposed) {
		t.Fatalf("the old leader publishes: err = %v, want ErrDeposed", err)
	}
	if g, err := b.PublishPlan(ctx, tb.Term, []byte(`{"active":[]}`)); err != nil || g != 2 {
		t.Fatalf("the new leader publishes: %d, %v", g, err)
	}
	p, err := a.LoadPlan(ctx)
	if err != nil || p.Leader != "b" || p.Generation != 2 || string(p.Body) != `{"active":[]}` {
		t.Fatalf("plan = %+v (%s), %v", p, p.Body, err)
	}
	for want := int64(1); want <= 2; want++ {
		select {
		case g := <-heard:
			if g > want {
				want = g // coalesced
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no notification of generation %d", want)
		}
	}
}

// Blobs returns the blobs of a prefix only.
func TestBlobsByPrefix(t *testing.T) {
	d := openDB(t, pgtest.Start(t).NewDatabase(t))
	for i, name := range []string{"graph/r1", "graph/r2", "graphs", "wal/checkpoint/r1"} {
		if err := d.PutBlob(name, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	got, err := d.Blobs(context.Background(), "graph/")
	if err != nil || len(got) != 2 || string(got["graph/r1"]) != "0" || string(got["graph/r2"]) != "1" {
		t.Fatalf("Blobs(graph/) = %q, %v", got, err)
	}
}
