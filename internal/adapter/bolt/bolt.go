// Package bolt is abmeshd's embedded store: one bbolt file under the data
// directory holding experiments, layers, overrides, sticky assignments,
// phase history (inside experiments), the audit log of admin changes, the
// service graph and the cells of every analysis window. No server to install; the file survives restarts.
//
// Values are JSON of the domain types, so the file can be read with any
// bbolt tool and a field added to a domain type needs no migration.
package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/abmesh/abmesh/assign"
)

// FileName is the store's file name inside the data directory.
const FileName = "abmesh.db"

var (
	bucketMeta        = []byte("meta")
	bucketExperiments = []byte("experiments")
	bucketLayers      = []byte("layers")
	bucketOverrides   = []byte("overrides")
	bucketSticky      = []byte("sticky")
	bucketBlobs       = []byte("blobs")
	bucketAudit       = []byte("audit") // seq (8 bytes big-endian) → assign.AuditEntry
	keyVersion        = []byte("config_version")
)

// DB is the embedded store. It implements assign.Store and
// assign.StickyStore and keeps named blobs for other packages (graph,
// cells). Safe for concurrent use.
type DB struct {
	db *bbolt.DB

	// Sticky assignments are served from memory and written behind in
	// batches (see stickyLoop), so Put never waits on the disk.
	stickyMu sync.RWMutex
	sticky   map[string]map[string]stickyValue
	pending  chan stickyWrite
	done     chan struct{}
	closed   sync.Once
}

type stickyValue struct {
	Variant string `json:"v"`
	Phase   int    `json:"p"`
}

type stickyWrite struct {
	test, unit string
	val        stickyValue
	del        bool // delete every entry of test
}

var (
	_ assign.Store       = (*DB)(nil)
	_ assign.StickyStore = (*DB)(nil)
)

// Open opens (creating if needed) the store in dir.
func Open(dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	b, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: another process (a running abmeshd?) holds it; use another --data-dir: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = b.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketExperiments, bucketLayers, bucketOverrides, bucketSticky, bucketBlobs, bucketAudit} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("init store %s: %w", path, err)
	}
	d := &DB{db: b, sticky: map[string]map[string]stickyValue{}, pending: make(chan stickyWrite, 4096), done: make(chan struct{})}
	if err := d.loadSticky(); err != nil {
		b.Close()
		return nil, err
	}
	go d.stickyLoop()
	return d, nil
}

// Path is the store file's path.
func (d *DB) Path() string { return d.db.Path() }

// Close flushes pending sticky writes and closes the file.
func (d *DB) Close() error {
	var err error
	d.closed.Do(func() {
		close(d.pending)
		<-d.done
		err = d.db.Close()
	})
	return err
}

// Load implements assign.Store.
func (d *DB) Load(context.Context) (assign.Config, error) {
	var c assign.Config
	err := d.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyVersion); len(v) == 8 {
			c.Version = binary.BigEndian.Uint64(v)
		}
		if err := tx.Bucket(bucketExperiments).ForEach(func(k, v []byte) error {
			var e assign.Experiment
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("experiment %q: %w", k, err)
			}
			c.Experiments = append(c.Experiments, e)
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLayers).ForEach(func(k, v []byte) error {
			var l assign.Layer
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("layer %q: %w", k, err)
			}
			c.Layers = append(c.Layers, l)
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketOverrides).ForEach(func(k, v []byte) error {
			var o assign.Override
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("override %q: %w", k, err)
			}
			c.Overrides = append(c.Overrides, o)
			return nil
		})
	})
	if err != nil {
		return assign.Config{}, fmt.Errorf("load config from %s: %w", d.db.Path(), err)
	}
	return c, nil
}

func overrideKey(test, unit string) []byte {
	return []byte(test + "\x00" + unit)
}

// Apply implements assign.Store: one bbolt transaction, so all of ch
// (with its audit entry) or nothing. Idempotent but for the audit entry.
func (d *DB) Apply(_ context.Context, ch assign.Change) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		exps, layers, ovs := tx.Bucket(bucketExperiments), tx.Bucket(bucketLayers), tx.Bucket(bucketOverrides)
		for _, id := range ch.DeleteExperiments {
			if err := exps.Delete([]byte(id)); err != nil {
				return err
			}
		}
		for i := range ch.PutExperiments {
			if err := putJSON(exps, []byte(ch.PutExperiments[i].ID), &ch.PutExperiments[i]); err != nil {
				return err
			}
		}
		for _, id := range ch.DeleteLayers {
			if err := layers.Delete([]byte(id)); err != nil {
				return err
			}
		}
		for i := range ch.PutLayers {
			if err := putJSON(layers, []byte(ch.PutLayers[i].ID), &ch.PutLayers[i]); err != nil {
				return err
			}
		}
		for _, o := range ch.DeleteOverrides {
			if err := ovs.Delete(overrideKey(o.Experiment, o.Unit)); err != nil {
				return err
			}
		}
		for i := range ch.PutOverrides {
			o := &ch.PutOverrides[i]
			if err := putJSON(ovs, overrideKey(o.Experiment, o.Unit), o); err != nil {
				return err
			}
		}
		if err := appendAudit(tx.Bucket(bucketAudit), ch.Audit); err != nil {
			return err
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], ch.Version)
		return tx.Bucket(bucketMeta).Put(keyVersion, v[:])
	})
}

