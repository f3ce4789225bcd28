package subset

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
)

func TestUnitTableAgainstMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var tab unitTable
	want := map[uint64]float64{}
	for range 200_000 {
		k := r.Uint64N(50_000) + 1 // repeats, and keys that collide in the low bits
		k <<= r.UintN(20)
		s, inserted := tab.find(k)
		if _, seen := want[k]; inserted == seen {
			t.Fatalf("key %x: inserted %v, seen before %v", k, inserted, seen)
		}
		s.sum++
		want[k]++
	}
	if tab.n != len(want) {
		t.Fatalf("n = %d, want %d", tab.n, len(want))
	}
	got := map[uint64]float64{}
	tab.all(func(s *unitSlot) { got[s.key] += s.sum })
	if len(got) != len(want) {
		t.Fatalf("%d keys in the table, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %x: sum %v, want %v", k, got[k], v)
		}
		if s, inserted := tab.find(k); inserted || s.sum != v {
			t.Fatalf("find(%x) = %+v (inserted %v), want the existing slot", k, s, inserted)
		}
	}
	if load := float64(tab.n) / float64(len(tab.slots)); load > 13.0/16 || load < 13.0/32 {
		t.Errorf("load %.2f outside [13/32, 13/16]", load)
	}
}

// refUnit is a unit's requests as a test keeps them.
type refUnit struct {
	cell   uint64
	values []float64
}

// refValue aggregates a unit's requests directly from the definitions.
func refValue(agg assign.Aggregate, vs []float64) float64 {
	sum, nonZero := 0.0, false
	for _, v := range vs {
		sum += v
		nonZero = nonZero || v != 0
	}
	switch agg {
	case assign.AggregateSum:
		return sum
	case assign.AggregateAny:
		if nonZero {
			return 1
		}
		return 0
	case assign.AggregateCount:
		return float64(len(vs))
	}
	return sum / float64(len(vs))
}

func closeRel(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*max(1, math.Abs(a), math.Abs(b))
}

// TestWindowAggregates: a window's cells are statistics over its units,
// each unit's value as its aggregate defines it.
func TestWindowAggregates(t *testing.T) {
	members := []WindowMember{{Test: "a", Variants: []string{"c", "t"}}, {Test: "b", Variants: []string{"x", "y", "z"}}}
	for _, agg := range []assign.Aggregate{assign.AggregateMean, assign.AggregateSum, assign.AggregateAny, assign.AggregateCount, assign.AggregateRatio} {
		t.Run(agg.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, uint64(agg)))
			w := newWindow("a", viewKey{"svc", "m", agg}, members)
			units := map[uint64]*refUnit{}
			for range 20_000 {
				key := UnitKey(fmt.Sprint("user-", r.IntN(3000)))
				u := units[key]
				if u == nil {
					u = &refUnit{cell: uint64(r.IntN(2)) + 2*uint64(r.IntN(3))}
					units[key] = u
				}
				v := math.Round(r.NormFloat64()*3) * float64(r.IntN(2)) // zeros and non-zeros
				if got := w.add(u.cell, key, v); got != -1 {
					t.Fatalf("add excluded as %d", got)
				}
				u.values = append(u.values, v)
			}
			want := map[uint64]*Cell{}
			for _, u := range units {
				c := want[u.cell]
				if c == nil {
					c = &Cell{Variants: w.decode(u.cell), Ratio: new(analysis.RatioStats)}
					want[u.cell] = c
				}
				c.Stats.Add(refValue(agg, u.values))
				c.Requests += int64(len(u.values))
				c.Ratio.Add(refValue(assign.AggregateSum, u.values), float64(len(u.values)))
			}
			wc := w.snapshot()
			if wc.Aggregate != agg || len(wc.Cells) != 6 {
				t.Fatalf("aggregate %v, %d cells", wc.Aggregate, len(wc.Cells))
			}
			for _, c := range wc.Cells {
				k := uint64(c.Variants[0]) + 2*uint64(c.Variants[1])
				ref := want[k]
				if c.Stats.N != ref.Stats.N || c.Requests != ref.Requests ||
					!closeRel(c.Stats.Mean, ref.Stats.Mean, 1e-12) || !closeRel(c.Stats.M2, ref.Stats.M2, 1e-12) {
					t.Errorf("cell %v = %+v (requests %d), want %+v (requests %d)", c.Variants, c.Stats, c.Requests, ref.Stats, ref.Requests)
				}
				if (c.Ratio != nil) != (agg == assign.AggregateRatio) {
					t.Fatalf("cell %v ratio stats %v for %v", c.Variants, c.Ratio, agg)
				}
				if c.Ratio != nil && (c.Ratio.K != ref.Ratio.K || !closeRel(c.Ratio.Ratio(), ref.Ratio.Ratio(), 1e-12) ||
					!closeRel(c.Ratio.Variance(), ref.Ratio.Variance(), 1e-9)) {
					t.Errorf("cell %v ratio %+v, want %+v", c.Variants, *c.Ratio, *ref.Ratio)
				}
			}
		})
	}
}

