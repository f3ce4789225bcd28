package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// ClaimChannel is the channel a claim round is notified on.
const ClaimChannel = "abmesh_claims"

// appPrefix starts the application_name of every connection of a replica
// opened with AsReplica: "abmesh/REPLICA-ID". pg_stat_activity thus lists
// the live replicas (a killed one's sessions end with its sockets).
const appPrefix = "abmesh/"

// claimsKept is how long claim rounds are kept (and answered, by a
// replica that was not listening when one was made).
const claimsKept = time.Hour

// answerRecent bounds the age of the rounds a replica answers.
const answerRecent = time.Minute

// Option configures Open.
type Option func(*pgxOptions)

type pgxOptions struct{ replica string }

// AsReplica names the connections of the replica id (application_name
// "abmesh/ID"), so that ClaimTraces knows which replicas live.
func AsReplica(id string) Option { return func(o *pgxOptions) { o.replica = id } }

// ClaimTraces makes replica's claim on ids (16 bytes each; the trace ids
// of its write-ahead log's tail, before it replays it): it stores a claim
// round, notifies ClaimChannel, and waits, at most wait, until every other
// live replica (a session named by AsReplica on the same database)
// answered (AnswerClaims).
// It returns the ids some replica holds — the claimant must not count
// them — and the live replicas that did not answer in time.
func (d *DB) ClaimTraces(ctx context.Context, replica string, ids [][16]byte, wait time.Duration) (held map[[16]byte]bool, missing []string, err error) {
	blob := idsBlob(ids)
	var round int64
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM claim_rounds WHERE made_at < now() - $1::interval`, claimsKept.String()); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO claim_rounds (replica, trace_ids) VALUES ($1, $2) RETURNING id`, replica, blob).Scan(&round); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ClaimChannel, strconv.FormatInt(round, 10))
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("PostgreSQL at %s: claim traces: %w", d.addr, err)
	}
	held = map[[16]byte]bool{}
	deadline := time.Now().Add(wait)
	for {
		live, answered, err := d.roundState(ctx, replica, round, held)
		if err != nil {
			return held, nil, fmt.Errorf("PostgreSQL at %s: claim traces: %w", d.addr, err)
		}
		missing = slices.DeleteFunc(live, func(r string) bool { return answered[r] })
		if len(missing) == 0 || time.Now().After(deadline) {
			return held, missing, nil
		}
		select {
		case <-ctx.Done():
			return held, missing, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// roundState returns the other live replicas (sessions named by
// AsReplica on this database: another database on the server is another
// deployment), and those that answered round, adding the ids they hold to
// held.
func (d *DB) roundState(ctx context.Context, replica string, round int64, held map[[16]byte]bool) (live []string, answered map[string]bool, err error) {
	if live, err = d.liveReplicas(ctx, replica); err != nil {
		return nil, nil, err
	}
	answered = map[string]bool{}
	rows, err := d.pool.Query(ctx, `SELECT replica, held FROM claim_answers WHERE round = $1`, round)
	if err != nil {
		return nil, nil, err
	}
	var (
		who  string
		blob []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&who, &blob}, func() error {
		answered[who] = true
		for _, id := range blobIDs(blob) {
			held[id] = true
		}
		return nil
	})
	return live, answered, err
}

// AnswerClaims answers, until ctx is done, every claim round of another
// replica made in the last minute that replica has not answered: answer
// gets the round's ids and returns those this replica holds, which are
// stored as its answer. It listens on ClaimChannel (with Listen's
// reconnects and full resyncs); an error is passed to fail and the round
// is tried again at the next notification or resync.
func (d *DB) AnswerClaims(ctx context.Context, replica string, answer func(ids [][16]byte) [][16]byte, fail func(error)) {
	d.Listen(ctx, ClaimChannel, func(ctx context.Context) {
		if err := d.answerPending(ctx, replica, answer); err != nil && ctx.Err() == nil {
			fail(fmt.Errorf("PostgreSQL at %s: answer trace claims: %w", d.addr, err))
		}
	})
}

// answerPending answers the rounds replica has not answered yet.
func (d *DB) answerPending(ctx context.Context, replica string, answer func(ids [][16]byte) [][16]byte) error {
	rows, err := d.pool.Query(ctx, `SELECT r.id, r.trace_ids FROM claim_rounds r
		WHERE r.replica <> $1 AND r.made_at > now() - $2::interval
		AND NOT EXISTS (SELECT 1 FROM claim_answers a WHERE a.round = r.id AND a.replica = $1)
		ORDER BY r.id`, replica, answerRecent.String())
	if err != nil {
		return err
	}
	type round struct {
		ID  int64
		IDs []byte
	}
	pending, err := pgx.CollectRows(rows, pgx.RowToStructByPos[round])
	if err != nil {
		return err
	}
	for _, r := range pending {
		held := idsBlob(answer(blobIDs(r.IDs)))
		if _, err := d.pool.Exec(ctx, `INSERT INTO claim_answers (round, replica, held) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, r.ID, replica, held); err != nil {
			return err
		}
	}
	return nil
}

// idsBlob concatenates ids.
func idsBlob(ids [][16]byte) []byte {
	b := make([]byte, 0, 16*len(ids))
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}

// blobIDs splits a blob of idsBlob.
func blobIDs(b []byte) [][16]byte {
	ids := make([][16]byte, 0, len(b)/16)
	for i := 0; i+16 <= len(b); i += 16 {
		ids = append(ids, [16]byte(b[i:i+16]))
	}
	return ids
}

// liveReplicasSQL lists the live replicas: sessions named by AsReplica on
// this database (another database on the server is another deployment).
const liveReplicasSQL = `SELECT DISTINCT substr(application_name, length($1) + 1) FROM pg_stat_activity
	WHERE datname = current_database() AND starts_with(application_name, $1)`

// liveReplicas returns the live replicas but except.
func (d *DB) liveReplicas(ctx context.Context, except string) ([]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT r FROM (`+liveReplicasSQL+`) l(r) WHERE r <> $2`, appPrefix, except)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// liveFlushes returns each live replica's last flush (zero when it never
// flushed).
func (d *DB) liveFlushes(ctx context.Context) (map[string]time.Time, error) {
	rows, err := d.pool.Query(ctx, `SELECT l.r, coalesce(f.flushed_at, '-infinity') FROM (`+liveReplicasSQL+`) l(r)
		LEFT JOIN replica_flushes f ON f.replica = l.r`, appPrefix)
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	var (
		r  string
		at pgtype.Timestamptz
	)
	_, err = pgx.ForEachRow(rows, []any{&r, &at}, func() error {
		out[r] = at.Time // zero for -infinity
		return nil
	})
	return out, err
}
