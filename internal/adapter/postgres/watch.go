package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Watch is Listen on NotifyChannel: sync runs after every config write
// by any replica, this one included.
func (d *DB) Watch(ctx context.Context, sync func(context.Context)) {
	d.Listen(ctx, NotifyChannel, sync)
}

// Listen calls sync once with a dedicated connection listening on
// channel, then after every notification on it, until ctx is done. When
// the connection is lost it reconnects (ReconnectMin, backing off to
// ReconnectMax) and calls sync again: a full resync, so notifications sent
// while it was away are not missed. Notifications that arrive while sync
// runs are coalesced into one more call. Listen returns when ctx is done.
func (d *DB) Listen(ctx context.Context, channel string, sync func(context.Context)) {
	backoff := ReconnectMin
	for ctx.Err() == nil {
		if d.listen(ctx, channel, sync) {
			backoff = ReconnectMin
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, ReconnectMax)
	}
}

// ReconnectMin and ReconnectMax bound Watch's wait between attempts to
// listen again after its connection was lost. The cap is well below the
// 1 s within which a change must reach every replica's Watch streams: once
// the server is back, a replica listens again (and resyncs) within
// ReconnectMax plus a connection. An attempt against a server that is
// down costs a refused TCP connection; against an unreachable host it
// waits out the connect timeout, which spaces attempts by itself.
const (
	ReconnectMin = 50 * time.Millisecond
	ReconnectMax = 250 * time.Millisecond
)

// listen runs one listening session; it reports whether it got as far as
// listening.
func (d *DB) listen(ctx context.Context, channel string, sync func(context.Context)) bool {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return false
	}
	// The connection carries a LISTEN: never hand it back to the pool.
	pc := conn.Hijack()
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return false
	}
	sync(ctx)
	for {
		if _, err := pc.WaitForNotification(ctx); err != nil {
			return true
		}
		// Coalesce what is already queued into this one sync.
		for {
			wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			_, err := pc.WaitForNotification(wctx)
			cancel()
			if err != nil {
				break
			}
		}
		if ctx.Err() != nil {
			return true
		}
		sync(ctx)
	}
}