// TestUnitExclusions: a unit stays in its first cell, and a unit id over
// the limit is excluded, never truncated into another unit.
func TestUnitExclusions(t *testing.T) {
	h := hashTable{"t2/u1": "treatment", "t3/u1": "a"}
	long := strings.Repeat("u", assign.MaxUnitLen+1)
	h["t2/"+long], h["t3/"+long] = "treatment", "a"
	h["t2/"+long[:assign.MaxUnitLen]], h["t3/"+long[:assign.MaxUnitLen]] = "treatment", "a"
	s, c, _ := newWorked(t, h)
	setTest(t, s, "t3", func(x *Test) { x.Sticky = true })
	obs := func(unit, t3 string, v float64) {
		c.ConsumeObservation(newObs(unit, time.Minute).serve("t2", "treatment", "Svc2").serve("t3", t3, "Svc3").latency("Svc2", v).build())
	}
	obs("u1", "a", 1)
	obs("u1", "a", 3)
	obs("u1", "c", 50) // sticky: served c, but u1 is counted in (treatment, a)
	obs(long, "a", 70)
	obs(long[:assign.MaxUnitLen], "a", 5)
	w, _ := s.Current("t2")
	checkCells(t, w, []wantCell{{[]string{"treatment", "a"}, 2, (2 + 5) / 2.0, 3}})
	// u1 and the 256-byte id, in t2's window (t3's metric is not there).
	if units, bytes := s.UnitMemory(); units != 2 || bytes < minUnitSlots*24 {
		t.Errorf("UnitMemory = %d units, %d bytes; want 2 units", units, bytes)
	}
	if q := w.Quality; q.CellChanged != 1 || q.UnitTooLong != 1 || q.Counted != 3 || q.Seen != 5 {
		t.Errorf("quality %+v", q)
	}
	names := map[string]int64{}
	for n, v := range w.Quality.Counts() {
		names[n] = v
	}
	if names["cell_changed"] != 1 || names["unit_too_long"] != 1 {
		t.Errorf("Counts() = %v", names)
	}
}

// TestAggregateChangeOpensWindow: changing a running test's aggregate
// closes its window (still readable) and opens the next.
func TestAggregateChangeOpensWindow(t *testing.T) {
	h := hashTable{"t5/u1": "on"}
	s, c, clk := newWorked(t, h)
	c.ConsumeObservation(newObs("u1", time.Minute).serve("t5", "on", "Svc5").latency("Svc5", 3).build())
	clk.Set(t0.Add(time.Hour))
	setTest(t, s, "t5", func(x *Test) { x.Aggregate = assign.AggregateCount })
	c.ConsumeObservation(newObs("u1", 2*time.Hour).serve("t5", "on", "Svc5").latency("Svc5", 3).build())
	c.ConsumeObservation(newObs("u1", 2*time.Hour).serve("t5", "on", "Svc5").latency("Svc5", 3).build())
	ws := s.List("t5")
	if len(ws) != 2 || ws[0].Open() || ws[0].Aggregate != assign.AggregateMean || ws[1].Aggregate != assign.AggregateCount {
		t.Fatalf("windows %+v", ws)
	}
	checkCells(t, ws[0], []wantCell{{[]string{"on"}, 1, 0, 1}})
	checkCells(t, ws[1], []wantCell{{[]string{"on"}, 1, 2, 2}})
}

