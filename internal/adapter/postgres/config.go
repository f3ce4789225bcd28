package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/abmesh/abmesh/assign"
)

// NotifyChannel is the channel every config write notifies on commit, with
// the new configuration version as payload.
const NotifyChannel = "abmesh_config"

var _ assign.SharedStore = (*DB)(nil)

// loaded is the configuration version and the entities' resource versions
// a registry holds.
type loaded struct {
	version uint64
	rv      map[string]uint64 // entityKey → resource version
}

func expKey(id string) string   { return "experiment " + strconv.Quote(id) }
func layerKey(id string) string { return "layer " + strconv.Quote(id) }
func overrideKey(exp, unit string) string {
	return "override of unit " + strconv.Quote(unit) + " in experiment " + strconv.Quote(exp)
}

// querier is a connection, pool or transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Load implements assign.Store. It reads one consistent snapshot and
// remembers its resource versions for ApplyShared.
func (d *DB) Load(ctx context.Context) (assign.Config, error) {
	var (
		c   assign.Config
		l   loaded
		err error
	)
	err = pgx.BeginTxFunc(ctx, d.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		c, l, err = readConfig(ctx, tx)
		return err
	})
	if err != nil {
		return assign.Config{}, fmt.Errorf("load config from PostgreSQL at %s: %w", d.addr, err)
	}
	d.mu.Lock()
	d.known = l
	d.mu.Unlock()
	return c, nil
}

// readConfig reads the whole configuration with its resource versions.
func readConfig(ctx context.Context, q querier) (assign.Config, loaded, error) {
	var c assign.Config
	l := loaded{rv: map[string]uint64{}}
	var v int64
	if err := q.QueryRow(ctx, `SELECT version FROM config_meta WHERE id = 1`).Scan(&v); err != nil {
		return c, l, err
	}
	c.Version, l.version = uint64(v), uint64(v)
	err := readRows(ctx, q, `SELECT rv, body FROM experiments ORDER BY id`, func(rv uint64, body []byte) error {
		var e assign.Experiment
		if err := json.Unmarshal(body, &e); err != nil {
			return fmt.Errorf("experiment: %w", err)
		}
		l.rv[expKey(e.ID)] = rv
		c.Experiments = append(c.Experiments, e)
		return nil
	})
	if err != nil {
		return c, l, err
	}
	err = readRows(ctx, q, `SELECT rv, body FROM layers ORDER BY id`, func(rv uint64, body []byte) error {
		var x assign.Layer
		if err := json.Unmarshal(body, &x); err != nil {
			return fmt.Errorf("layer: %w", err)
		}
		l.rv[layerKey(x.ID)] = rv
		c.Layers = append(c.Layers, x)
		return nil
	})
	if err != nil {
		return c, l, err
	}
	err = readRows(ctx, q, `SELECT rv, body FROM overrides ORDER BY experiment, unit`, func(rv uint64, body []byte) error {
		var o assign.Override
		if err := json.Unmarshal(body, &o); err != nil {
			return fmt.Errorf("override: %w", err)
		}
		l.rv[overrideKey(o.Experiment, o.Unit)] = rv
		c.Overrides = append(c.Overrides, o)
		return nil
	})
	return c, l, err
}

func readRows(ctx context.Context, q querier, sql string, f func(rv uint64, body []byte) error) error {
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return err
	}
	var (
		rv   int64
		body []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&rv, &body}, func() error { return f(uint64(rv), body) })
	return err
}

// Apply implements assign.Store as ApplyShared does.
func (d *DB) Apply(ctx context.Context, ch assign.Change) error {
	_, err := d.ApplyShared(ctx, ch)
	return err
}

// ApplyShared implements assign.SharedStore: one transaction that locks
// the version row, checks the resource version of every entity ch touches
// against what this replica loaded, applies ch at the next version with
// its audit entry, validates the result when other replicas wrote since,
// and notifies NotifyChannel.
func (d *DB) ApplyShared(ctx context.Context, ch assign.Change) (assign.Config, error) {
	d.mu.Lock()
	known := d.known
	d.mu.Unlock()
	var (
		cfg  assign.Config
		next loaded
	)
	err := pgx.BeginTxFunc(ctx, d.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var stored int64
		if err := tx.QueryRow(ctx, `SELECT version FROM config_meta WHERE id = 1 FOR UPDATE`).Scan(&stored); err != nil {
			return err
		}
		_, current, err := readConfig(ctx, tx)
		if err != nil {
			return err
		}
		if err := checkVersions(ch, known, current); err != nil {
			return err
		}
		version := uint64(stored) + 1
		if err := write(ctx, tx, ch, version); err != nil {
			return err
		}
		if cfg, next, err = readConfig(ctx, tx); err != nil {
			return err
		}
		if uint64(stored) != known.version {
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("%w: the change, added to the changes other replicas made since configuration version %d (now %d), is invalid: %v", assign.ErrConflict, known.version, stored, err)
			}
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, strconv.FormatUint(version, 10))
		return err
	})
	if err != nil {
		if errors.Is(err, assign.ErrConflict) {
			return assign.Config{}, err
		}
		return assign.Config{}, fmt.Errorf("write config to PostgreSQL at %s: %w", d.addr, err)
	}
	d.mu.Lock()
	d.known = next
	d.mu.Unlock()
	return cfg, nil
}

