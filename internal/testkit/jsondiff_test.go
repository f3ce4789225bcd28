package testkit

import "testing"

func TestJSONDiff(t *testing.T) {
	type cell struct {
		N    int
		Mean float64
	}
	a := map[string][]cell{"cells": {{3, 1.5}, {2, 1e6}}}
	for _, c := range []struct {
		b    map[string][]cell
		diff bool
	}{
		{map[string][]cell{"cells": {{3, 1.5 + 1e-12}, {2, 1e6 * (1 + 1e-12)}}}, false},
		{map[string][]cell{"cells": {{3, 1.5 + 1e-6}, {2, 1e6}}}, true},
		{map[string][]cell{"cells": {{4, 1.5}, {2, 1e6}}}, true},
		{map[string][]cell{"cells": {{3, 1.5}}}, true},
	} {
		if d := JSONDiff(a, c.b, 1e-9, "x"); (d != "") != c.diff {
			t.Errorf("JSONDiff(%v, %v) = %q", a, c.b, d)
		}
	}
}
