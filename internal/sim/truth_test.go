package sim

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func shopFrontend() *Truth { return &Shop().Truths[0] }

func TestTruthMean(t *testing.T) {
	tr := shopFrontend()
	tests := []struct {
		name   string
		served map[string]string
		want   float64
	}{
		{"nothing served", nil, 50},
		{"controls", map[string]string{"rec-model": "control", "ui-layout": "control"}, 50},
		{"rec-model alone", map[string]string{"rec-model": "ml-v2"}, 51},
		{"ui-layout alone", map[string]string{"ui-layout": "two-column"}, 53},
		{"both: main effects and the interaction", map[string]string{"rec-model": "ml-v2", "ui-layout": "two-column"}, 50 + 1 + 3 + 14},
		{"all three", map[string]string{"rec-model": "ml-v2", "ui-layout": "two-column", "catalog-cache": "cached"}, 69},
		{"tests of other metrics do nothing", map[string]string{"pay-button": "one-click", "ad-ranker": "contextual"}, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tr.Mean(tt.served); got != tt.want {
				t.Errorf("Mean = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTruthValue(t *testing.T) {
	normal := Truth{Dist: Normal, SD: 2}
	if got := normal.Value(10, 1.5); got != 13 {
		t.Errorf("normal Value(10, 1.5) = %v, want 13", got)
	}
	b := Truth{Dist: Bernoulli}
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
}

// Outcome draws from the model: check the mean and the spread of many
// draws, and that Bernoulli draws are 0/1 with the right rate.
func TestTruthOutcomeDistribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 40000
	tr := shopFrontend()
	served := map[string]string{"rec-model": "ml-v2", "ui-layout": "two-column"}
	var sum, ss float64
	for range n {
		y := tr.Outcome(rng, served)
		sum += y
		ss += y * y
	}
	mean := sum / n
	sd := math.Sqrt(ss/n - mean*mean)
	if math.Abs(mean-68) > 4*20/math.Sqrt(n) {
		t.Errorf("mean of outcomes %v, want 68", mean)
	}
	if math.Abs(sd-20) > 0.5 {
		t.Errorf("SD of outcomes %v, want 20", sd)
	}
	ad := &Shop().Truths[2]
	var ones float64
	for range n {
		switch ad.Outcome(rng, map[string]string{"ad-ranker": "contextual"}) {
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

func TestCompileTruthErrors(t *testing.T) {
	index := map[string]int{"a": 0, "b": 1}
	treat := []string{"on", "on"}
	tests := []struct {
		name string
		term Term
		want string
	}{
		{"unknown test", Term{Tests: []string{"c"}, Variants: []string{"on"}}, "unknown test"},
		{"control variant", Term{Tests: []string{"a"}, Variants: []string{"off"}}, "not its treatment"},
		{"length mismatch", Term{Tests: []string{"a", "b"}, Variants: []string{"on"}}, "as many"},
		{"empty", Term{}, "at least one"},
		{"repeated test", Term{Tests: []string{"a", "a"}, Variants: []string{"on", "on"}}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileTruth(&Truth{Service: "s", Metric: "m", Terms: []Term{tt.term}}, index, treat)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

// The compiled (bitmask) mean agrees with Mean on every combination.
func TestCompiledTruthMatchesMean(t *testing.T) {
	sc, err := Large(3)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sc.compile()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		s := rng.Uint64() & (1<<len(c.tests) - 1)
		served := map[string]string{}
		for i, tt := range c.tests {
			served[tt.id] = tt.variants[(s>>i)&1]
		}
		for m := range c.truths {
			if got, want := c.truths[m].mean(s), c.truths[m].Mean(served); math.Abs(got-want) > 1e-12 {
				t.Fatalf("truth %s: compiled mean %v, Mean %v", c.truths[m].Key(), got, want)
			}
		}
	}
}
