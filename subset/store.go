package subset

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
)

// MemStore is an in-memory Store, safe for concurrent use. It keeps each
// window as its JSON encoding, so what it returns is exactly what a
// persistent store that encodes WindowCells as JSON would return.
type MemStore struct {
	mu sync.Mutex
	m  map[memKey][]byte
}

type memKey struct {
	viewpoint string
	seq       int
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: map[memKey][]byte{}} }

// SaveWindow stores w under (w.Viewpoint, w.Seq). Idempotent.
func (s *MemStore) SaveWindow(ctx context.Context, w WindowCells) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("encode window %s#%d: %w", w.Viewpoint, w.Seq, err)
	}
	s.mu.Lock()
	s.m[memKey{w.Viewpoint, w.Seq}] = b
	s.mu.Unlock()
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
