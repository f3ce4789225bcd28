package daemon

import (
	"context"
	"strings"

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
		db, err := postgres.Open(ctx, d.cfg.Store)
		if err != nil {
			return err
		}
		d.db, d.win, d.pg = db, db.Windows(), db
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
