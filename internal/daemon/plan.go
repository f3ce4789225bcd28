package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/abmesh/abmesh/internal/adapter/postgres"
	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// With a PostgreSQL store one replica, the leader, opens the analysis
// windows and the others adopt them (docs/scaling.md, "Leader"):
//
//   - The leader's Subsetter admits edges from the merged service graph
//     of every replica (mergedEdges) and hands its views to its Windows
//     (planSink), which open windows as one node's would; after each
//     change the leader publishes a windowPlan (postgres.DB.PublishPlan,
//     in its leader term).
//   - A follower's Subsetter has no sink: it computes subsets from the
//     leader's admitted edges only. On every notification of a new plan
//     (and once at start, before Windows.Restore) it adopts the latest
//     plan (Windows.Adopt).
//   - A replica that becomes leader takes a new term (fencing the old
//     leader's writes), adopts the latest plan, and only then gives its
//     Subsetter the sink: its first views keep the adopted windows, and
//     its next windows are numbered after the plan's (after every stored
//     window's, when the database has no plan yet).
//
// With bbolt the one process opens its windows itself, as always.

// windowPlan is the leader's plan as stored (postgres.Plan.Body): the
// windows every replica counts into, the traced edges the leader admitted
// (followers' subsets use them), and the configuration version the leader
// had (a follower behind it reloads first).
type windowPlan struct {
	ConfigVersion uint64            `json:"config_version"`
	Windows       subset.WindowPlan `json:"windows"`
	Edges         []tracing.Edge    `json:"edges"`
}

// planSink is the leader's view sink: it rolls the windows and wakes the
// plan publisher.
type planSink struct {
	windows *subset.Windows
	changed chan struct{}
}

// SetViews implements subset.ViewSink.
func (s planSink) SetViews(now time.Time, views []subset.View) {
	s.windows.SetViews(now, views)
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// opensWindows reports whether this replica's own Subsetter opens its
// windows: always with bbolt, while it leads with PostgreSQL.
func (d *Daemon) opensWindows() bool { return d.pg == nil || d.opens.Load() }

// followPlan adopts the latest stored plan unless this replica opens its
// windows itself or has adopted that generation already.
func (d *Daemon) followPlan(ctx context.Context) error {
	d.planMu.Lock()
	defer d.planMu.Unlock()
	if d.opens.Load() {
		return nil
	}
	p, err := d.pg.LoadPlan(ctx)
	if err != nil {
		return err
	}
	return d.adoptLocked(ctx, p)
}

// adoptLocked adopts plan p when it is newer than the last adopted one:
// the registry catches up with the plan's configuration first, the
// Subsetter takes its edges, the Windows its windows. Called with
// d.planMu held.
func (d *Daemon) adoptLocked(ctx context.Context, p postgres.Plan) error {
	if p.Body == nil || p.Generation <= d.planGen.Load() {
		return nil
	}
	var wp windowPlan
	if err := json.Unmarshal(p.Body, &wp); err != nil {
		return fmt.Errorf("window plan generation %d: %w", p.Generation, err)
	}
	if d.registry.Version() < wp.ConfigVersion {
		if err := d.registry.Reload(ctx); err != nil {
			return fmt.Errorf("reload config version %d of window plan generation %d: %w", wp.ConfigVersion, p.Generation, err)
		}
	}
	if err := d.subsetter.SetAdmitted(wp.Edges); err != nil {
		return fmt.Errorf("window plan generation %d: %w", p.Generation, err)
	}
	d.windows.Adopt(time.Now(), wp.Windows)
	d.planGen.Store(p.Generation)
	return nil
}

// followLeader adopts every plan the leader publishes, until Stop.
func (d *Daemon) followLeader() {
	if d.pg == nil {
		return
	}
	d.loop(func() {
		d.pg.Listen(d.life, postgres.PlanChannel, func(ctx context.Context) {
			if err := d.followPlan(ctx); err != nil && ctx.Err() == nil {
				d.log.Error("adopt the leader's window plan", "err", err)
			}
		})
	})
}

// leadWindows is the leader's window work, until ctx ends or another
// replica takes a newer term: take the term, adopt the latest plan, open
// windows from this replica's Subsetter and publish each change. On
// return the replica follows again, from the latest stored plan
// (stepDown).
func (d *Daemon) leadWindows(ctx context.Context, tick <-chan time.Time) {
	changed := make(chan struct{}, 1)
	term, err := d.takeWindows(ctx, changed)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("take over the analysis windows", "err", err)
		}
		return
	}
	defer d.stepDown()
	d.refreshGraph()
	var last []byte
	for {
		body, err := json.Marshal(windowPlan{ConfigVersion: d.registry.Version(), Windows: d.windows.Plan(), Edges: d.subsetter.Admitted()})
		if err == nil && !bytes.Equal(body, last) {
			var gen int64
			gen, err = d.pg.PublishPlan(ctx, term, body)
			if errors.Is(err, postgres.ErrDeposed) {
				d.log.Warn("another replica took over the analysis windows", "err", err)
				return
			}
			if err == nil {
				last = body
				d.planGen.Store(gen)
			}
		}
		if err != nil && ctx.Err() == nil {
			d.log.Error("publish the window plan", "err", err) // retried at the next tick
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick:
		}
	}
}

