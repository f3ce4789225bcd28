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
// the distinct units per arm (abmesh's check) and on the requests per arm
// (the check before per-unit counting), over windows with a true 50/50
// split and with an ImbalancedShare split, at Threshold. In the windows
// with a true split the viewpoint has SubsetTests − 1 more members, each
// hashed with its own salt, and the report's flag is also measured: any
// member's check or the joint check over the subset's cells.
type SRMResult struct {
	Threshold   float64    `json:"threshold"`
	SubsetTests int        `json:"subset_tests"`
	Null        SRMRates   `json:"null"`
	Imbalance   []SRMRates `json:"imbalance"`
}

// SRMRates is how often the check flagged over windows of one size.
type SRMRates struct {
	// Share is the viewpoint's treatment share (the check expects 0.5).
	Share   float64 `json:"share"`
	Units   int     `json:"units"`
	Windows int     `json:"windows"`
	// UnitRate and RequestRate are the fractions of windows in which the
	// viewpoint's chi-square on units and on requests flagged.
	UnitRate    float64 `json:"unit_rate"`
	RequestRate float64 `json:"request_rate"`
	// SubsetRate is the fraction of windows the report flags for a subset
	// of SRMResult.SubsetTests tests (true-split windows only): a
	// member's check on units or the joint check on the units per cell.
	SubsetRate float64 `json:"subset_rate,omitempty"`
	// UnitTheory and RequestTheory are the rates theory expects: for
	// units, the threshold under a true split and the power of a 1-df
	// chi-square with noncentrality λ = 4n(share − ½)² otherwise; for
	// requests, the same with the statistic inflated by E[N²]/E[N] =
	// 2m − 1 (geometric N of mean m, independent of the arm).
	UnitTheory    float64 `json:"unit_theory"`
	RequestTheory float64 `json:"request_theory"`
	// SubsetTheory is 1 − (1 − threshold)^(k+1) for k tests: the rate if
	// the k member checks and the joint check were independent.
	SubsetTheory float64 `json:"subset_theory,omitempty"`
}

// srmSubsetTests is the size of the subset in the true-split windows.
const srmSubsetTests = 3

// CheckSRM runs the sample-ratio check on repeat traffic: in every window,
// units "u1", "u2", … are split by the real hash (assign.Hash with a
// per-window and per-test salt) into two arms of each test, each makes a
// geometric number of requests (mean RepeatOptions.Requests), and
// analysis.SRM tests the units per arm and the requests per arm against
// 50/50 at analysis.DefaultSRMThreshold. NullWindows windows of Units
// units have true splits of three tests (the report's flag over the
// subset is measured too); DetectWindows windows of the viewpoint alone
// have ImbalancedShare and are read at each of DetectUnits units.
func CheckSRM(ctx context.Context, opt RepeatOptions) (SRMResult, error) {
	if err := opt.validate(); err != nil {
		return SRMResult{}, err
	}
	res := SRMResult{Threshold: analysis.DefaultSRMThreshold, SubsetTests: srmSubsetTests}
	null, err := srmRates(ctx, &opt, srmSpec{check: "srm null", windows: opt.NullWindows, share: 0.5, tests: srmSubsetTests, sizes: []int{opt.Units}})
	if err != nil {
		return res, err
	}
	res.Null = null[0]
	sizes := slices.Sorted(slices.Values(opt.DetectUnits))
	if res.Imbalance, err = srmRates(ctx, &opt, srmSpec{check: "srm imbalance", windows: opt.DetectWindows, share: ImbalancedShare, tests: 1, sizes: sizes}); err != nil {
		return res, err
	}
	return res, nil
}

// srmSpec is one set of SRM windows: the viewpoint's true share, the
// tests of the subset (the others split 50/50) and the ascending sizes
// at which each window is tested.
type srmSpec struct {
	check   string
	windows int
	share   float64
	tests   int
	sizes   []int
}

