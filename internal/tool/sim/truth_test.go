package sim

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/abmesh/abmesh/internal/tool/truth"
)

func TestCompileTruthErrors(t *testing.T) {
	index := map[string]int{"a": 0, "b": 1}
	treat := []string{"on", "on"}
	tests := []struct {
		name string
		term truth.Term
		want string
	}{
		{"unknown test", truth.Term{Tests: []string{"c"}, Variants: []string{"on"}}, "unknown test"},
		{"control variant", truth.Term{Tests: []string{"a"}, Variants: []string{"off"}}, "not its treatment"},
		{"length mismatch", truth.Term{Tests: []string{"a", "b"}, Variants: []string{"on"}}, "as many"},
		{"empty", truth.Term{}, "at least one"},
		{"repeated test", truth.Term{Tests: []string{"a", "a"}, Variants: []string{"on", "on"}}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileTruth(&truth.Model{Service: "s", Metric: "m", Terms: []truth.Term{tt.term}}, index, treat)
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
