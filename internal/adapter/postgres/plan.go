package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// PlanChannel is the channel PublishPlan notifies on commit, with the
// plan's generation as payload.
const PlanChannel = "abmesh_plan"

// Plan is the leader's window plan as stored (table window_plan, one
// row): what the analysis windows of every replica are. Body is the
// plan's encoding, opaque here; nil before the first plan.
type Plan struct {
	// Term is the leader term the plan was published in; TakeTerm starts
	// the next.
	Term int64
	// Leader is the replica that took Term.
	Leader string
	// Generation increases by one per published plan, whoever published
	// it.
	Generation int64
	Body       []byte
}

// ErrDeposed is returned by PublishPlan when another replica has taken a
// newer term: this replica no longer leads.
var ErrDeposed = errors.New("another replica leads now")

// TakeTerm starts a new leader term for replica and returns it with the
// current plan, in one statement: from then on only this term may publish
// (PublishPlan), so an old leader that has not yet noticed it lost the
// lock cannot overwrite a newer plan. Call it once leading (Lead).
func (d *DB) TakeTerm(ctx context.Context, replica string) (Plan, error) {
	p := Plan{Leader: replica}
	err := d.pool.QueryRow(ctx, `UPDATE window_plan SET term = term + 1, leader = $1 WHERE id = 1
		RETURNING term, generation, body`, replica).Scan(&p.Term, &p.Generation, &p.Body)
	if err != nil {
		return Plan{}, fmt.Errorf("take the leader term in PostgreSQL at %s: %w", d.addr, err)
	}
	return p, nil
}

// LoadPlan returns the current plan (Body nil before the first).
func (d *DB) LoadPlan(ctx context.Context) (Plan, error) {
	var p Plan
	err := d.pool.QueryRow(ctx, `SELECT term, leader, generation, body FROM window_plan WHERE id = 1`).
		Scan(&p.Term, &p.Leader, &p.Generation, &p.Body)
	if err != nil {
		return Plan{}, fmt.Errorf("read the window plan from PostgreSQL at %s: %w", d.addr, err)
	}
	return p, nil
}

// PublishPlan stores body (valid JSON) as the next generation of the plan,
// if term is still the current term, and notifies PlanChannel in the same
// transaction. It returns the new generation, or an error wrapping
// ErrDeposed when a newer term was taken.
func (d *DB) PublishPlan(ctx context.Context, term int64, body []byte) (int64, error) {
	var gen int64
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE window_plan SET generation = generation + 1, body = $2::json
			WHERE id = 1 AND term = $1 RETURNING generation`, term, string(body)).Scan(&gen)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("publish the window plan of term %d: %w", term, ErrDeposed)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, PlanChannel, strconv.FormatInt(gen, 10))
		return err
	})
	if err != nil && !errors.Is(err, ErrDeposed) {
		return 0, fmt.Errorf("publish the window plan to PostgreSQL at %s: %w", d.addr, err)
	}
	return gen, err
}

// Blobs returns every blob whose name starts with prefix, by name (the
// service graphs of all replicas: prefix "graph/").
func (d *DB) Blobs(ctx context.Context, prefix string) (map[string][]byte, error) {
	rows, err := d.pool.Query(ctx, `SELECT name, value FROM blobs WHERE starts_with(name, $1)`, prefix)
	if err != nil {
		return nil, fmt.Errorf("read blobs from PostgreSQL at %s: %w", d.addr, err)
	}
	out := map[string][]byte{}
	var (
		name  string
		value []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&name, &value}, func() error {
		out[name] = slices.Clone(value)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read blobs from PostgreSQL at %s: %w", d.addr, err)
	}
	return out, nil
}