// TestRestoreContinuesExactly: a restart between two halves of a stream
// ends with the cells of counting the stream in one go.
func TestRestoreContinuesExactly(t *testing.T) {
	ctx := context.Background()
	h := hashTable{}
	r := rand.New(rand.NewPCG(5, 6))
	type req struct {
		unit string
		v    float64
	}
	var stream []req
	for i := range 400 {
		u := fmt.Sprint("u", i%90)
		h["t2/"+u] = []string{"control", "treatment"}[i%90%2]
		h["t3/"+u] = []string{"a", "b", "c"}[i%90%3]
		stream = append(stream, req{u, r.NormFloat64()})
	}
	feed := func(c *CellCounter, rs []req) {
		for _, x := range rs {
			c.ConsumeObservation(newObs(x.unit, time.Minute).serve("t2", h["t2/"+x.unit], "Svc2").latency("Svc2", x.v).build())
		}
	}
	whole, c, _ := newWorked(t, h)
	feed(c, stream)
	want, _ := whole.Current("t2")

	first, c1, _ := newWorked(t, h)
	feed(c1, stream[:250])
	st := NewMemStore()
	if err := first.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	second, _, _ := newWorked(t, h)
	if err := second.Restore(ctx, st); err != nil {
		t.Fatal(err)
	}
	feed(NewCellCounter(second.Windows, h), stream[250:])
	got, _ := second.Current("t2")
	if got.Seq != want.Seq || got.Quality != want.Quality || len(got.Cells) != len(want.Cells) {
		t.Fatalf("restored window #%d %+v with %d cells, want #%d %+v with %d", got.Seq, got.Quality, len(got.Cells), want.Seq, want.Quality, len(want.Cells))
	}
	for i := range want.Cells {
		g, w := got.Cells[i], want.Cells[i]
		if !slices.Equal(g.Variants, w.Variants) || g.Stats.N != w.Stats.N || g.Requests != w.Requests ||
			!closeRel(g.Stats.Mean, w.Stats.Mean, 1e-12) || !closeRel(g.Stats.M2, w.Stats.M2, 1e-12) {
			t.Errorf("cell %d = %+v, want %+v", i, g, w)
		}
	}
}

// TestFinalWindowDropsUnits: a window closed for pruneGrace keeps its
// cells and frees its units, in memory and in the store.
func TestFinalWindowDropsUnits(t *testing.T) {
	ctx := context.Background()
	h := hashTable{"t5/u1": "on", "t5/u2": "off"}
	s, c, clk := newWorked(t, h)
	c.ConsumeObservation(newObs("u1", time.Minute).serve("t5", "on", "Svc5").latency("Svc5", 3).build())
	c.ConsumeObservation(newObs("u2", time.Minute).serve("t5", "off", "Svc5").failed("Svc5").build())
	st := NewMemStore()
	if err := s.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	nUnits := func() int {
		n := 0
		_ = st.LoadUnits(ctx, "t5", 1, func(UnitState) error { n++; return nil })
		return n
	}
	if n := nUnits(); n != 2 {
		t.Fatalf("stored units %d, want 2", n)
	}
	clk.Set(t0.Add(time.Hour))
	setTest(t, s, "t5", func(x *Test) { x.Aggregate = assign.AggregateAny }) // a new window
	before := s.List("t5")[0]
	clk.Set(t0.Add(time.Hour + pruneGrace))
	if err := s.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	if n := nUnits(); n != 0 {
		t.Errorf("stored units of the final window: %d, want 0", n)
	}
	after := s.List("t5")[0]
	if !slices.EqualFunc(after.Cells, before.Cells, func(a, b Cell) bool {
		return slices.Equal(a.Variants, b.Variants) && a.Stats == b.Stats && a.Requests == b.Requests
	}) || len(after.Cells) != 2 {
		t.Errorf("final cells %+v, want %+v", after.Cells, before.Cells)
	}
	for _, w := range c.ws.all() {
		if w.viewpoint == "t5" && w.seq == 1 && w.units != nil {
			t.Error("final window still holds its units")
		}
	}
}

