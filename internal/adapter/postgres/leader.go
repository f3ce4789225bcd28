package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// LeaderKey is the advisory lock key of abmeshd's leader work ("abmesh").
const LeaderKey int64 = 0x61626d657368

// Lead runs work on at most one replica at a time, until ctx is done. It
// tries every interval to take PostgreSQL's session-level advisory lock
// key (pg_try_advisory_lock) on a connection of its own; once it holds it,
// it calls work with a context that ends when ctx does or when the
// connection is found lost (checked every interval), and keeps the lock
// until then. A replica that dies releases the lock with its session:
// when the process is killed its socket closes and the server ends the
// session at once; when the machine or network fails, when the server's
// TCP keepalive gives up. Another replica's next try then takes over.
// work must return soon after its context ends; Lead waits for it before
// trying again, so two calls of work on one replica never overlap.
func (d *DB) Lead(ctx context.Context, key int64, interval time.Duration, work func(context.Context)) {
	for ctx.Err() == nil {
		d.leadOnce(ctx, key, interval, work)
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// leadOnce takes one connection, tries the lock until it holds it or the
// connection fails, then runs work while the connection lives.
func (d *DB) leadOnce(ctx context.Context, key int64, interval time.Duration, work func(context.Context)) {
	pc, err := d.pool.Acquire(ctx)
	if err != nil {
		return
	}
	conn := pc.Hijack() // the session holds the lock: never pooled
	defer conn.Close(context.Background())
	for {
		var got bool
		if err := query(ctx, conn, interval, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
			return
		}
		if got {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		work(wctx)
	}()
	defer func() { cancel(); <-done }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-time.After(interval):
		}
		var one int
		if err := query(ctx, conn, interval, `SELECT 1`).Scan(&one); err != nil {
			return
		}
	}
}

// query runs a one-row query bounded by timeout.
func query(ctx context.Context, conn *pgx.Conn, timeout time.Duration, sql string, args ...any) pgx.Row {
	qctx, cancel := context.WithTimeout(ctx, timeout)
	return cancelRow{conn.QueryRow(qctx, sql, args...), cancel}
}

type cancelRow struct {
	pgx.Row
	cancel context.CancelFunc
}

func (r cancelRow) Scan(dest ...any) error {
	defer r.cancel()
	return r.Row.Scan(dest...)
}
