package subset

import (
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
)

// UnitKey is the key under which a window keeps a unit's running totals:
// the XXH64 of the unit id. Two distinct ids share a key with probability
// about n²/2⁶⁵ for n units in a window (3·10⁻⁸ at a million units); the
// two would then be counted as one unit. Zero is never returned (it marks
// an empty slot).
func UnitKey(unit string) uint64 {
	k := xxhash.Sum64String(unit)
	if k == 0 {
		return 1
	}
	return k
}

// UnitState is one unit's running totals in one window, as a Store keeps
// them: the unit's cell (the window's cell key: the members' variant
// indices in mixed radix, first member fastest), the sum of its counted
// requests' metric values, their number, and whether any was non-zero.
type UnitState struct {
	Key      uint64  `json:"key"`
	Cell     uint64  `json:"cell"`
	Sum      float64 `json:"sum"`
	Requests uint32  `json:"requests"`
	NonZero  bool    `json:"non_zero,omitempty"`
}

// value is the unit's aggregated metric under agg (for AggregateRatio the
// unit's request-level mean; the ratio's analysis uses Sum and Requests).
func (u UnitState) value(agg assign.Aggregate) float64 {
	switch agg {
	case assign.AggregateSum:
		return u.Sum
	case assign.AggregateAny:
		if u.NonZero {
			return 1
		}
		return 0
	case assign.AggregateCount:
		return float64(u.Requests)
	default: // mean, ratio
		return u.Sum / float64(u.Requests)
	}
}

// unitSlot is one slot of a unitTable: 24 bytes. meta packs the unit's
// request count (low 30 bits), its non-zero flag (bit 30) and its dirty
// flag (bit 31: changed since the last save) with the cell's index into
// the window's cell list (high 32 bits).
type unitSlot struct {
	key  uint64
	sum  float64
	meta uint64
}

const (
	slotRequests = 1<<30 - 1
	slotNonZero  = 1 << 30
	slotDirty    = 1 << 31
	// maxUnitRequests is the most requests a unit can have counted in one
	// window; further requests of the unit are excluded as UnitTooLong.
	maxUnitRequests = slotRequests
)

func (s *unitSlot) requests() uint32 { return uint32(s.meta & slotRequests) }
func (s *unitSlot) cell() uint32     { return uint32(s.meta >> 32) }

// unitTable is an open-addressing hash table (linear probing, power-of-two
// capacity, load at most 13/16) from UnitKey to a unit's running totals.
// It never deletes: a window's units go all at once. At a million units
// it costs 24 B / load ≈ 30–59 B a unit.
type unitTable struct {
	slots []unitSlot
	n     int
}

const minUnitSlots = 64

// find returns the slot of key, inserting an empty one (key set, zero
// totals) when absent; inserted reports which.
func (t *unitTable) find(key uint64) (s *unitSlot, inserted bool) {
	if (t.n+1)*16 > len(t.slots)*13 {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := key & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		switch s.key {
		case key:
			return s, false
		case 0:
			s.key = key
			t.n++
			return s, true
		}
	}
}

func (t *unitTable) grow() {
	old := t.slots
	t.slots = make([]unitSlot, max(minUnitSlots, 2*len(old)))
	mask := uint64(len(t.slots) - 1)
	for _, s := range old {
		if s.key == 0 {
			continue
		}
		i := s.key & mask
		for t.slots[i].key != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// all calls f for every unit's slot, in table order.
func (t *unitTable) all(f func(s *unitSlot)) {
	for i := range t.slots {
		if t.slots[i].key != 0 {
			f(&t.slots[i])
		}
	}
}

// bytes is the table's memory.
func (t *unitTable) bytes() int { return len(t.slots) * 24 }

// cellsFromUnits computes the cells of a window from its units: each cell
// holds its units' aggregated values (Stats), their requests and, for
// ratio windows, their (sum, requests) pairs. keys maps a unit's cell index
// to the cell key; decode turns a key into variant indices.
func cellsFromUnits(t *unitTable, keys []uint64, agg assign.Aggregate, decode func(uint64) []int) []Cell {
	cells := make([]Cell, len(keys))
	for i, k := range keys {
		cells[i].Variants = decode(k)
		if agg == assign.AggregateRatio {
			cells[i].Ratio = new(analysis.RatioStats)
		}
	}
	t.all(func(s *unitSlot) {
		c := &cells[s.cell()]
		u := UnitState{Sum: s.sum, Requests: s.requests(), NonZero: s.meta&slotNonZero != 0}
		c.Stats.Add(u.value(agg))
		c.Requests += int64(u.Requests)
		if c.Ratio != nil {
			c.Ratio.Add(u.Sum, float64(u.Requests))
		}
	})
	out := cells[:0]
	for _, c := range cells {
		if c.Stats.N > 0 {
			out = append(out, c)
		}
	}
	return out
}

// finite reports whether v is a usable metric value.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
