package testkit

import (
	"encoding/json"
	"fmt"
	"math"
)

// JSONDiff describes the first difference between the JSON encodings of a
// and b, numbers compared to tol relative (absolute below 1), or returns ""
// when there is none. Paths name the place: "x.cells[2].stats.Mean".
func JSONDiff(a, b any, tol float64, at string) string {
	return diffWithin(decoded(a), decoded(b), tol, at)
}

func decoded(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unencodable %T: %v", v, err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return fmt.Sprintf("undecodable %T: %v", v, err)
	}
	return out
}

func diffWithin(a, b any, tol float64, at string) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return fmt.Sprintf("%s: %v vs %v", at, a, b)
		}
		for k := range x {
			if d := diffWithin(x[k], y[k], tol, at+"."+k); d != "" {
				return d
			}
		}
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return fmt.Sprintf("%s: %d vs %d elements", at, len(x), len(y))
		}
		for i := range x {
			if d := diffWithin(x[i], y[i], tol, fmt.Sprintf("%s[%d]", at, i)); d != "" {
				return d
			}
		}
	case float64:
		y, ok := b.(float64)
		if !ok || math.Abs(x-y) > tol*max(1, math.Abs(x)) {
			return fmt.Sprintf("%s: %v vs %v", at, a, b)
		}
	default:
		if a != b {
			return fmt.Sprintf("%s: %v vs %v", at, a, b)
		}
	}
	return ""
}
