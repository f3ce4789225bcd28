package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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

// Windows is the store of analysis windows in the database: each window's
// snapshot as JSON in table windows, its units' totals in table units. It
// implements subset.Store.
type Windows struct{ db *DB }

var _ subset.Store = Windows{}

// Windows returns the window store of d.
func (d *DB) Windows() Windows { return Windows{db: d} }

// SaveWindow implements subset.Store.
func (s Windows) SaveWindow(ctx context.Context, w subset.WindowCells, units subset.UnitChanges) error {
	return s.SaveWindows(ctx, []subset.WindowSave{{Cells: w, Units: units}}, nil)
}

// SaveWindows saves each window as SaveWindow does and puts blobs, all in
// one transaction. Units go in one statement per window (arrays
// unnested), keys and cells stored bit for bit as bigint. Idempotent.
func (s Windows) SaveWindows(ctx context.Context, saves []subset.WindowSave, blobs map[string][]byte) error {
	b := &pgx.Batch{}
	for _, w := range saves {
		c := &w.Cells
		b.Queue(`INSERT INTO windows (viewpoint, seq, cells) VALUES ($1, $2, $3) ON CONFLICT (viewpoint, seq) DO UPDATE SET cells = excluded.cells`,
			c.Viewpoint, c.Seq, jsonArg(c))
		if w.Units.Drop {
			b.Queue(`DELETE FROM units WHERE viewpoint = $1 AND seq = $2`, c.Viewpoint, c.Seq)
		}
		if len(w.Units.Put) == 0 {
			continue
		}
		n := len(w.Units.Put)
		keys, cells, reqs := make([]int64, n), make([]int64, n), make([]int64, n)
		sums, nz := make([]float64, n), make([]bool, n)
		for i, u := range w.Units.Put {
			keys[i], cells[i], sums[i], reqs[i], nz[i] = int64(u.Key), int64(u.Cell), u.Sum, int64(u.Requests), u.NonZero
		}
		b.Queue(`INSERT INTO units (viewpoint, seq, key, cell, sum, requests, non_zero)
			SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[], $5::float8[], $6::bigint[], $7::bool[])
			ON CONFLICT (viewpoint, seq, key) DO UPDATE SET cell = excluded.cell, sum = excluded.sum, requests = excluded.requests, non_zero = excluded.non_zero`,
			c.Viewpoint, c.Seq, keys, cells, sums, reqs, nz)
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

// LoadWindows implements subset.Store.
func (s Windows) LoadWindows(ctx context.Context) ([]subset.WindowCells, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT cells FROM windows ORDER BY viewpoint, seq`)
	if err != nil {
		return nil, err
	}
	var (
		out  []subset.WindowCells
		body []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&body}, func() error {
		var w subset.WindowCells
		if err := json.Unmarshal(body, &w); err != nil {
			return fmt.Errorf("window: %w", err)
		}
		out = append(out, w)
		return nil
	})
	return out, err
}

// LoadUnits implements subset.Store.
func (s Windows) LoadUnits(ctx context.Context, viewpoint string, seq int, f func(subset.UnitState) error) error {
	rows, err := s.db.pool.Query(ctx, `SELECT key, cell, sum, requests, non_zero FROM units WHERE viewpoint = $1 AND seq = $2`, viewpoint, seq)
	if err != nil {
		return err
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
