package analysis

import "math"

// CellStats are the sufficient statistics of one cell's outcome values:
// count, mean and M2 (the sum of squared deviations from the mean). They are
// updated one value at a time (Welford) and merged pairwise (Chan et al.),
// so any number of consumers can add into the same cell.
type CellStats struct {
	N    int64
	Mean float64
	M2   float64
}

// Add adds one value (Welford's update).
func (c *CellStats) Add(x float64) {
	c.N++
	d := x - c.Mean
	c.Mean += d / float64(c.N)
	c.M2 += d * (x - c.Mean)
}

// Merge adds the values summarised by o (Chan's parallel update):
//
//	n = na + nb
//	δ = mean_b − mean_a
//	mean = mean_a + δ·nb/n
//	M2 = M2_a + M2_b + δ²·na·nb/n
func (c *CellStats) Merge(o CellStats) {
	if o.N == 0 {
		return
	}
	if c.N == 0 {
		*c = o
		return
	}
	n := c.N + o.N
	d := o.Mean - c.Mean
	c.Mean += d * float64(o.N) / float64(n)
	c.M2 += o.M2 + d*d*float64(c.N)*float64(o.N)/float64(n)
	c.N = n
}

// Variance is the unbiased sample variance M2/(n−1); NaN when n < 2.
func (c CellStats) Variance() float64 {
	if c.N < 2 {
		return math.NaN()
	}
	return c.M2 / float64(c.N-1)
}

// SD is the sample standard deviation; NaN when n < 2.
func (c CellStats) SD() float64 { return math.Sqrt(c.Variance()) }
