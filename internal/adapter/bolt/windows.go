package bolt

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/abmesh/abmesh/subset"
)

// Windows is the store of analysis windows (cells and counters), kept as
// JSON blobs "window/<viewpoint>/<seq>". It implements subset.Store.
type Windows struct{ db *DB }

var _ subset.Store = Windows{}

// Windows returns the window store of d.
func (d *DB) Windows() Windows { return Windows{db: d} }

const windowPrefix = "window/"

// SaveWindow implements subset.Store. Idempotent.
func (s Windows) SaveWindow(_ context.Context, w subset.WindowCells) error {
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	return s.db.PutBlob(fmt.Sprintf("%s%s/%08d", windowPrefix, w.Viewpoint, w.Seq), b)
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
