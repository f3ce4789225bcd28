package truth

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/abmesh/abmesh/analysis"
)

// twoByTwo is a model of two tests a and b with main effects 2 and 4 and
// an interaction of 6.
func twoByTwo() *Model {
	return &Model{Service: "svc", Metric: "attribute:v", Dist: Normal, Baseline: 10, SD: 3, Terms: []Term{
		Main("a", "on", 2),
		Main("b", "on", 4),
		{Tests: []string{"a", "b"}, Variants: []string{"on", "on"}, Effect: 6},
	}}
}

func TestModelMean(t *testing.T) {
	m := twoByTwo()
	for _, tt := range []struct {
		name   string
		served map[string]string
		want   float64
	}{
		{"nothing served", nil, 10},
		{"controls", map[string]string{"a": "off", "b": "off"}, 10},
		{"a alone", map[string]string{"a": "on"}, 12},
		{"b alone", map[string]string{"b": "on"}, 14},
		{"both: main effects and the interaction", map[string]string{"a": "on", "b": "on"}, 10 + 2 + 4 + 6},
		{"other tests do nothing", map[string]string{"c": "on"}, 10},
	} {
		if got := m.Mean(tt.served); got != tt.want {
			t.Errorf("%s: Mean = %v, want %v", tt.name, got, tt.want)
		}
	}
	if m.Key() != "svc/attribute:v" {
		t.Errorf("Key = %q", m.Key())
	}
}

func TestModelValue(t *testing.T) {
	normal := Model{Dist: Normal, SD: 2}
	if got := normal.Value(10, 1.5); got != 13 {
		t.Errorf("normal Value(10, 1.5) = %v, want 13", got)
	}
	b := Model{Dist: Bernoulli}
	// Φ(0) = 0.5: 1 exactly when the mean exceeds one half.
	if b.Value(0.6, 0) != 1 || b.Value(0.4, 0) != 0 {
		t.Error("bernoulli Value at z = 0 does not threshold at 0.5")
	}
	if b.Value(1.5, 5) != 1 || b.Value(-0.5, -5) != 0 {
		t.Error("bernoulli Value does not clamp the mean to [0, 1]")
	}
	if v := b.Variance(0.3); math.Abs(v-0.21) > 1e-12 {
		t.Errorf("bernoulli Variance(0.3) = %v, want 0.21", v)
	}
	if v := normal.Variance(7); v != 4 {
		t.Errorf("normal Variance = %v, want 4", v)
	}
	if Normal.String() != "normal" || Bernoulli.String() != "bernoulli" || Dist(7).String() != "Dist(7)" {
		t.Error("Dist.String")
	}
}

// Outcome draws from the model: check the mean and the spread of many
// draws, and that Bernoulli draws are 0/1 with the right rate.
func TestModelOutcomeDistribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 40000
	m := twoByTwo()
	served := map[string]string{"a": "on", "b": "on"}
	var sum, ss float64
	for range n {
		y := m.Outcome(rng, served)
		sum += y
		ss += y * y
	}
	mean := sum / n
	sd := math.Sqrt(ss/n - mean*mean)
	if math.Abs(mean-22) > 4*3/math.Sqrt(n) {
		t.Errorf("mean of outcomes %v, want 22", mean)
	}
	if math.Abs(sd-3) > 0.1 {
		t.Errorf("SD of outcomes %v, want 3", sd)
	}
	click := &Model{Dist: Bernoulli, Baseline: 0.3, Terms: []Term{Main("a", "on", 0.08)}}
	var ones float64
	for range n {
		switch click.Outcome(rng, map[string]string{"a": "on"}) {
		case 1:
			ones++
		case 0:
		default:
			t.Fatal("bernoulli outcome not 0 or 1")
		}
	}
	if p := ones / n; math.Abs(p-0.38) > 4*math.Sqrt(0.38*0.62/n) {
		t.Errorf("click rate %v, want 0.38", p)
	}
}

// Factorial gives the contrasts of the true cell means: a main effect is
// its own effect plus half the interaction (averaged over the other
// factor's two levels), the interaction its difference of differences,
// and a test outside the factors stays at its control.
func TestModelFactorial(t *testing.T) {
	m := twoByTwo()
	m.Terms = append(m.Terms, Main("c", "on", 100))
	factors := []analysis.Factor{{Name: "a", Levels: []string{"off", "on"}}, {Name: "b", Levels: []string{"off", "on"}}}
	e, err := m.Factorial(factors)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		test string
		want float64
	}{{"a", 2 + 6.0/2}, {"b", 4 + 6.0/2}} {
		if got := e.Effect(tt.test, "on"); got == nil || math.Abs(got.Diff-tt.want) > 1e-12 {
			t.Errorf("main effect of %s = %+v, want %v", tt.test, got, tt.want)
		}
	}
	if got := e.Interaction("a:b"); got == nil || math.Abs(got.Estimate-6) > 1e-12 {
		t.Errorf("interaction a:b = %+v, want 6", got)
	}
	// A three-level factor: each variant against the control.
	three := []analysis.Factor{{Name: "a", Levels: []string{"off", "on", "other"}}}
	if e, err = m.Factorial(three); err != nil {
		t.Fatal(err)
	}
	if on, other := e.Effect("a", "on"), e.Effect("a", "other"); on == nil || on.Diff != 2 || other == nil || other.Diff != 0 {
		t.Errorf("three levels: on %+v, other %+v; want 2 and 0", on, other)
	}
}

func TestDrawAttributes(t *testing.T) {
	attrs := []Attribute{
		{Name: "grade", Values: []string{"regular", "gold", "vip"}, Weights: []float64{7, 2, 1}},
		{Name: "os", Values: []string{"ios", "android"}, Weights: []float64{1, 1}},
	}
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 20000
	counts := map[string]int{}
	for range n {
		got := DrawAttributes(rng, attrs)
		if len(got) != 2 || got["os"] == "" {
			t.Fatalf("DrawAttributes = %v", got)
		}
		counts[got["grade"]]++
	}
	for v, p := range map[string]float64{"regular": 0.7, "gold": 0.2, "vip": 0.1} {
		if got := float64(counts[v]) / n; math.Abs(got-p) > 4*math.Sqrt(p*(1-p)/n) {
			t.Errorf("P(grade=%s) = %v, want %v", v, got, p)
		}
	}
	if DrawAttributes(rng, nil) != nil {
		t.Error("no attributes should draw nil")
	}
}
