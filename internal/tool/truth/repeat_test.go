package truth

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
)

var aggregates = []assign.Aggregate{assign.AggregateMean, assign.AggregateSum, assign.AggregateAny, assign.AggregateCount, assign.AggregateRatio}

func TestGeometric(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, mean = 200000, 5.0
	var sum, ones float64
	for range n {
		k := Geometric(rng, mean)
		if k < 1 {
			t.Fatalf("draw %d < 1", k)
		}
		sum += float64(k)
		if k == 1 {
			ones++
		}
	}
	// Var N = m(m − 1) for the geometric on {1, 2, …}; P(N = 1) = 1/m.
	if se := math.Sqrt(mean * (mean - 1) / n); math.Abs(sum/n-mean) > 4*se {
		t.Errorf("mean %v, want %v ± %v", sum/n, mean, 4*se)
	}
	if p, se := ones/n, math.Sqrt(0.2*0.8/n); math.Abs(p-0.2) > 4*se {
		t.Errorf("P(N = 1) = %v, want 0.2", p)
	}
	if Geometric(rng, 1) != 1 || Geometric(rng, 0.5) != 1 {
		t.Error("a mean ≤ 1 must give one request")
	}
}

func TestRepeatValidate(t *testing.T) {
	for _, r := range []Repeat{{MeanRequests: 0.5}, {MeanRequests: math.NaN()}, {MeanRequests: math.Inf(1)},
		{MeanRequests: 5, ICC: 1}, {MeanRequests: 5, ICC: -0.1}, {MeanRequests: 5, ICC: math.NaN()}} {
		if r.Validate() == nil {
			t.Errorf("%+v: no error", r)
		}
	}
	if err := (&Repeat{MeanRequests: 1}).Validate(); err != nil {
		t.Error(err)
	}
	m := twoByTwo()
	r := Repeat{MeanRequests: 1.5, RequestTerms: []Term{Main("a", "on", -1)}}
	if _, err := r.Expected(m, assign.AggregateMean, map[string]string{"a": "on"}); err == nil {
		t.Error("a cell with 0.5 requests per unit: no error")
	}
	if _, err := r.Expected(m, assign.Aggregate(9), nil); err == nil {
		t.Error("unknown aggregate: no error")
	}
}

// Two requests of one unit correlate with ρ for a Normal metric.
func TestRepeatWithinUnitCorrelation(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	m := &Model{Dist: Normal, SD: 2}
	r := Repeat{MeanRequests: 5, ICC: 0.3}
	const n = 40000
	var sx, sy, sxx, syy, sxy float64
	var vals []float64
	for i := 0; i < n; {
		if vals = r.Unit(rng, m, 0, r.MeanRequests, vals[:0]); len(vals) < 2 {
			continue // N is independent of the values: keep units with two requests
		}
		i++
		x, y := vals[0], vals[1]
		sx, sy, sxx, syy, sxy = sx+x, sy+y, sxx+x*x, syy+y*y, sxy+x*y
	}
	cov := sxy/n - sx/n*sy/n
	rho := cov / math.Sqrt((sxx/n-sx*sx/n/n)*(syy/n-sy*sy/n/n))
	// SE of a correlation ≈ (1 − ρ²)/√n.
	if se := (1 - 0.09) / math.Sqrt(n); math.Abs(rho-0.3) > 4*se {
		t.Errorf("within-unit correlation %.4f, want 0.3 ± %.4f", rho, 4*se)
	}
	if v := (sxx/n - sx*sx/n/n); math.Abs(v-4) > 4*4*math.Sqrt(2.0/n) {
		t.Errorf("request variance %.3f, want SD² = 4", v)
	}
}

// Expected against simulation: for every aggregate, a Normal and a
// Bernoulli metric, with and without correlation, the mean over many
// simulated units of their aggregated values (for ratio Σ sums / Σ
// requests) is within 4 standard errors of Expected.
func TestRepeatExpectedBySimulation(t *testing.T) {
	normal := &Model{Dist: Normal, Baseline: 10, SD: 4, Terms: []Term{Main("a", "on", 2)}}
	bern := &Model{Dist: Bernoulli, Baseline: 0.1, Terms: []Term{Main("a", "on", 0.05)}}
	served := map[string]string{"a": "on"}
	const n = 60000
	for _, icc := range []float64{0, 0.3} {
		r := Repeat{MeanRequests: 4, RequestTerms: []Term{Main("a", "on", 1)}, ICC: icc}
		for _, m := range []*Model{normal, bern} {
			rng := rand.New(rand.NewPCG(7, uint64(icc*10)))
			sims := make([]analysis.CellStats, len(aggregates))
			var ratio analysis.RatioStats
			var vals []float64
			mean, reqs := m.Mean(served), r.Requests(served)
			for range n {
				vals = r.Unit(rng, m, mean, reqs, vals[:0])
				for i, agg := range aggregates {
					sims[i].Add(UnitValue(agg, vals))
				}
				ratio.Add(UnitValue(assign.AggregateRatio, vals), float64(len(vals)))
			}
			for i, agg := range aggregates {
				want, err := r.Expected(m, agg, served)
				if err != nil {
					t.Fatal(err)
				}
				got, se := sims[i].Mean, sims[i].SD()/math.Sqrt(n)
				if agg == assign.AggregateRatio {
					got, se = ratio.Ratio(), math.Sqrt(ratio.Variance())
				}
				if math.Abs(got-want) > 4*se+1e-12 {
					t.Errorf("%v metric, ρ = %v, %v: simulated %.5f ± %.5f, Expected %.5f", m.Dist, icc, agg, got, se, want)
				}
			}
		}
	}
}

