package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/abmesh/abmesh/assign"
)

var _ assign.StickyStore = (*DB)(nil)

// stickyCache serves sticky assignments from memory, looks a unit this
// replica has not seen up in the table (another replica may have assigned
// it), and writes new entries behind in batches, as package bolt does.
type stickyCache struct {
	pool *pgxpool.Pool

	mu sync.RWMutex
	m  map[[2]string]stickyValue // (test, unit)
	// dropped are tests whose DeleteTest is not written yet: their rows
	// must not be looked up.
	dropped map[string]int

	pending chan stickyWrite
	done    chan struct{}
	once    sync.Once
}

type stickyValue struct {
	variant string
	phase   int
}

type stickyWrite struct {
	test, unit string
	val        stickyValue
	del        bool // delete every entry of test
}

// StickyFlushInterval is the longest a Put waits before it is written.
const StickyFlushInterval = 100 * time.Millisecond

// stickyLookupTimeout bounds the table look-up of a unit not in memory; on
// timeout the unit is treated as new (hashed), never failing Assign.
const stickyLookupTimeout = 200 * time.Millisecond

func newStickyCache(ctx context.Context, pool *pgxpool.Pool) (*stickyCache, error) {
	s := &stickyCache{pool: pool, m: map[[2]string]stickyValue{}, dropped: map[string]int{}, pending: make(chan stickyWrite, 4096), done: make(chan struct{})}
	rows, err := pool.Query(ctx, `SELECT test, unit, variant, phase FROM sticky`)
	if err != nil {
		return nil, err
	}
	var (
		test, unit, variant string
		phase               int32
	)
	if _, err := pgx.ForEachRow(rows, []any{&test, &unit, &variant, &phase}, func() error {
		s.m[[2]string{test, unit}] = stickyValue{variant, int(phase)}
		return nil
	}); err != nil {
		return nil, err
	}
	go s.loop()
	return s, nil
}

// Get implements assign.StickyStore: memory first, then the table.
func (d *DB) Get(test, unit string) (string, int, bool) {
	s := d.sticky
	k := [2]string{test, unit}
	s.mu.RLock()
	v, ok := s.m[k]
	dropped := s.dropped[test] > 0
	s.mu.RUnlock()
	if ok || dropped {
		return v.variant, v.phase, ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), stickyLookupTimeout)
	defer cancel()
	var phase int32
	if err := s.pool.QueryRow(ctx, `SELECT variant, phase FROM sticky WHERE test = $1 AND unit = $2`, test, unit).Scan(&v.variant, &phase); err != nil {
		return "", 0, false
	}
	v.phase = int(phase)
	s.mu.Lock()
	s.m[k] = v
	s.mu.Unlock()
	return v.variant, v.phase, true
}

// Put implements assign.StickyStore: visible at once on this replica,
// written within StickyFlushInterval.
func (d *DB) Put(test, unit, variant string, phase int) {
	s := d.sticky
	v := stickyValue{variant, phase}
	s.mu.Lock()
	s.m[[2]string{test, unit}] = v
	s.mu.Unlock()
	s.pending <- stickyWrite{test: test, unit: unit, val: v}
}

// DeleteTest implements assign.StickyStore.
func (d *DB) DeleteTest(test string) {
	s := d.sticky
	s.mu.Lock()
	for k := range s.m {
		if k[0] == test {
			delete(s.m, k)
		}
	}
	s.dropped[test]++
	s.mu.Unlock()
	s.pending <- stickyWrite{test: test, del: true}
}

func (s *stickyCache) close() {
	s.once.Do(func() {
		close(s.pending)
		<-s.done
	})
}

func (s *stickyCache) loop() {
	defer close(s.done)
	var batch []stickyWrite
	tick := time.NewTicker(StickyFlushInterval)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		b := &pgx.Batch{}
		for _, w := range batch {
			if w.del {
				b.Queue(`DELETE FROM sticky WHERE test = $1`, w.test)
				continue
			}
			b.Queue(`INSERT INTO sticky (test, unit, variant, phase) VALUES ($1, $2, $3, $4)
				ON CONFLICT (test, unit) DO UPDATE SET variant = excluded.variant, phase = excluded.phase`,
				w.test, w.unit, w.val.variant, int32(w.val.phase))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// A lost batch only lets its units be hashed again (the
		// StickyStore contract); it is not retried.
		_ = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
		cancel()
		s.mu.Lock()
		for _, w := range batch {
			if w.del {
				if s.dropped[w.test]--; s.dropped[w.test] == 0 {
					delete(s.dropped, w.test)
				}
			}
		}
		s.mu.Unlock()
		batch = batch[:0]
	}
	for {
		select {
		case w, ok := <-s.pending:
			if !ok {
				flush()
				return
			}
			batch = append(batch, w)
			if len(batch) >= 1024 {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}
