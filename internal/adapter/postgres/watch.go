package postgres

import (
	"context"
	"time"
)

// Watch calls sync once with a dedicated connection listening on
// NotifyChannel, then after every notification (a config write by any
// replica, this one included), until ctx is done. When the connection is
// lost it reconnects (backing off from 100 ms to 2 s) and calls sync
// again: a full resync, so notifications sent while it was away are not
// missed. Notifications that arrive while sync runs are coalesced into one
// more call. Watch returns when ctx is done.
func (d *DB) Watch(ctx context.Context, sync func(context.Context)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if d.listen(ctx, sync) {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// listen runs one listening session; it reports whether it got as far as
// listening.
func (d *DB) listen(ctx context.Context, sync func(context.Context)) bool {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return false
	}
	// The connection carries a LISTEN: never hand it back to the pool.
	pc := conn.Hijack()
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
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
