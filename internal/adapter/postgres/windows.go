package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/abmesh/abmesh/internal/adapter/bolt"
	"github.com/abmesh/abmesh/subset"
)

// ErrNoBlob is returned by GetBlob for a name never stored; it is
// bolt.ErrNoBlob, so callers test one error whatever the store.
var ErrNoBlob = bolt.ErrNoBlob

// PutBlob stores value under name, replacing what was there.
func (d *DB) PutBlob(name string, value []byte) error {
	_, err := d.pool.Exec(context.Background(), putBlobSQL, name, value)
	return err
}

const putBlobSQL = `INSERT INTO blobs (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`

// GetBlob returns the value stored under name, or ErrNoBlob.
func (d *DB) GetBlob(name string) ([]byte, error) {
	var v []byte
	err := d.pool.QueryRow(context.Background(), `SELECT value FROM blobs WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNoBlob
	}
	return v, err
}

// Windows is one replica's store of analysis windows in the database: its
// partial snapshot of each window (quality counters; cells of its own
// units) as JSON in table windows, and its units' partial totals in table
// units, both keyed by the replica's id. It implements subset.Store over
// the replica's own rows (what it restores after a restart); Merged reads
// every replica's rows as one node's.
type Windows struct {
	db      *DB
	replica string
	q       querier // reads go through q when set (a transaction), else the pool
}

// reads returns what s reads through.
func (s Windows) reads() querier {
	if s.q != nil {
		return s.q
	}
	return s.db.pool
}

var _ subset.Store = Windows{}

// Windows returns the window store of replica (a stable id: the same
// after the replica restarts).
func (d *DB) Windows(replica string) Windows { return Windows{db: d, replica: replica} }

// SaveWindow implements subset.Store.
func (s Windows) SaveWindow(ctx context.Context, w subset.WindowCells, units subset.UnitChanges) error {
	return s.SaveWindows(ctx, []subset.WindowSave{{Cells: w, Units: units}}, nil)
}

// SaveWindows saves each window as SaveWindow does and puts blobs, all in
// one transaction. Only the replica's rows are replaced, so a retried save
// counts nothing twice. Units go in one statement per window (arrays
// unnested), keys and cells stored bit for bit as bigint. UnitChanges.Drop
// is ignored: another replica's partial totals of the same units may still
// be merged with these, so closed windows keep their units (dropping them
// once merged is leader work not done yet). Idempotent.
func (s Windows) SaveWindows(ctx context.Context, saves []subset.WindowSave, blobs map[string][]byte) error {
	b := &pgx.Batch{}
	if s.replica != "" {
		b.Queue(`INSERT INTO replica_flushes (replica, flushed_at) VALUES ($1, $2)
			ON CONFLICT (replica) DO UPDATE SET flushed_at = excluded.flushed_at`, s.replica, time.Now())
	}
	for _, w := range saves {
		c := &w.Cells
		// Saves of one window wait for the leader's finalizing of it, and
		// it for them (windowLockSQL).
		b.Queue(`SELECT pg_advisory_xact_lock_shared(`+windowLockSQL+`)`, c.Viewpoint, c.Seq)
		// A window the leader finalized (FinalizeClosed) is never saved
		// again: its rows would be counted twice.
		b.Queue(`INSERT INTO windows (viewpoint, seq, replica, cells) SELECT $1, $2, $3, $4
			WHERE NOT EXISTS (SELECT 1 FROM windows WHERE viewpoint = $1 AND seq = $2 AND replica = '' AND $3 <> '')
			ON CONFLICT (viewpoint, seq, replica) DO UPDATE SET cells = excluded.cells`,
			c.Viewpoint, c.Seq, s.replica, jsonArg(c))
		if len(w.Units.Put) == 0 {
			continue
		}
		n := len(w.Units.Put)
		keys, cells, reqs := make([]int64, n), make([]int64, n), make([]int64, n)
		sums, nz := make([]float64, n), make([]bool, n)
		for i, u := range w.Units.Put {
			keys[i], cells[i], sums[i], reqs[i], nz[i] = int64(u.Key), int64(u.Cell), u.Sum, int64(u.Requests), u.NonZero
		}
		b.Queue(`INSERT INTO units (viewpoint, seq, replica, key, cell, sum, requests, non_zero)
			SELECT $1, $2, $3, * FROM unnest($4::bigint[], $5::bigint[], $6::float8[], $7::bigint[], $8::bool[])
			WHERE NOT EXISTS (SELECT 1 FROM windows WHERE viewpoint = $1 AND seq = $2 AND replica = '' AND $3 <> '')
			ON CONFLICT (viewpoint, seq, replica, key) DO UPDATE SET cell = excluded.cell, sum = excluded.sum, requests = excluded.requests, non_zero = excluded.non_zero`,
			c.Viewpoint, c.Seq, s.replica, keys, cells, sums, reqs, nz)
	}
	for name, v := range blobs {
		b.Queue(putBlobSQL, name, v)
	}
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	if err != nil {
		return fmt.Errorf("save windows to PostgreSQL at %s: %w", s.db.addr, err)
	}
	return nil
}

// LoadWindows implements subset.Store: the replica's own windows.
func (s Windows) LoadWindows(ctx context.Context) ([]subset.WindowCells, error) {
	var out []subset.WindowCells
	err := s.windowRows(ctx, `SELECT '', cells FROM windows WHERE replica = $1 ORDER BY viewpoint, seq`, []any{s.replica},
		func(_ string, w subset.WindowCells) error {
			out = append(out, w)
			return nil
		})
	return out, err
}

func (s Windows) windowRows(ctx context.Context, sql string, args []any, f func(replica string, w subset.WindowCells) error) error {
	rows, err := s.reads().Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("read windows from PostgreSQL at %s: %w", s.db.addr, err)
	}
	var (
		replica string
		body    []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&replica, &body}, func() error {
		var w subset.WindowCells
		if err := json.Unmarshal(body, &w); err != nil {
			return fmt.Errorf("window: %w", err)
		}
		return f(replica, w)
	})
	return err
}

// MaxSeqs returns, per viewpoint, the highest seq any replica has stored
// a window under.
func (s Windows) MaxSeqs(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT viewpoint, max(seq) FROM windows GROUP BY viewpoint`)
	if err != nil {
		return nil, fmt.Errorf("read windows from PostgreSQL at %s: %w", s.db.addr, err)
	}
	out := map[string]int{}
	var (
		vp  string
		seq int
	)
	_, err = pgx.ForEachRow(rows, []any{&vp, &seq}, func() error {
		out[vp] = seq
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read windows from PostgreSQL at %s: %w", s.db.addr, err)
	}
	return out, nil
}

// LoadUnits implements subset.Store: the replica's own units.
func (s Windows) LoadUnits(ctx context.Context, viewpoint string, seq int, f func(subset.UnitState) error) error {
	return s.unitRows(ctx, `SELECT key, cell, sum, requests, non_zero FROM units WHERE viewpoint = $1 AND seq = $2 AND replica = $3`,
		[]any{viewpoint, seq, s.replica}, f)
}

func (s Windows) unitRows(ctx context.Context, sql string, args []any, f func(subset.UnitState) error) error {
	rows, err := s.reads().Query(ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("read units from PostgreSQL at %s: %w", s.db.addr, err)
	}
	var (
		key, cell, reqs int64
		u               subset.UnitState
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &cell, &u.Sum, &reqs, &u.NonZero}, func() error {
		u.Key, u.Cell, u.Requests = uint64(key), uint64(cell), uint32(reqs)
		return f(u)
	})
	return err
}

