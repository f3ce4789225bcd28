package analysis

import "gonum.org/v1/gonum/floats"

// aliasTol is the relative tolerance below which a column counts as a
// linear combination of the columns before it: the same tolerance
// (1e-7) R's lm uses in its pivoting QR (dqrdc2).
const aliasTol = 1e-7

// basis is an orthonormal basis of the span of the columns added so far,
// built by modified Gram–Schmidt with one full re-orthogonalisation pass
// ("twice is enough"), which keeps the basis orthogonal to working
// precision. Columns that are (numerically) in the span already are
// rejected, as R's QR moves aliased columns out of the model.
type basis struct {
	m    int       // length of every vector
	q    []float64 // rank vectors of length m, back to back
	rank int
}

func newBasis(m, capacity int) *basis {
	return &basis{m: m, q: make([]float64, 0, m*capacity)}
}

// reset empties the basis, keeping its storage.
func (b *basis) reset() {
	b.q = b.q[:0]
	b.rank = 0
}

// add orthogonalises x (overwritten) against the basis and appends it,
// normalised, unless its norm falls below aliasTol times its original norm.
// It returns the new vector, or nil when x was rejected.
func (b *basis) add(x []float64) []float64 {
	norm0 := floats.Norm(x, 2)
	if norm0 == 0 {
		return nil
	}
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < b.rank; i++ {
			qi := b.q[i*b.m : (i+1)*b.m]
			floats.AddScaled(x, -floats.Dot(qi, x), qi)
		}
	}
	norm := floats.Norm(x, 2)
	if norm <= aliasTol*norm0 {
		return nil
	}
	floats.Scale(1/norm, x)
	b.q = append(b.q, x...)
	b.rank++
	return b.q[(b.rank-1)*b.m:]
}