// stepDown makes a replica that led follow again: its Subsetter loses the
// sink, and it adopts the latest stored plan at once. A newer leader's
// plan notified while this replica still led was skipped (followPlan does
// nothing while it opens windows), and that leader may publish no other
// until its subsets change; without this the replica would count into its
// own windows until then.
func (d *Daemon) stepDown() {
	d.planMu.Lock()
	d.subsetter.SetSink(nil)
	d.opens.Store(false)
	d.planMu.Unlock()
	ctx, cancel := context.WithTimeout(d.life, 10*time.Second)
	defer cancel()
	if err := d.followPlan(ctx); err != nil && ctx.Err() == nil {
		// The plan listener's next notification or resync retries.
		d.log.Error("adopt the leader's window plan", "err", err)
	}
}

// takeWindows starts a leader term, adopts the plan current at that
// term and gives the Subsetter the sink that opens windows and signals
// changed.
func (d *Daemon) takeWindows(ctx context.Context, changed chan struct{}) (int64, error) {
	d.planMu.Lock()
	defer d.planMu.Unlock()
	p, err := d.pg.TakeTerm(ctx, d.replica)
	if err != nil {
		return 0, err
	}
	if err := d.adoptLocked(ctx, p); err != nil {
		return 0, err
	}
	if p.Body == nil {
		// The first plan of this database: replicas that opened windows
		// themselves (before the plan) may have stored other members under
		// the seqs this replica would give; number after all of them.
		seqs, err := d.win.(postgres.Windows).MaxSeqs(ctx)
		if err != nil {
			return 0, err
		}
		d.windows.Adopt(time.Now(), subset.WindowPlan{LastSeq: seqs})
	}
	d.opens.Store(true)
	d.subsetter.SetSink(planSink{d.windows, changed})
	return p.Term, nil
}

// mergedEdges returns the service graph's edges over every replica: this
// replica's live graph plus the graphs the others stored at their last
// flush (blobs graph/REPLICA-ID), calls summed, so that the leader admits
// edges on the total traffic as one node would.
func (d *Daemon) mergedEdges(ctx context.Context) ([]tracing.Edge, error) {
	g, err := tracing.NewGraph(tracing.GraphConfig{Window: d.cfg.GraphWindow})
	if err != nil {
		return nil, err
	}
	own, err := d.graph.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if err := g.UnmarshalJSON(own); err != nil {
		return nil, err
	}
	blobs, err := d.pg.Blobs(ctx, graphBlob+"/")
	if err != nil {
		return nil, err
	}
	for name, b := range blobs {
		if name == d.blobName(graphBlob) {
			continue
		}
		if err := g.UnmarshalJSON(b); err != nil {
			d.log.Warn("a replica's stored service graph is unreadable; left out", "blob", name, "err", err)
		}
	}
	return g.Snapshot().Edges, nil
}
