// Package postgres is abmeshd's shared store: the state of package bolt
// (experiments, layers, overrides, sticky assignments, the audit log,
// named blobs, analysis windows) in one PostgreSQL database that any
// number of abmeshd replicas use at once, chosen with
// --store postgres://….
//
// The schema is versioned with goose: the SQL migrations embedded in the
// binary are applied on Open under a PostgreSQL session lock (replicas
// starting together migrate once), and a database whose schema is newer
// than the binary's is refused.
//
// Config writes are optimistic (assign.SharedStore): every entity row
// carries its resource version, a write checks the versions this replica
// loaded under a lock of the version row, and a stale write fails with
// assign.ErrConflict. Every write notifies channel NotifyChannel on
// commit; Watch turns the notifications into reloads on every replica.
//
// The leader (Lead) publishes the analysis windows every replica counts
// into as a plan (table window_plan: TakeTerm, PublishPlan, notifying
// PlanChannel); the other replicas Listen and LoadPlan.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// SchemaVersion is the newest schema version this binary knows.
const SchemaVersion = 5

// ConnectTimeout bounds Open's first connection.
const ConnectTimeout = 5 * time.Second

// DB is the PostgreSQL store of one replica. Safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
	addr string // host:port, for messages

	// mu guards known: the resource versions of the configuration this
	// replica's registry holds (set by Load and ApplyShared), which
	// ApplyShared expects to find.
	mu    sync.Mutex
	known loaded

	sticky *stickyCache
}

// ErrSchemaTooNew is wrapped by Open's error when the database's schema is
// newer than the binary's (another replica runs a newer abmeshd).
var ErrSchemaTooNew = errors.New("database schema is newer than this abmeshd")

// Open connects to the database at url (postgres://user:pass@host:port/db),
// applies the pending migrations and loads the sticky assignments. An
// unreachable server is an error naming host:port.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("--store: not a PostgreSQL URL: %w", err)
	}
	var o pgxOptions
	for _, opt := range opts {
		opt(&o)
	}
	if o.replica != "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = appPrefix + o.replica
	}
	addr := net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port)))
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL at %s: %w", addr, err)
	}
	d := &DB{pool: pool, addr: addr}
	pctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s (database %q): %w", addr, cfg.ConnConfig.Database, err)
	}
	if err := d.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if d.sticky, err = newStickyCache(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL at %s: load sticky assignments: %w", addr, err)
	}
	return d, nil
}

// migrate applies the embedded migrations, refusing a newer schema.
func (d *DB) migrate(ctx context.Context) error {
	src, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	sqlDB := stdlib.OpenDBFromPool(d.pool)
	defer sqlDB.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, src, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("PostgreSQL at %s: migrations: %w", d.addr, err)
	}
	if err := checkSchema(ctx, sqlDB); err != nil {
		return fmt.Errorf("PostgreSQL at %s: %w", d.addr, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("PostgreSQL at %s: apply schema migrations: %w", d.addr, err)
	}
	return nil
}

// checkSchema fails when goose has recorded a version above SchemaVersion.
func checkSchema(ctx context.Context, db *sql.DB) error {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('goose_db_version') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return err
	}
	var v int64
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&v); err != nil {
		return err
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: the database is at schema version %d, this binary knows up to %d; run the newer abmeshd", ErrSchemaTooNew, v, SchemaVersion)
	}
	return nil
}

// Addr is the server's host:port.
func (d *DB) Addr() string { return d.addr }

// Path describes the store for logs: "postgres://host:port".
func (d *DB) Path() string { return "postgres://" + d.addr }

// Close flushes pending sticky writes and closes the connections.
func (d *DB) Close() error {
	d.sticky.close()
	d.pool.Close()
	return nil
}
