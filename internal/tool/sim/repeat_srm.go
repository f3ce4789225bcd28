package sim

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/tool/truth"
)

// ImbalancedShare is the treatment arm's true share in the SRM check's
// imbalanced windows (the check expects 50/50).
const ImbalancedShare = 0.505

// srmBuckets is the resolution of the simulated split: a unit is in the
// treatment arm when assign.Bucket(assign.Hash(salt, id), srmBuckets) is
// below share·srmBuckets.
const srmBuckets = 10000

// SRMResult is the sample-ratio check on repeat traffic: analysis.SRM on
// the distinct units per arm (abmesh's flag) and on the requests per arm
// (the flag before per-unit counting), over windows with a true 50/50
// split and with an ImbalancedShare split, at Threshold.
type SRMResult struct {
	Threshold float64    `json:"threshold"`
	Null      SRMRates   `json:"null"`
	Imbalance []SRMRates `json:"imbalance"`
}

// SRMRates is how often the check flagged over windows of one size.
type SRMRates struct {
	// Share is the treatment arm's true share (the check expects 0.5).
	Share   float64 `json:"share"`
	Units   int     `json:"units"`
	Windows int     `json:"windows"`
	// UnitRate and RequestRate are the fractions of windows flagged by
	// the chi-square on units and on requests.
	UnitRate    float64 `json:"unit_rate"`
	RequestRate float64 `json:"request_rate"`
	// UnitTheory and RequestTheory are the rates theory expects: for
	// units, the threshold under a true split and the power of a 1-df
	// chi-square with noncentrality λ = 4n(share − ½)² otherwise; for
	// requests, the same with the statistic inflated by E[N²]/E[N] =
	// 2m − 1 (geometric N of mean m, independent of the arm).
	UnitTheory    float64 `json:"unit_theory"`
	RequestTheory float64 `json:"request_theory"`
}

// CheckSRM runs the sample-ratio check on repeat traffic: in every window,
// units "u1", "u2", … are split by the real hash (assign.Hash with a
// per-window salt) into two arms with the true share, each makes a
// geometric number of requests (mean RepeatOptions.Requests), and
// analysis.SRM tests the units per arm and the requests per arm against
// 50/50 at analysis.DefaultSRMThreshold. NullWindows windows of Units
// units have a true split; DetectWindows windows have ImbalancedShare and
// are read at each of DetectUnits units.
func CheckSRM(ctx context.Context, opt RepeatOptions) (SRMResult, error) {
	if err := opt.validate(); err != nil {
		return SRMResult{}, err
	}
	res := SRMResult{Threshold: analysis.DefaultSRMThreshold}
	null, err := srmRates(ctx, &opt, "srm null", opt.NullWindows, 0.5, []int{opt.Units})
	if err != nil {
		return res, err
	}
	res.Null = null[0]
	sizes := slices.Sorted(slices.Values(opt.DetectUnits))
	if res.Imbalance, err = srmRates(ctx, &opt, "srm imbalance", opt.DetectWindows, ImbalancedShare, sizes); err != nil {
		return res, err
	}
	return res, nil
}

// srmRates runs windows windows with the given true share, each read at
// the ascending sizes, and returns the rates per size.
func srmRates(ctx context.Context, opt *RepeatOptions, check string, windows int, share float64, sizes []int) ([]SRMRates, error) {
	seed := repeatSeed(opt.Seed, check)
	flags := make([][]srmFlags, windows)
	newWork := func() func(context.Context, int) error {
		return func(ctx context.Context, w int) (err error) {
			flags[w], err = srmWindow(ctx, seed, w, share, opt.Requests, sizes)
			return err
		}
	}
	if err := parallel(ctx, windows, opt.Workers, newWork, opt.progress(check, windows)); err != nil {
		return nil, err
	}
	out := make([]SRMRates, len(sizes))
	for i, n := range sizes {
		r := SRMRates{Share: share, Units: n, Windows: windows}
		for w := range flags {
			r.UnitRate += b2f(flags[w][i].units) / float64(windows)
			r.RequestRate += b2f(flags[w][i].requests) / float64(windows)
		}
		r.UnitTheory, r.RequestTheory = srmTheory(n, share, opt.Requests, analysis.DefaultSRMThreshold)
		out[i] = r
	}
	return out, nil
}

// srmFlags says which chi-squares flagged one window at one size.
type srmFlags struct{ units, requests bool }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// srmWindow simulates window w: units split by the hash with the given
// share, geometric requests of mean m; at each of the ascending sizes it
// tests the counts so far.
func srmWindow(ctx context.Context, seed uint64, w int, share, m float64, sizes []int) ([]srmFlags, error) {
	rng := repRand(seed, w)
	salt := "srm-" + strconv.FormatUint(seed, 16) + "-" + strconv.Itoa(w)
	cut := uint32(math.Round(share * srmBuckets))
	var units, requests [2]int64
	out := make([]srmFlags, 0, len(sizes))
	id := []byte("u")
	next := 0
	for i := 1; next < len(sizes); i++ {
		if i&65535 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		id = strconv.AppendInt(id[:1], int64(i), 10)
		arm := 0
		if assign.Bucket(assign.Hash(salt, string(id)), srmBuckets) < cut {
			arm = 1
		}
		units[arm]++
		requests[arm] += int64(truth.Geometric(rng, m))
		if i == sizes[next] {
			f, err := srmTest(units, requests)
			if err != nil {
				return nil, fmt.Errorf("srm window %d at %d units: %w", w, i, err)
			}
			out = append(out, f)
			next++
		}
	}
	return out, nil
}

// srmTest runs analysis.SRM on the units and on the requests per arm
// against 50/50.
func srmTest(units, requests [2]int64) (srmFlags, error) {
	even := []float64{1, 1}
	u, err := analysis.SRM(units[:], even, analysis.DefaultSRMThreshold)
	if err != nil {
		return srmFlags{}, err
	}
	r, err := analysis.SRM(requests[:], even, analysis.DefaultSRMThreshold)
	if err != nil {
		return srmFlags{}, err
	}
	return srmFlags{units: u.Flagged, requests: r.Flagged}, nil
}

// srmTheory returns the rates at which the 50/50 chi-square at threshold
// flags n units split with the given share, on units and on requests
// (geometric, mean m, independent of the arm): P(|Z + δ| > c) with c the
// two-sided normal critical value of the threshold, δ = 2√n·|share − ½|
// for units; for requests the statistic is (2m − 1) times a 1-df
// chi-square with δ·√(m/(2m − 1)), so the critical value is c/√(2m − 1).
func srmTheory(n int, share, m, threshold float64) (units, requests float64) {
	c := -math.Sqrt2 * math.Erfinv(threshold-1) // Φ⁻¹(1 − threshold/2)
	d := 2 * math.Sqrt(float64(n)) * math.Abs(share-0.5)
	phi := 2*m - 1
	return twoSidedPower(d, c), twoSidedPower(d*math.Sqrt(m/phi), c/math.Sqrt(phi))
}
