package subset

import "math/bits"

// bitset is a fixed-size set of small non-negative integers (service
// indices).
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) set(i int)      { b[i>>6] |= 1 << (uint(i) & 63) }
func (b bitset) has(i int) bool { return i>>6 < len(b) && b[i>>6]&(1<<(uint(i)&63)) != 0 }

// or adds every element of o (which may be shorter) to b.
func (b bitset) or(o bitset) {
	for i, w := range o {
		b[i] |= w
	}
}

// intersects reports whether b and o share an element.
func (b bitset) intersects(o bitset) bool {
	n := min(len(b), len(o))
	for i := 0; i < n; i++ {
		if b[i]&o[i] != 0 {
			return true
		}
	}
	return false
}

// and returns b ∩ o as a new set of b's size.
func (b bitset) and(o bitset) bitset {
	r := make(bitset, len(b))
	n := min(len(b), len(o))
	for i := 0; i < n; i++ {
		r[i] = b[i] & o[i]
	}
	return r
}

// andOf sets b to x ∩ y (b, x and y of one size).
func (b bitset) andOf(x, y bitset) {
	for i := range b {
		b[i] = x[i] & y[i]
	}
}

func (b bitset) empty() bool {
	for _, w := range b {
		if w != 0 {
			return false
		}
	}
	return true
}

// each calls f for every element in increasing order.
func (b bitset) each(f func(i int)) {
	for wi, w := range b {
		for w != 0 {
			t := bits.TrailingZeros64(w)
			f(wi<<6 | t)
			w &= w - 1
		}
	}
}

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}
