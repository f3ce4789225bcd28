package subset

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// MemStore is an in-memory Store, safe for concurrent use. It keeps each
// window as its JSON encoding, so what it returns is exactly what a
// persistent store that encodes WindowCells as JSON would return.
type MemStore struct {
	mu    sync.Mutex
	m     map[memKey][]byte
	units map[memKey]map[uint64]UnitState
}

type memKey struct {
	viewpoint string
	seq       int
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{m: map[memKey][]byte{}, units: map[memKey]map[uint64]UnitState{}}
}

// SaveWindow stores w under (w.Viewpoint, w.Seq) and applies units to its
// units. Idempotent.
func (s *MemStore) SaveWindow(ctx context.Context, w WindowCells, units UnitChanges) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encode window %s#%d: %w", w.Viewpoint, w.Seq, err)
	}
	k := memKey{w.Viewpoint, w.Seq}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = b
	if units.Drop {
		delete(s.units, k)
	}
	if len(units.Put) > 0 && s.units[k] == nil {
		s.units[k] = map[uint64]UnitState{}
	}
	for _, u := range units.Put {
		s.units[k][u.Key] = u
	}
	return nil
}

// LoadUnits calls f for every stored unit of window (viewpoint, seq).
func (s *MemStore) LoadUnits(ctx context.Context, viewpoint string, seq int, f func(UnitState) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	units := slices.Collect(maps.Values(s.units[memKey{viewpoint, seq}]))
	s.mu.Unlock()
	for _, u := range units {
		if err := f(u); err != nil {
			return err
		}
	}
	return nil
}

// LoadWindows returns every stored window, sorted by viewpoint then seq.
func (s *MemStore) LoadWindows(ctx context.Context) ([]WindowCells, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WindowCells, 0, len(s.m))
	for k, b := range s.m {
		var w WindowCells
		if err := json.Unmarshal(b, &w); err != nil {
			return nil, fmt.Errorf("decode window %s#%d: %w", k.viewpoint, k.seq, err)
		}
		out = append(out, w)
	}
	slices.SortFunc(out, compareWindowCells)
	return out, nil
}