// appendAudit stores e, if not nil, under the bucket's next sequence.
func appendAudit(b *bbolt.Bucket, e *assign.AuditEntry) error {
	if e == nil {
		return nil
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	rec := *e
	rec.Seq = seq
	return putJSON(b, binary.BigEndian.AppendUint64(nil, seq), &rec)
}

// Changes implements assign.Store: it walks the audit log from the newest
// entry (or from q.Before) backwards, so a filtered query reads entries
// until it has q.Limit matches.
func (d *DB) Changes(_ context.Context, q assign.AuditQuery) ([]assign.AuditEntry, error) {
	var out []assign.AuditEntry
	err := d.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		k, v := c.Last()
		if q.Before != 0 {
			k, v = c.Seek(binary.BigEndian.AppendUint64(nil, q.Before))
			if k == nil {
				k, v = c.Last()
			}
		}
		for ; k != nil && (q.Limit <= 0 || len(out) < q.Limit); k, v = c.Prev() {
			if q.Before != 0 && binary.BigEndian.Uint64(k) >= q.Before {
				continue
			}
			var e assign.AuditEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("audit entry %x: %w", k, err)
			}
			if q.Match(&e) {
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read audit log from %s: %w", d.db.Path(), err)
	}
	return out, nil
}

func putJSON(b *bbolt.Bucket, key []byte, v any) error {
	buf, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, buf)
}

// Get implements assign.StickyStore from memory.
func (d *DB) Get(test, unit string) (string, int, bool) {
	d.stickyMu.RLock()
	v, ok := d.sticky[test][unit]
	d.stickyMu.RUnlock()
	return v.Variant, v.Phase, ok
}

// Put implements assign.StickyStore: the entry is visible at once and
// written to disk within stickyFlushInterval (the most an unclean crash can
// lose; a lost entry only lets the unit be hashed again).
func (d *DB) Put(test, unit, variant string, phase int) {
	v := stickyValue{Variant: variant, Phase: phase}
	d.stickyMu.Lock()
	t := d.sticky[test]
	if t == nil {
		t = map[string]stickyValue{}
		d.sticky[test] = t
	}
	t[unit] = v
	d.stickyMu.Unlock()
	d.pending <- stickyWrite{test: test, unit: unit, val: v}
}

// DeleteTest implements assign.StickyStore.
func (d *DB) DeleteTest(test string) {
	d.stickyMu.Lock()
	delete(d.sticky, test)
	d.stickyMu.Unlock()
	d.pending <- stickyWrite{test: test, del: true}
}

const stickyFlushInterval = 100 * time.Millisecond

func (d *DB) stickyLoop() {
	defer close(d.done)
	var batch []stickyWrite
	tick := time.NewTicker(stickyFlushInterval)
	defer tick.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		_ = d.db.Update(func(tx *bbolt.Tx) error {
			root := tx.Bucket(bucketSticky)
			for _, w := range batch {
				if w.del {
					if root.Bucket([]byte(w.test)) != nil {
						if err := root.DeleteBucket([]byte(w.test)); err != nil {
							return err
						}
					}
					continue
				}
				b, err := root.CreateBucketIfNotExists([]byte(w.test))
				if err != nil {
					return err
				}
				if err := putJSON(b, []byte(w.unit), w.val); err != nil {
					return err
				}
			}
			return nil
		})
		batch = batch[:0]
	}
	for {
		select {
		case w, ok := <-d.pending:
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

func (d *DB) loadSticky() error {
	return d.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketSticky).ForEachBucket(func(test []byte) error {
			t := map[string]stickyValue{}
			d.sticky[string(test)] = t
			return tx.Bucket(bucketSticky).Bucket(test).ForEach(func(k, v []byte) error {
				var sv stickyValue
				if err := json.Unmarshal(v, &sv); err != nil {
					return fmt.Errorf("sticky %s/%s: %w", test, k, err)
				}
				t[string(k)] = sv
				return nil
			})
		})
	})
}

// ErrNoBlob is returned by GetBlob for a name never stored.
var ErrNoBlob = errors.New("no such blob")

// PutBlob stores value under name, replacing what was there.
func (d *DB) PutBlob(name string, value []byte) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketBlobs).Put([]byte(name), value)
	})
}

// GetBlob returns a copy of the value stored under name, or ErrNoBlob.
func (d *DB) GetBlob(name string) ([]byte, error) {
	var out []byte
	err := d.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketBlobs).Get([]byte(name))
		if v == nil {
			return ErrNoBlob
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

// Blobs calls f for every blob whose name starts with prefix, in name
// order. The value is only valid during the call.
func (d *DB) Blobs(prefix string, f func(name string, value []byte) error) error {
	return d.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketBlobs).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && len(k) >= len(p) && string(k[:len(p)]) == prefix; k, v = c.Next() {
			if err := f(string(k), v); err != nil {
				return err
			}
		}
		return nil
	})
}
