package subset

import (
	"slices"
	"strconv"
	"strings"

	"github.com/abmesh/abmesh/assign"
)

// OutsideLevel is the level of a layer factor for units outside the slice
// of every one of its tests.
const OutsideLevel = "outside"

// LevelSep separates the test from the variant in a layer factor's level
// names ("pay-button/one-click"). Test ids cannot contain it.
const LevelSep = "/"

// newLayerFactor returns the factor of the tests of layer in one subset
// (two or more, sorted by id, each a member with its Layer and Slice set),
// named name: its levels are every test's "test/variant" pairs, in order,
// then OutsideLevel unless the tests' slices cover the layer's buckets.
func newLayerFactor(name, layer string, tests []WindowMember) WindowMember {
	f := WindowMember{Test: name, Layer: layer, Tests: tests}
	var covered uint32
	for _, t := range tests {
		for _, v := range t.Variants {
			f.Variants = append(f.Variants, t.Test+LevelSep+v)
		}
		covered += t.Slice.End - t.Slice.Start
	}
	if covered < assign.LayerBuckets {
		f.Variants = append(f.Variants, OutsideLevel)
	}
	return f
}

// layerFactorName is the name of layer's factor in sub: the layer id, or
// "layer/" + the id when a test of sub has that id (factor names are
// unique; test ids never contain LevelSep).
func layerFactorName(sub Subset, layer string) string {
	for _, m := range sub.Members {
		if m.Test == layer {
			return "layer" + LevelSep + layer
		}
	}
	return layer
}

// IsLayer reports whether m is a layer factor (its Tests are set).
func (m WindowMember) IsLayer() bool { return len(m.Tests) > 0 }

// Outside returns the index of a layer factor's OutsideLevel; −1 when it
// has none (its tests' slices cover the layer) or m is not a layer factor.
func (m WindowMember) Outside() int {
	if !m.IsLayer() || len(m.Variants) == 0 || m.Variants[len(m.Variants)-1] != OutsideLevel {
		return -1
	}
	return len(m.Variants) - 1
}

// offsets returns, for each of a layer factor's Tests, the index of its
// first level (its control).
func (m WindowMember) offsets() []int {
	out := make([]int, len(m.Tests))
	n := 0
	for i, t := range m.Tests {
		out[i] = n
		n += len(t.Variants)
	}
	return out
}

// Reference returns, for a layer factor, each level's control as
// analysis.Factor.Reference takes it: a test's variants refer to that
// test's control, a control and OutsideLevel to none (−1). It is nil for
// any other member (its first variant is the control).
func (m WindowMember) Reference() []int {
	if !m.IsLayer() {
		return nil
	}
	ref := make([]int, 0, len(m.Variants))
	for i, off := range m.offsets() {
		ref = append(ref, -1)
		for range len(m.Tests[i].Variants) - 1 {
			ref = append(ref, off)
		}
	}
	for len(ref) < len(m.Variants) {
		ref = append(ref, -1)
	}
	return ref
}

// Shares returns the expected share of each of a layer factor's levels
// given each test's variant weights (weights[i] for Tests[i], one per
// variant): a test's variant gets its slice's share of the layer times
// its weight's share of the test's weights, OutsideLevel the rest of the
// layer. ok is false when m is not a layer factor, or a test's weights do
// not match its variants or sum to 0.
func (m WindowMember) Shares(weights [][]float64) (shares []float64, ok bool) {
	if !m.IsLayer() || len(weights) != len(m.Tests) {
		return nil, false
	}
	inside := 0.0
	for i, t := range m.Tests {
		if len(weights[i]) != len(t.Variants) {
			return nil, false
		}
		var sum float64
		for _, w := range weights[i] {
			sum += w
		}
		if !(sum > 0) {
			return nil, false
		}
		slice := float64(t.Slice.End-t.Slice.Start) / assign.LayerBuckets
		inside += slice
		for _, w := range weights[i] {
			shares = append(shares, slice*w/sum)
		}
	}
	if m.Outside() >= 0 {
		shares = append(shares, max(0, 1-inside))
	}
	return shares, len(shares) == len(m.Variants)
}

// clone returns a deep copy of m (its Variants, Reasons and Tests).
func (m WindowMember) clone() WindowMember {
	m.Variants = slices.Clone(m.Variants)
	m.Reasons = slices.Clone(m.Reasons)
	if m.Tests != nil {
		tests := make([]WindowMember, len(m.Tests))
		for i, t := range m.Tests {
			tests[i] = t.clone()
		}
		m.Tests = tests
	}
	return m
}