// Merged returns every window as one node that counted what all replicas
// counted would have it (subset.MergeWindows of the replicas' partial
// windows and units), sorted by viewpoint then seq. A window stored by
// one replica without units (its units dropped by an abmeshd before
// replicas) keeps its stored cells.
func (s Windows) Merged(ctx context.Context) ([]subset.WindowCells, error) {
	type key struct {
		viewpoint string
		seq       int
	}
	var (
		order []key
		parts = map[key][]subset.WindowCells{}
	)
	err := s.windowRows(ctx, `SELECT replica, cells FROM windows ORDER BY viewpoint, seq, replica`, nil,
		func(_ string, w subset.WindowCells) error {
			k := key{w.Viewpoint, w.Seq}
			if parts[k] == nil {
				order = append(order, k)
			}
			parts[k] = append(parts[k], w)
			return nil
		})
	if err != nil {
		return nil, err
	}
	out := make([]subset.WindowCells, 0, len(order))
	for _, k := range order {
		w, err := s.merge(ctx, parts[k])
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// MergedWindow returns window (viewpoint, seq) merged as Merged does;
// false when no replica has stored it.
func (s Windows) MergedWindow(ctx context.Context, viewpoint string, seq int) (subset.WindowCells, bool, error) {
	var parts []subset.WindowCells
	err := s.windowRows(ctx, `SELECT replica, cells FROM windows WHERE viewpoint = $1 AND seq = $2 ORDER BY replica`, []any{viewpoint, seq},
		func(_ string, w subset.WindowCells) error {
			parts = append(parts, w)
			return nil
		})
	if err != nil || len(parts) == 0 {
		return subset.WindowCells{}, false, err
	}
	w, err := s.merge(ctx, parts)
	return w, err == nil, err
}

// merge merges the stored parts of one window with every replica's units.
func (s Windows) merge(ctx context.Context, parts []subset.WindowCells) (subset.WindowCells, error) {
	var units []subset.UnitState
	err := s.unitRows(ctx, `SELECT key, cell, sum, requests, non_zero FROM units WHERE viewpoint = $1 AND seq = $2 ORDER BY replica`,
		[]any{parts[0].Viewpoint, parts[0].Seq}, func(u subset.UnitState) error {
			units = append(units, u)
			return nil
		})
	if err != nil {
		return subset.WindowCells{}, err
	}
	if len(units) == 0 && len(parts) == 1 {
		return parts[0], nil
	}
	return subset.MergeWindows(parts, units)
}

// windowLockSQL is the key of window ($1 viewpoint, $2 seq)'s
// transaction-level advisory lock: SaveWindows takes it shared,
// FinalizeClosed exclusive, so a replica's save of a window is either
// wholly in the merged snapshot that finalizes it or made after it (and
// then skipped).
const windowLockSQL = `hashtextextended('abmesh window ' || $1 || '#' || $2::bigint::text, 0)`

// ClosedCounting is how long after its close a replica may still count
// into a window (subset keeps counting a closed window for a minute, for
// consumers that held an older plan).
const ClosedCounting = time.Minute

// FinalizeClosed is leader work: every window whose parts all ended more
// than grace before now is replaced, in one transaction per window, by
// its merged snapshot under replica "" (its cells fixed, its quality
// counters summed) and its units are deleted, so closed windows stop
// costing a row per unit and replica. grace must exceed what a replica
// may still save of a closed window (its flush interval plus a minute:
// ClosedCounting). A window waits, whatever grace says, until every live
// replica (a session named by AsReplica) has saved a flush begun
// ClosedCounting after the window's end: a replica that could not flush
// (PostgreSQL was away, or its flush is slow) still holds part of it.
// The merged snapshot is read under the window's lock (windowLockSQL), so
// no save is lost between reading and replacing. Merged and MergedWindow
// read a finalized window as stored. It returns how many windows it
// finalized.
func (s Windows) FinalizeClosed(ctx context.Context, now time.Time, grace time.Duration) (int, error) {
	merged, err := s.Merged(ctx)
	if err != nil {
		return 0, err
	}
	flushed, err := s.db.liveFlushes(ctx)
	if err != nil {
		return 0, fmt.Errorf("finalize windows: replicas' flushes in PostgreSQL at %s: %w", s.db.addr, err)
	}
	n := 0
	for _, w := range merged {
		if w.Open() || now.Sub(w.End) < grace || !allFlushedAfter(flushed, w.End.Add(ClosedCounting)) {
			continue
		}
		done, err := s.finalize(ctx, w.Viewpoint, w.Seq, now.Add(-grace))
		if err != nil {
			return n, fmt.Errorf("finalize window %s#%d in PostgreSQL at %s: %w", w.Viewpoint, w.Seq, s.db.addr, err)
		}
		if done {
			n++
		}
	}
	return n, nil
}

// allFlushedAfter reports whether every replica of flushed (live replica
// → its last flush; zero when it never flushed) flushed after t.
func allFlushedAfter(flushed map[string]time.Time, t time.Time) bool {
	for _, at := range flushed {
		if !at.After(t) {
			return false
		}
	}
	return true
}

// finalize replaces window (viewpoint, seq) by its merged snapshot, read
// under the window's exclusive lock, unless one of its parts ended after
// endedBy (saved since FinalizeClosed looked); it reports whether it did.
func (s Windows) finalize(ctx context.Context, viewpoint string, seq int, endedBy time.Time) (bool, error) {
	done := false
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+windowLockSQL+`)`, viewpoint, seq); err != nil {
			return err
		}
		var open bool
		if err := tx.QueryRow(ctx, `SELECT coalesce(bool_or((cells->>'end') IS NULL OR (cells->>'end')::timestamptz > $3), false)
			FROM windows WHERE viewpoint = $1 AND seq = $2`, viewpoint, seq, endedBy).Scan(&open); err != nil {
			return err
		}
		if open {
			return nil
		}
		in := s
		in.q = tx
		w, ok, err := in.MergedWindow(ctx, viewpoint, seq)
		if err != nil || !ok {
			return err
		}
		b := &pgx.Batch{}
		b.Queue(`DELETE FROM windows WHERE viewpoint = $1 AND seq = $2`, viewpoint, seq)
		b.Queue(`DELETE FROM units WHERE viewpoint = $1 AND seq = $2`, viewpoint, seq)
		b.Queue(`INSERT INTO windows (viewpoint, seq, replica, cells) VALUES ($1, $2, '', $3)`, viewpoint, seq, jsonArg(&w))
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		done = true
		return nil
	})
	return done && err == nil, err
}
