package sim

import (
	"fmt"

	"github.com/abmesh/abmesh/internal/tool/truth"
)

// compiledTruth is a Truth over the scenario's test indices: a unit's
// served variants are a bitmask (bit i: test i serves its treatment), so
// the mean is a few mask tests.
type compiledTruth struct {
	*truth.Model
	masks   []uint64
	effects []float64
}

// compile maps t's terms to masks over tests (index by test id, each test
// with exactly two variants, treat[i] the name of test i's treatment).
func compileTruth(t *truth.Model, index map[string]int, treat []string) (compiledTruth, error) {
	c := compiledTruth{Model: t}
	for k, term := range t.Terms {
		if len(term.Tests) == 0 || len(term.Tests) != len(term.Variants) {
			return c, fmt.Errorf("truth %s: term %d: %d tests and %d variants (want as many, at least one)",
				t.Key(), k, len(term.Tests), len(term.Variants))
		}
		var m uint64
		for i, test := range term.Tests {
			j, ok := index[test]
			if !ok {
				return c, fmt.Errorf("truth %s: term %d: unknown test %q", t.Key(), k, test)
			}
			if term.Variants[i] != treat[j] {
				return c, fmt.Errorf("truth %s: term %d: variant %q of %s is not its treatment %q",
					t.Key(), k, term.Variants[i], test, treat[j])
			}
			if m&(1<<j) != 0 {
				return c, fmt.Errorf("truth %s: term %d: test %s twice", t.Key(), k, test)
			}
			m |= 1 << j
		}
		c.masks = append(c.masks, m)
		c.effects = append(c.effects, term.Effect)
	}
	return c, nil
}

// mean is Mean for the served-treatment mask s.
func (c *compiledTruth) mean(s uint64) float64 {
	m := c.Baseline
	for i, mk := range c.masks {
		if s&mk == mk {
			m += c.effects[i]
		}
	}
	return m
}