// takeReasons sets m's reasons, and its Tests', from v, a member of the
// same signature.
func (m *WindowMember) takeReasons(v WindowMember) {
	m.Reasons = v.Reasons
	for i := range m.Tests {
		m.Tests[i].takeReasons(v.Tests[i])
	}
}

// writeSignature appends m's part of a window signature: its id, phase,
// stickiness and variants, and for a layer factor its layer and each
// test's part with its slice.
func (m WindowMember) writeSignature(b *strings.Builder) {
	b.WriteByte(0)
	b.WriteString(m.Test)
	b.WriteByte(1)
	b.WriteString(strconv.Itoa(m.Phase))
	if m.Sticky {
		b.WriteString("s")
	}
	for _, v := range m.Variants {
		b.WriteByte(1)
		b.WriteString(v)
	}
	if m.Layer == "" {
		return
	}
	b.WriteByte(2)
	b.WriteString(m.Layer)
	b.WriteByte(1)
	b.WriteString(strconv.FormatUint(uint64(m.Slice.Start), 10) + "-" + strconv.FormatUint(uint64(m.Slice.End), 10))
	for _, t := range m.Tests {
		t.writeSignature(b)
	}
	b.WriteByte(3)
}

// layerPlan is how a CellCounter finds a layer factor's level: its tests
// (their radix unused), the level of each test's control, and the level
// of OutsideLevel (−1 when none).
type layerPlan struct {
	tests   []memberPlan
	offsets []int
	outside int
}

// newMemberPlan returns the counting plan of window member m, whose cell
// key weight is radix; index maps running test ids to their position in
// the plan.
func newMemberPlan(index map[string]int32, m WindowMember, radix uint64) memberPlan {
	mp := memberPlan{idx: index[m.Test], test: m.Test, phase: m.Phase, sticky: m.Sticky, variants: m.Variants, radix: radix}
	if !m.IsLayer() {
		return mp
	}
	mp.idx = -1
	lp := &layerPlan{offsets: m.offsets(), outside: m.Outside()}
	for _, t := range m.Tests {
		lp.tests = append(lp.tests, newMemberPlan(index, t, 0))
	}
	mp.layer = lp
	return mp
}

// conflicted reports whether m, or a layer factor's test, was served
// conflicting variants.
func (m *memberPlan) conflicted(sc *scratch) bool {
	if m.layer == nil {
		return sc.conflicted(m.idx)
	}
	for i := range m.layer.tests {
		if sc.conflicted(m.layer.tests[i].idx) {
			return true
		}
	}
	return false
}

// layerLevel returns layer factor lp's level for the unit, or the Quality
// counter that excludes the observation, as CellCounter says.
func (c *CellCounter) layerLevel(lp *layerPlan, unit string, sc *scratch) (level, q int) {
	level = -1
	outside := 0 // tests served what every unit outside their slice gets
	for i := range lp.tests {
		t := &lp.tests[i]
		e := sc.exposure(t.idx)
		if e == nil {
			continue
		}
		if r := reasonExclusion(e.Reason); r >= 0 {
			if r != qOverride && c.outsideSlice(t, unit, r) {
				outside++
				continue
			}
			return -1, r
		}
		vi, q := servedLevel(t, e, sc)
		if q >= 0 {
			return -1, q
		}
		if level >= 0 {
			return -1, qMismatch // two slices of one layer claim the unit
		}
		level = lp.offsets[i] + vi
	}
	if level >= 0 {
		return level, -1
	}
	if c.slice == nil {
		if outside == len(lp.tests) && lp.outside >= 0 {
			return lp.outside, -1 // every test said so
		}
		return -1, qNotInSlice // no way to tell which slice holds the unit
	}
	for i := range lp.tests {
		t := &lp.tests[i]
		if sc.exposure(t.idx) == nil && c.slice.InSlice(t.test, unit) {
			vi, q := hashLevel(t, sc)
			if q >= 0 {
				return -1, q
			}
			return lp.offsets[i] + vi, -1
		}
	}
	if lp.outside < 0 {
		return -1, qNotInSlice
	}
	return lp.outside, -1
}

// outsideSlice reports whether the unit is outside layer test t's slice:
// by the SliceChecker, or without one by t's exposure reason (counter r).
func (c *CellCounter) outsideSlice(t *memberPlan, unit string, r int) bool {
	if c.slice != nil {
		return !c.slice.InSlice(t.test, unit)
	}
	return r == qNotInSlice
}
