package analysis

import (
	"fmt"
	"math"
)

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

// Linearized returns the statistics of the units' linearised values
//
//	l_u = R + (s_u − R·n_u) / n̄
//
// (the first-order expansion of the ratio around R): their count is K,
// their mean is R exactly (Σ_u (s_u − R·n_u) = 0), and their M2 is
//
//	M2 = Σ_u (s_u − R·n_u)² / n̄² = (M2S − 2·R·CSN + R²·M2N) / n̄²
//
// so that M2/(K − 1)/K is Variance. With one unit M2 is 0; with no unit
// the result is the empty CellStats.
func (r RatioStats) Linearized() CellStats {
	if r.K == 0 || r.MeanN == 0 {
		return CellStats{N: r.K}
	}
	ratio := r.MeanS / r.MeanN
	m2 := (r.M2S - 2*ratio*r.CSN + ratio*ratio*r.M2N) / (r.MeanN * r.MeanN)
	return CellStats{N: r.K, Mean: ratio, M2: max(m2, 0)}
}

// check reports, wrapping ErrInvalidInput, statistics no sequence of Add
// could produce: a negative K, a non-finite or negative moment, or units
// without requests (MeanN ≤ 0 when K > 0).
func (r RatioStats) check() error {
	finite := func(xs ...float64) bool {
		for _, x := range xs {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return false
			}
		}
		return true
	}
	switch {
	case r.K < 0:
		return fmt.Errorf("%w: ratio statistics with %d units", ErrInvalidInput, r.K)
	case r.K == 0:
		return nil
	case !finite(r.MeanS, r.MeanN, r.M2S, r.M2N, r.CSN) || r.M2S < 0 || r.M2N < 0:
		return fmt.Errorf("%w: invalid ratio statistics %+v", ErrInvalidInput, r)
	case r.MeanN <= 0:
		return fmt.Errorf("%w: %d units with no requests (mean requests %v)", ErrInvalidInput, r.K, r.MeanN)
	}
	return nil
}
