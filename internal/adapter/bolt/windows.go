package bolt

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"go.etcd.io/bbolt"

	"github.com/abmesh/abmesh/subset"
)

// Windows is the store of analysis windows: each window's snapshot (cells
// and counters) as a JSON blob "window/<viewpoint>/<seq>", and its units'
// running totals in bucket "units", sub-bucket "<viewpoint>/<seq>", one
// fixed-size record per unit key. It implements subset.Store.
type Windows struct{ db *DB }

var _ subset.Store = Windows{}

// Windows returns the window store of d.
func (d *DB) Windows() Windows { return Windows{db: d} }

const windowPrefix = "window/"

var bucketUnits = []byte("units")

func windowName(viewpoint string, seq int) string { return fmt.Sprintf("%s/%08d", viewpoint, seq) }

// unitRecordLen is a stored unit's size: cell key, sum, requests, flags.
const unitRecordLen = 8 + 8 + 4 + 1

// SaveWindow implements subset.Store: the snapshot and the unit changes in
// one transaction. Units are written in key order, which keeps bbolt's
// pages full. Idempotent.
func (s Windows) SaveWindow(ctx context.Context, w subset.WindowCells, units subset.UnitChanges) error {
	return s.SaveWindows(ctx, []subset.WindowSave{{Cells: w, Units: units}}, nil)
}

// SaveWindows saves each window as SaveWindow does, and puts blobs (name →
// value, as DB.PutBlob), all in one transaction: after a crash either all
// of it is stored or none. Idempotent.
func (s Windows) SaveWindows(_ context.Context, saves []subset.WindowSave, blobs map[string][]byte) error {
	encoded := make([][]byte, len(saves))
	for i, w := range saves {
		b, err := json.Marshal(w.Cells)
		if err != nil {
			return err
		}
		encoded[i] = b
		slices.SortFunc(w.Units.Put, func(a, b subset.UnitState) int { return cmp.Compare(a.Key, b.Key) })
	}
	return s.db.db.Update(func(tx *bbolt.Tx) error {
		for i, w := range saves {
			name := windowName(w.Cells.Viewpoint, w.Cells.Seq)
			if err := tx.Bucket(bucketBlobs).Put([]byte(windowPrefix+name), encoded[i]); err != nil {
				return err
			}
			if err := putUnits(tx, name, w.Units); err != nil {
				return err
			}
		}
		for name, v := range blobs {
			if err := tx.Bucket(bucketBlobs).Put([]byte(name), v); err != nil {
				return err
			}
		}
		return nil
	})
}

func putUnits(tx *bbolt.Tx, name string, units subset.UnitChanges) error {
	root, err := tx.CreateBucketIfNotExists(bucketUnits)
	if err != nil {
		return err
	}
	if units.Drop && root.Bucket([]byte(name)) != nil {
		if err := root.DeleteBucket([]byte(name)); err != nil {
			return err
		}
	}
	if len(units.Put) == 0 {
		return nil
	}
	bk, err := root.CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return err
	}
	bk.FillPercent = 0.9
	var key [8]byte
	for _, u := range units.Put {
		binary.BigEndian.PutUint64(key[:], u.Key)
		if err := bk.Put(key[:], encodeUnit(u)); err != nil {
			return err
		}
	}
	return nil
}

func encodeUnit(u subset.UnitState) []byte {
	v := make([]byte, unitRecordLen)
	binary.BigEndian.PutUint64(v[0:], u.Cell)
	binary.BigEndian.PutUint64(v[8:], math.Float64bits(u.Sum))
	binary.BigEndian.PutUint32(v[16:], u.Requests)
	if u.NonZero {
		v[20] = 1
	}
	return v
}

func decodeUnit(k, v []byte) (subset.UnitState, error) {
	if len(k) != 8 || len(v) != unitRecordLen {
		return subset.UnitState{}, fmt.Errorf("unit record of %d+%d bytes, want 8+%d", len(k), len(v), unitRecordLen)
	}
	return subset.UnitState{
		Key:      binary.BigEndian.Uint64(k),
		Cell:     binary.BigEndian.Uint64(v[0:]),
		Sum:      math.Float64frombits(binary.BigEndian.Uint64(v[8:])),
		Requests: binary.BigEndian.Uint32(v[16:]),
		NonZero:  v[20] == 1,
	}, nil
}

// LoadWindows implements subset.Store.
func (s Windows) LoadWindows(context.Context) ([]subset.WindowCells, error) {
	var out []subset.WindowCells
	err := s.db.Blobs(windowPrefix, func(name string, v []byte) error {
		var w subset.WindowCells
		if err := json.Unmarshal(v, &w); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, w)
		return nil
	})
	return out, err
}

// LoadUnits implements subset.Store.
func (s Windows) LoadUnits(_ context.Context, viewpoint string, seq int, f func(subset.UnitState) error) error {
	name := windowName(viewpoint, seq)
	return s.db.db.View(func(tx *bbolt.Tx) error {
		root := tx.Bucket(bucketUnits)
		if root == nil || root.Bucket([]byte(name)) == nil {
			return nil
		}
		return root.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
			u, err := decodeUnit(k, v)
			if err != nil {
				return fmt.Errorf("units %s: %w", name, err)
			}
			return f(u)
		})
	})
}