// TestResumeSavesOnlyChanges: after a restart the next flush saves only
// the units counted since, not every unit loaded from the store.
func TestResumeSavesOnlyChanges(t *testing.T) {
	ctx := context.Background()
	h := hashTable{"t5/u1": "on", "t5/u2": "off", "t5/u3": "on"}
	first, c, _ := newWorked(t, h)
	c.ConsumeObservation(newObs("u1", time.Minute).serve("t5", "on", "Svc5").latency("Svc5", 3).build())
	c.ConsumeObservation(newObs("u2", time.Minute).serve("t5", "off", "Svc5").latency("Svc5", 3).build())
	st := NewMemStore()
	if err := first.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	second, c2, _ := newWorked(t, h)
	if err := second.Restore(ctx, st); err != nil {
		t.Fatal(err)
	}
	c2.ConsumeObservation(newObs("u3", time.Minute).serve("t5", "on", "Svc5").latency("Svc5", 3).build())
	rec := &recordingStore{MemStore: st}
	if err := second.Flush(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if len(rec.put) != 1 || rec.put[0].Key != UnitKey("u3") {
		t.Errorf("saved units %+v, want only u3", rec.put)
	}
	n := 0
	_ = st.LoadUnits(ctx, "t5", 1, func(UnitState) error { n++; return nil })
	if n != 3 {
		t.Errorf("stored units %d, want 3", n)
	}
}

// recordingStore records the units each save puts.
type recordingStore struct {
	*MemStore
	put []UnitState
}

func (r *recordingStore) SaveWindow(ctx context.Context, w WindowCells, units UnitChanges) error {
	r.put = append(r.put, units.Put...)
	return r.MemStore.SaveWindow(ctx, w, units)
}

// keepUnitsStore is a store that keeps closed windows' units, as the
// PostgreSQL store does (other replicas' units are merged with them).
type keepUnitsStore struct{ *MemStore }

func (k keepUnitsStore) SaveWindow(ctx context.Context, w WindowCells, units UnitChanges) error {
	units.Drop = false
	return k.MemStore.SaveWindow(ctx, w, units)
}

// failingStore refuses every save, as a store whose server is down.
type failingStore struct{ *MemStore }

func (failingStore) SaveWindow(context.Context, WindowCells, UnitChanges) error {
	return errors.New("store unreachable")
}

// TestFinalizeWaitsForUnsavedUnits: a window closed for pruneGrace whose
// last units were not saved (the save failed) saves them before it frees
// them, so a store that keeps closed windows' units has every unit.
func TestFinalizeWaitsForUnsavedUnits(t *testing.T) {
	ctx := context.Background()
	h := hashTable{"t5/u1": "on", "t5/u2": "off"}
	s, c, clk := newWorked(t, h)
	st := keepUnitsStore{NewMemStore()}
	c.ConsumeObservation(newObs("u1", time.Minute).serve("t5", "on", "Svc5").latency("Svc5", 3).build())
	if err := s.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	c.ConsumeObservation(newObs("u2", time.Minute).serve("t5", "off", "Svc5").latency("Svc5", 5).build())
	if err := s.Flush(ctx, failingStore{st.MemStore}); err == nil {
		t.Fatal("a flush to a failing store succeeded")
	}
	clk.Set(t0.Add(time.Hour))
	setTest(t, s, "t5", func(x *Test) { x.Aggregate = assign.AggregateAny }) // a new window
	clk.Set(t0.Add(time.Hour + pruneGrace))
	units := func() int {
		n := 0
		_ = st.LoadUnits(ctx, "t5", 1, func(UnitState) error { n++; return nil })
		return n
	}
	holds := func() bool {
		for _, w := range c.ws.all() {
			if w.viewpoint == "t5" && w.seq == 1 {
				return w.units != nil
			}
		}
		return false
	}
	if err := s.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	if n := units(); n != 2 {
		t.Errorf("stored units of the closed window: %d, want 2 (u2's save failed before it closed)", n)
	}
	if err := s.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	if holds() {
		t.Error("the closed window still holds its units once they are saved")
	}
}

// TestRetryAfterFailedSaveCarriesOnlyUnsaved: after a failed save the
// next one carries the units that failed and those changed since, not
// every unit of the window (a long outage of the store must not make the
// retry a rewrite of the whole window).
func TestRetryAfterFailedSaveCarriesOnlyUnsaved(t *testing.T) {
	ctx := context.Background()
	h := hashTable{"t5/u1": "on", "t5/u2": "off", "t5/u3": "on"}
	s, c, _ := newWorked(t, h)
	st := &recordingStore{MemStore: NewMemStore()}
	c.ConsumeObservation(newObs("u1", time.Minute).serve("t5", "on", "Svc5").latency("Svc5", 3).build())
	if err := s.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	c.ConsumeObservation(newObs("u2", time.Minute).serve("t5", "off", "Svc5").latency("Svc5", 5).build())
	if err := s.Flush(ctx, failingStore{st.MemStore}); err == nil {
		t.Fatal("a flush to a failing store succeeded")
	}
	c.ConsumeObservation(newObs("u3", time.Minute).serve("t5", "on", "Svc5").latency("Svc5", 7).build())
	st.put = nil
	if err := s.Flush(ctx, st); err != nil {
		t.Fatal(err)
	}
	var keys []uint64
	for _, u := range st.put {
		keys = append(keys, u.Key)
	}
	slices.Sort(keys)
	want := []uint64{UnitKey("u2"), UnitKey("u3")}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("the retry saved units %v, want u2 and u3 only %v", keys, want)
	}
	n := 0
	_ = st.LoadUnits(ctx, "t5", 1, func(UnitState) error { n++; return nil })
	if n != 3 {
		t.Errorf("stored units %d, want 3", n)
	}
}
