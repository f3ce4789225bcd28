package analysis

import "math"

// RatioStats are the sufficient statistics of one cell of a ratio metric
// over its units: each unit u contributes a pair (s_u, n_u), its metric
// sum and its number of requests. They hold the unit count K, the means
// of s and n, and their centred second moments and co-moment, updated one
// unit at a time (bivariate Welford) and merged pairwise (Chan et al.),
// like CellStats.
//
// The cell's estimate is the request-level mean R = Σ s_u / Σ n_u, and
// its variance is Deng, Knoblich & Lu's delta method over units
// ("Applying the Delta Method in Metric Analytics", KDD 2018):
//
//	Var(R) = (σ²_s − 2·R·σ_sn + R²·σ²_n) / (K · n̄²)
//
// with σ² and σ_sn the sample (K − 1) variances and covariance of the
// units' s and n, and n̄ = Σ n_u / K.
type RatioStats struct {
	K     int64   `json:"k"`
	MeanS float64 `json:"mean_s"`
	MeanN float64 `json:"mean_n"`
	M2S   float64 `json:"m2_s"`
	M2N   float64 `json:"m2_n"`
	CSN   float64 `json:"c_sn"`
}

// Add adds one unit with metric sum s over n requests.
func (r *RatioStats) Add(s, n float64) {
	r.K++
	k := float64(r.K)
	ds := s - r.MeanS
	dn := n - r.MeanN
	r.MeanS += ds / k
	r.MeanN += dn / k
	r.M2S += ds * (s - r.MeanS)
	r.M2N += dn * (n - r.MeanN)
	r.CSN += ds * (n - r.MeanN)
}

// Merge adds the units summarised by o (Chan's parallel update, with the
// co-moment term δ_s·δ_n·K_a·K_b/K).
func (r *RatioStats) Merge(o RatioStats) {
	if o.K == 0 {
		return
	}
	if r.K == 0 {
		*r = o
		return
	}
	ka, kb := float64(r.K), float64(o.K)
	k := ka + kb
	ds := o.MeanS - r.MeanS
	dn := o.MeanN - r.MeanN
	r.MeanS += ds * kb / k
	r.MeanN += dn * kb / k
	r.M2S += o.M2S + ds*ds*ka*kb/k
	r.M2N += o.M2N + dn*dn*ka*kb/k
	r.CSN += o.CSN + ds*dn*ka*kb/k
	r.K += o.K
}

// Ratio is Σ s / Σ n; NaN when there are no units or no requests.
func (r RatioStats) Ratio() float64 {
	if r.K == 0 || r.MeanN == 0 {
		return math.NaN()
	}
	return r.MeanS / r.MeanN
}

// Requests is Σ n over the units.
func (r RatioStats) Requests() float64 { return r.MeanN * float64(r.K) }

// Variance is the delta-method variance of Ratio (see RatioStats); NaN
// when K < 2 or there are no requests.
func (r RatioStats) Variance() float64 {
	if r.K < 2 || r.MeanN == 0 {
		return math.NaN()
	}
	k := float64(r.K)
	ratio := r.MeanS / r.MeanN
	v := (r.M2S - 2*ratio*r.CSN + ratio*ratio*r.M2N) / (k - 1)
	return max(v, 0) / (k * r.MeanN * r.MeanN)
}