// checkVersions returns an ErrConflict naming the first entity ch touches
// whose stored resource version is not the one known (0: absent).
func checkVersions(ch assign.Change, known, current loaded) error {
	var keys []string
	for _, e := range ch.PutExperiments {
		keys = append(keys, expKey(e.ID))
	}
	for _, id := range ch.DeleteExperiments {
		keys = append(keys, expKey(id))
	}
	for _, x := range ch.PutLayers {
		keys = append(keys, layerKey(x.ID))
	}
	for _, id := range ch.DeleteLayers {
		keys = append(keys, layerKey(id))
	}
	for _, o := range ch.PutOverrides {
		keys = append(keys, overrideKey(o.Experiment, o.Unit))
	}
	for _, o := range ch.DeleteOverrides {
		keys = append(keys, overrideKey(o.Experiment, o.Unit))
	}
	for _, k := range keys {
		if want, got := known.rv[k], current.rv[k]; want != got {
			return fmt.Errorf("%w: %s was changed by another replica: expected resource version %s, actual %s (configuration version %d); retry against the current state",
				assign.ErrConflict, k, rvString(want), rvString(got), current.version)
		}
	}
	return nil
}

func rvString(rv uint64) string {
	if rv == 0 {
		return "none (absent)"
	}
	return strconv.FormatUint(rv, 10)
}

// write applies ch's deletes, puts (at resource version version), audit
// entry and the version itself.
func write(ctx context.Context, tx pgx.Tx, ch assign.Change, version uint64) error {
	b := &pgx.Batch{}
	v := int64(version)
	for _, id := range ch.DeleteExperiments {
		b.Queue(`DELETE FROM experiments WHERE id = $1`, id)
	}
	for i := range ch.PutExperiments {
		e := &ch.PutExperiments[i]
		b.Queue(`INSERT INTO experiments (id, rv, body) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET rv = excluded.rv, body = excluded.body`, e.ID, v, jsonArg(e))
	}
	for _, id := range ch.DeleteLayers {
		b.Queue(`DELETE FROM layers WHERE id = $1`, id)
	}
	for i := range ch.PutLayers {
		x := &ch.PutLayers[i]
		b.Queue(`INSERT INTO layers (id, rv, body) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET rv = excluded.rv, body = excluded.body`, x.ID, v, jsonArg(x))
	}
	for _, o := range ch.DeleteOverrides {
		b.Queue(`DELETE FROM overrides WHERE experiment = $1 AND unit = $2`, o.Experiment, o.Unit)
	}
	for i := range ch.PutOverrides {
		o := &ch.PutOverrides[i]
		b.Queue(`INSERT INTO overrides (experiment, unit, rv, body) VALUES ($1, $2, $3, $4) ON CONFLICT (experiment, unit) DO UPDATE SET rv = excluded.rv, body = excluded.body`, o.Experiment, o.Unit, v, jsonArg(o))
	}
	if ch.Audit != nil {
		e := *ch.Audit
		e.Version = version
		b.Queue(`INSERT INTO audit_log (body) VALUES ($1)`, jsonArg(&e))
	}
	b.Queue(`UPDATE config_meta SET version = $1 WHERE id = 1`, v)
	return tx.SendBatch(ctx, b).Close()
}

// jsonArg encodes v for a jsonb parameter. Domain types always encode.
func jsonArg(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return string(b)
}

// Changes implements assign.Store: newest first, reading pages of the log
// until q.Limit entries match.
func (d *DB) Changes(ctx context.Context, q assign.AuditQuery) ([]assign.AuditEntry, error) {
	var out []assign.AuditEntry
	before := int64(q.Before)
	if before == 0 {
		before = 1<<63 - 1
	}
	const page = 500
	for {
		rows, err := d.pool.Query(ctx, `SELECT seq, body FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2`, before, page)
		if err != nil {
			return nil, fmt.Errorf("read audit log from PostgreSQL at %s: %w", d.addr, err)
		}
		var (
			seq  int64
			body []byte
			n    int
		)
		_, err = pgx.ForEachRow(rows, []any{&seq, &body}, func() error {
			n++
			before = seq
			if q.Limit > 0 && len(out) >= q.Limit {
				return nil
			}
			var e assign.AuditEntry
			if err := json.Unmarshal(body, &e); err != nil {
				return fmt.Errorf("audit entry %d: %w", seq, err)
			}
			e.Seq = uint64(seq)
			if q.Match(&e) {
				out = append(out, e)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read audit log from PostgreSQL at %s: %w", d.addr, err)
		}
		if n < page || (q.Limit > 0 && len(out) >= q.Limit) {
			return out, nil
		}
	}
}
