package assign

import (
	"fmt"
	"sync"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// statUnits is the number of sequential unit ids (user-1 … user-N) the
// uniformity and independence tests hash.
const statUnits = 1_000_000

// pThreshold is the p-value below which the chi-square tests reject. The
// inputs are fixed, so the outcome is deterministic: a correct hash passes
// (p well above it) and a broken setup fails (p ≈ 0).
const pThreshold = 1e-4

var (
	statIDsOnce sync.Once
	statIDs     []string
)

func sequentialIDs() []string {
	statIDsOnce.Do(func() {
		statIDs = make([]string, statUnits)
		for i := range statIDs {
			statIDs[i] = unitID(i + 1)
		}
	})
	return statIDs
}

// chiSquareGOF returns the p-value of Pearson's goodness-of-fit test of
// counts against probabilities probs.
func chiSquareGOF(counts []int, probs []float64) float64 {
	n := 0
	for _, c := range counts {
		n += c
	}
	var stat float64
	for i, c := range counts {
		e := probs[i] * float64(n)
		d := float64(c) - e
		stat += d * d / e
	}
	return distuv.ChiSquared{K: float64(len(counts) - 1)}.Survival(stat)
}

// chiSquareIndependence returns the p-value of Pearson's test of
// independence of the rows and columns of the contingency table t.
func chiSquareIndependence(t [][]int) float64 {
	rows, cols := make([]float64, len(t)), make([]float64, len(t[0]))
	var n float64
	for i := range t {
		for j, c := range t[i] {
			rows[i] += float64(c)
			cols[j] += float64(c)
			n += float64(c)
		}
	}
	var stat float64
	for i := range t {
		for j, c := range t[i] {
			e := rows[i] * cols[j] / n
			d := float64(c) - e
			stat += d * d / e
		}
	}
	df := float64((len(t) - 1) * (len(t[0]) - 1))
	return distuv.ChiSquared{K: df}.Survival(stat)
}

// TestUniformity checks, per experiment, that a million sequential ids
// spread over the variants as the weights say (through the Engine) and over
// 100 fine buckets uniformly (through HashBucket).
func TestUniformity(t *testing.T) {
	ids := sequentialIDs()
	tests := []struct {
		salt     string
		variants []Variant
	}{
		{"checkout-v2", weights(1, 1)},
		{"search-ranking", weights(1, 1, 1, 1)},
		{"pricing", weights(90, 10)},
		{"ramp", weights(5, 0, 3, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.salt, func(t *testing.T) {
			x := testExp(tt.salt, tt.variants...)
			e := mustCompile(t, Config{Experiments: []Experiment{x}})
			var total uint32
			for _, v := range tt.variants {
				total += v.Weight
			}
			var probs []float64
			var idx = map[string]int{}
			for _, v := range tt.variants {
				if v.Weight > 0 {
					idx[v.Name] = len(probs)
					probs = append(probs, float64(v.Weight)/float64(total))
				}
			}
			counts := make([]int, len(probs))
			fine := make([]int, 100)
			var buf []Assignment
			for _, id := range ids {
				buf = e.AppendAssignments(buf[:0], id, nil, Filter{})
				i, ok := idx[buf[0].Variant]
				if !ok {
					t.Fatalf("unit %s got zero-weight variant %s", id, buf[0].Variant)
				}
				counts[i]++
				fine[HashBucket(tt.salt, id, 100)]++
			}
			if p := chiSquareGOF(counts, probs); p < pThreshold {
				t.Errorf("variant counts %v: chi-square p = %.3g < %g", counts, p, pThreshold)
			} else {
				t.Logf("variant counts %v: p = %.3g", counts, p)
			}
			uniform := make([]float64, 100)
			for i := range uniform {
				uniform[i] = 0.01
			}
			if p := chiSquareGOF(fine, uniform); p < pThreshold {
				t.Errorf("100 buckets: chi-square p = %.3g < %g", p, pThreshold)
			}
		})
	}
}

// TestIndependence checks that the splits of two experiments (and of a
// layer and an experiment) are independent over a million sequential ids,
// with a contingency table of 10 × 10 buckets. The "same salt" case is the
// broken setup the test exists to catch: it must be rejected.
func TestIndependence(t *testing.T) {
	ids := sequentialIDs()
	tests := []struct {
		name       string
		saltA      string
		saltB      string
		wantReject bool
	}{
		{"two experiments", "checkout-v2", "search-ranking", false},
		{"similar ids", "test-1", "test-2", false},
		{"layer and experiment", "homepage", "banner", false},
		{"same salt (broken)", "checkout-v2", "checkout-v2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := make([][]int, 10)
			for i := range table {
				table[i] = make([]int, 10)
			}
			for _, id := range ids {
				table[HashBucket(tt.saltA, id, 10)][HashBucket(tt.saltB, id, 10)]++
			}
			p := chiSquareIndependence(table)
			if rejected := p < pThreshold; rejected != tt.wantReject {
				t.Errorf("independence p = %.3g; rejected = %v, want %v", p, rejected, tt.wantReject)
			} else {
				t.Logf("p = %.3g", p)
			}
		})
	}
}

// TestIndependenceOfAssignments runs the contingency test on the variants
// the Engine assigns in two running experiments with 2 and 3 variants.
func TestIndependenceOfAssignments(t *testing.T) {
	ids := sequentialIDs()
	a := testExp("exp-a", weights(1, 1)...)
	b := testExp("exp-b", weights(1, 1, 1)...)
	e := mustCompile(t, Config{Experiments: []Experiment{a, b}})
	idx := map[string]int{"control": 0, "v1": 1, "v2": 2}
	table := [][]int{make([]int, 3), make([]int, 3)}
	var buf []Assignment
	for _, id := range ids {
		buf = e.AppendAssignments(buf[:0], id, nil, Filter{})
		if len(buf) != 2 || buf[0].Test != "exp-a" || buf[1].Test != "exp-b" {
			t.Fatalf("assignments %v", buf)
		}
		table[idx[buf[0].Variant]][idx[buf[1].Variant]]++
	}
	if p := chiSquareIndependence(table); p < pThreshold {
		t.Errorf("table %v: independence p = %.3g < %g", table, p, pThreshold)
	}
}

func ExampleHashBucket() {
	fmt.Println(HashBucket("checkout-v2", "user-1", 100))
	fmt.Println(LayerBucket("homepage", "user-1"))
	// Output:
	// 24
	// 4222
}