// P(any) in closed form where it has one: ρ = 0 (1 − G(1 − μ)), one
// request per unit (μ), and the limits of the mean.
func TestRepeatProbAnyClosedForms(t *testing.T) {
	m := &Model{Dist: Bernoulli, Baseline: 0.2}
	for _, tt := range []struct {
		r    Repeat
		mu   float64
		want float64
	}{
		{Repeat{MeanRequests: 5}, 0.2, 1 - 0.2*0.8/(1-0.8*0.8)},
		{Repeat{MeanRequests: 1, ICC: 0.6}, 0.2, 0.2},
		{Repeat{MeanRequests: 5, ICC: 0.3}, 0, 0},
		{Repeat{MeanRequests: 5, ICC: 0.3}, 1, 1},
	} {
		m.Baseline = tt.mu
		got, err := tt.r.Expected(m, assign.AggregateAny, nil)
		if err != nil || math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%+v, μ = %v: P(any) = %v, %v; want %v", tt.r, tt.mu, got, err, tt.want)
		}
	}
	// Correlation concentrates a unit's successes: fewer units convert.
	r0, r3 := Repeat{MeanRequests: 5}, Repeat{MeanRequests: 5, ICC: 0.3}
	m.Baseline = 0.2
	p0, _ := r0.Expected(m, assign.AggregateAny, nil)
	p3, _ := r3.Expected(m, assign.AggregateAny, nil)
	if !(p3 < p0) {
		t.Errorf("P(any) with ρ = 0.3 %v not below ρ = 0's %v", p3, p0)
	}
	normal := &Model{Dist: Normal, Baseline: 3, SD: 1}
	if p, _ := r3.Expected(normal, assign.AggregateAny, nil); p != 1 {
		t.Errorf("Normal P(any) = %v, want 1", p)
	}
}

// Factorial under sum: contrasts of Requests·μ, by hand for a 2×2.
func TestRepeatFactorial(t *testing.T) {
	m := twoByTwo() // cell means 10, 12 (a), 14 (b), 22 (both)
	r := Repeat{MeanRequests: 5, RequestTerms: []Term{Main("b", "on", 1)}, ICC: 0.3}
	factors := []analysis.Factor{{Name: "a", Levels: []string{"off", "on"}}, {Name: "b", Levels: []string{"off", "on"}}}
	// Expected sums: 50, 60 (a), 84 (b), 132 (both).
	for _, tt := range []struct {
		agg      assign.Aggregate
		a, b, ab float64
	}{
		{agg: assign.AggregateSum, a: (60 + 132 - 50 - 84) / 2.0, b: (84 + 132 - 50 - 60) / 2.0, ab: 132 - 84 - 60 + 50},
		{agg: assign.AggregateCount, a: 0, b: 1, ab: 0},
		{agg: assign.AggregateMean, a: 2 + 3, b: 4 + 3, ab: 6},
		{agg: assign.AggregateRatio, a: 2 + 3, b: 4 + 3, ab: 6},
	} {
		e, err := r.Factorial(m, tt.agg, factors)
		if err != nil {
			t.Fatal(err)
		}
		a, b, ab := e.Effect("a", "on"), e.Effect("b", "on"), e.Interaction("a:b")
		if a == nil || b == nil || ab == nil {
			t.Fatalf("%v: missing effect or interaction", tt.agg)
		}
		if math.Abs(a.Diff-tt.a) > 1e-9 || math.Abs(b.Diff-tt.b) > 1e-9 || math.Abs(ab.Estimate-tt.ab) > 1e-9 {
			t.Errorf("%v: a %v b %v a:b %v, want %v %v %v", tt.agg, a.Diff, b.Diff, ab.Estimate, tt.a, tt.b, tt.ab)
		}
	}
}