// srmRates runs the spec's windows and returns the rates per size.
func srmRates(ctx context.Context, opt *RepeatOptions, sp srmSpec) ([]SRMRates, error) {
	seed := repeatSeed(opt.Seed, sp.check)
	flags := make([][]srmFlags, sp.windows)
	newWork := func() func(context.Context, int) error {
		return func(ctx context.Context, w int) (err error) {
			flags[w], err = srmWindow(ctx, seed, w, opt.Requests, sp)
			return err
		}
	}
	if err := parallel(ctx, sp.windows, opt.Workers, newWork, opt.progress(sp.check, sp.windows)); err != nil {
		return nil, err
	}
	thr := analysis.DefaultSRMThreshold
	out := make([]SRMRates, len(sp.sizes))
	for i, n := range sp.sizes {
		r := SRMRates{Share: sp.share, Units: n, Windows: sp.windows}
		for w := range flags {
			r.UnitRate += b2f(flags[w][i].units) / float64(sp.windows)
			r.RequestRate += b2f(flags[w][i].requests) / float64(sp.windows)
			if sp.tests > 1 {
				r.SubsetRate += b2f(flags[w][i].subset) / float64(sp.windows)
			}
		}
		r.UnitTheory, r.RequestTheory = srmTheory(n, sp.share, opt.Requests, thr)
		if sp.tests > 1 {
			r.SubsetTheory = 1 - math.Pow(1-analysis.SRMFamilyThreshold(sp.tests+1), float64(sp.tests+1))
		}
		out[i] = r
	}
	return out, nil
}

// srmFlags says which checks flagged one window at one size: the
// viewpoint's on units and on requests, and the report's over the subset.
type srmFlags struct{ units, requests, subset bool }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// srmCounts are one window's counts: units per cell of the subset's 2^k
// design (bit k−1−f set: test f's treatment, the viewpoint f = 0 the
// slowest) and requests per arm of the viewpoint.
type srmCounts struct {
	cells    []int64
	requests [2]int64
}

// srmWindow simulates window w of the spec: units split by the hash,
// geometric requests of mean m; at each of the ascending sizes it tests
// the counts so far.
func srmWindow(ctx context.Context, seed uint64, w int, m float64, sp srmSpec) ([]srmFlags, error) {
	rng := repRand(seed, w)
	salts := make([]string, sp.tests)
	cuts := make([]uint32, sp.tests)
	for t := range salts {
		salts[t] = "srm-" + strconv.FormatUint(seed, 16) + "-" + strconv.Itoa(w) + "-t" + strconv.Itoa(t)
		cuts[t] = srmBuckets / 2
	}
	cuts[0] = uint32(math.Round(sp.share * srmBuckets))
	c := srmCounts{cells: make([]int64, 1<<sp.tests)}
	out := make([]srmFlags, 0, len(sp.sizes))
	id := []byte("u")
	next := 0
	for i := 1; next < len(sp.sizes); i++ {
		if i&65535 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		id = strconv.AppendInt(id[:1], int64(i), 10)
		cell := 0
		for t, salt := range salts {
			cell <<= 1
			if assign.Bucket(assign.Hash(salt, string(id)), srmBuckets) < cuts[t] {
				cell |= 1
			}
		}
		c.cells[cell]++
		c.requests[cell>>(sp.tests-1)] += int64(truth.Geometric(rng, m))
		if i == sp.sizes[next] {
			f, err := c.test(sp.tests)
			if err != nil {
				return nil, fmt.Errorf("srm window %d at %d units: %w", w, i, err)
			}
			out = append(out, f)
			next++
		}
	}
	return out, nil
}

// test runs analysis.SRM against even splits, as the report does: on each
// test's units per arm (the viewpoint's also on its requests per arm) and,
// for more than one test, on the units per cell. The viewpoint's checks
// alone are read at analysis.DefaultSRMThreshold; the subset's flag, like
// the report's, at analysis.SRMFamilyThreshold of its checks.
func (c *srmCounts) test(tests int) (srmFlags, error) {
	var f srmFlags
	even := []float64{1, 1}
	family := analysis.DefaultSRMThreshold
	if tests > 1 {
		family = analysis.SRMFamilyThreshold(tests + 1)
	}
	for t := range tests {
		var arms [2]int64
		for cell, n := range c.cells {
			arms[cell>>(tests-1-t)&1] += n
		}
		r, err := analysis.SRM(arms[:], even, analysis.DefaultSRMThreshold)
		if err != nil {
			return f, err
		}
		if t == 0 {
			f.units = r.Flagged
		}
		f.subset = f.subset || r.P < family
	}
	r, err := analysis.SRM(c.requests[:], even, analysis.DefaultSRMThreshold)
	if err != nil {
		return f, err
	}
	f.requests = r.Flagged
	if tests > 1 {
		joint, err := analysis.SRM(c.cells, slices.Repeat([]float64{1}, len(c.cells)), analysis.DefaultSRMThreshold)
		if err != nil {
			return f, err
		}
		f.subset = f.subset || joint.P < family
	}
	return f, nil
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
