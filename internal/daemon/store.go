package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/adapter/bolt"
	"github.com/abmesh/abmesh/internal/adapter/postgres"
	"github.com/abmesh/abmesh/subset"
)

// store is what the daemon keeps: the registry's state, sticky
// assignments and named blobs, in bbolt (package bolt, the default) or in
// a PostgreSQL database shared by replicas (package postgres).
type store interface {
	assign.Store
	assign.StickyStore
	// GetBlob returns the value under name or an error wrapping
	// bolt.ErrNoBlob.
	GetBlob(name string) ([]byte, error)
	PutBlob(name string, value []byte) error
	// Path names the store in logs and status.
	Path() string
	Close() error
}

// windowStore is the store of analysis windows, able to save windows and
// blobs in one transaction.
type windowStore interface {
	subset.Store
	SaveWindows(ctx context.Context, saves []subset.WindowSave, blobs map[string][]byte) error
}

// isPostgres reports whether a --store value is a PostgreSQL URL.
func isPostgres(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// openStore opens the store --store names: PostgreSQL for a postgres://
// URL (its changes then reload the registry, see watchStore), else bbolt
// in dir.
func (d *Daemon) openStore(ctx context.Context, dir string) error {
	if isPostgres(d.cfg.Store) {
		id, err := replicaID(dir)
		if err != nil {
			return err
		}
		db, err := postgres.Open(ctx, d.cfg.Store, postgres.AsReplica(id))
		if err != nil {
			return err
		}
		d.db, d.win, d.pg, d.replica = db, db.Windows(id), db, id
		return nil
	}
	db, err := bolt.Open(dir)
	if err != nil {
		return err
	}
	d.db, d.win = db, db.Windows()
	return nil
}

// watchStore makes a PostgreSQL store's config changes, made by any
// replica, reload the registry (and so reach every Watch stream).
func (d *Daemon) watchStore() {
	if d.pg == nil {
		return
	}
	d.loop(func() {
		d.pg.Watch(d.life, func(ctx context.Context) {
			if err := d.registry.Reload(ctx); err != nil && ctx.Err() == nil {
				d.log.Error("reload config from the store", "err", err)
			}
		})
	})
}

// leaderCheck is how often a replica tries to take the leader lock, and
// how often the leader checks that its session lives: a dead leader is
// replaced within about this long.
const leaderCheck = 500 * time.Millisecond

// finalizeEvery is how often the leader finalizes closed windows.
const finalizeEvery = time.Minute

// lead makes one replica of a PostgreSQL store the leader at a time
// (postgres.DB.Lead), shown by abmesh_leader in /metrics. A bbolt store has
// one process: it always leads. The leader runs the work that must happen
// once across replicas: opening the analysis windows every replica counts
// into and publishing them (leadWindows, plan.go), and finalizing windows
// closed for longer than any replica may still save them
// (postgres.Windows.FinalizeClosed). It stops leading when another
// replica has taken a newer term.
func (d *Daemon) lead() {
	if d.pg == nil {
		d.leader.Store(true)
		return
	}
	d.loop(func() {
		d.pg.Lead(d.life, postgres.LeaderKey, leaderCheck, func(ctx context.Context) {
			d.leader.Store(true)
			d.log.Info("this replica leads", "store", d.db.Path())
			defer func() {
				d.leader.Store(false)
				d.log.Info("this replica no longer leads")
			}()
			ctx, cancel := context.WithCancel(ctx)
			finalized := make(chan struct{})
			go func() { defer close(finalized); d.finalizeClosed(ctx) }()
			defer func() { cancel(); <-finalized }()
			t := time.NewTicker(leaderCheck)
			defer t.Stop()
			d.leadWindows(ctx, t.C)
		})
	})
}

// finalizeClosed finalizes closed windows every finalizeEvery until ctx
// ends.
func (d *Daemon) finalizeClosed(ctx context.Context) {
	grace := d.cfg.FlushInterval + 2*time.Minute
	t := time.NewTicker(finalizeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if n, err := d.win.(postgres.Windows).FinalizeClosed(ctx, now, grace); err != nil && ctx.Err() == nil {
				d.log.Error("finalize closed windows", "err", err)
			} else if n > 0 {
				d.log.Info("finalized closed windows", "windows", n)
			}
		}
	}
}

// blobName is the store's name of a replica's own blob (the service graph
// it observed, its write-ahead log's checkpoint): name itself with bbolt,
// "name/REPLICA-ID" in a PostgreSQL store that replicas share.
func (d *Daemon) blobName(name string) string {
	if d.pg == nil {
		return name
	}
	return name + "/" + d.replica
}

// replicaIDFile holds, in the data directory, the id under which a replica
// stores its partial analysis state in a PostgreSQL store.
const replicaIDFile = "replica-id"

// replicaID returns the replica id kept in dir, creating a random one on
// the first start, so that a restarted replica resumes its own partial
// windows.
func replicaID(dir string) (string, error) {
	path := filepath.Join(dir, replicaIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("replica id: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("replica id: %w", err)
	}
	id := rand.Text()
	return id, os.WriteFile(path, []byte(id+"\n"), 0o644)
}

// mergedWindows is the report reader's source with a PostgreSQL store: the
// replica's own windows (the leader's, adopted: plan.go) say which are
// current and listed, and each is read merged from every replica's rows
// (postgres.Windows.MergedWindow), as of each replica's last flush. A
// window not stored yet is the replica's own; so is one whose stored
// parts disagree on its members (only rows written before replicas
// adopted the leader's windows can), with a warning.
type mergedWindows struct {
	local *subset.Windows
	st    postgres.Windows
	log   interface{ Warn(string, ...any) }
}

// Current implements report.Windows.
func (m mergedWindows) Current(ctx context.Context, viewpoint string) (subset.WindowCells, bool) {
	w, ok := m.local.Current(viewpoint)
	if !ok {
		return w, false
	}
	return m.merged(ctx, w), true
}

// List implements report.Windows.
func (m mergedWindows) List(ctx context.Context, viewpoint string) []subset.WindowCells {
	list := m.local.List(viewpoint)
	for i := range list {
		list[i] = m.merged(ctx, list[i])
	}
	return list
}

// mergeTimeout bounds the read of one merged window. It reads every unit
// row of the window from every replica: 1.2–1.4 s for a million rows at
// rest, 5.4 s on the loaded development machine (BenchmarkSaveUnits/merge),
// so a short bound would make a large window's report silently fall back
// to this replica's counts.
const mergeTimeout = time.Minute

// merged returns w read merged from every replica's rows, within ctx (the
// report's request) and mergeTimeout; this replica's own w when the read
// fails (logged unless ctx ended: nobody waits for that report).
func (m mergedWindows) merged(ctx context.Context, w subset.WindowCells) subset.WindowCells {
	if ctx.Err() != nil {
		return w
	}
	ctx, cancel := context.WithTimeout(ctx, mergeTimeout)
	defer cancel()
	mw, ok, err := m.st.MergedWindow(ctx, w.Viewpoint, w.Seq)
	if err != nil && ctx.Err() == nil {
		m.log.Warn("merged window unreadable; reporting this replica's counts", "viewpoint", w.Viewpoint, "seq", w.Seq, "err", err)
	}
	if !ok {
		return w
	}
	return mw
}
