// Package reporttest compares reports in tests: replicas' merged reports
// against one node's, for instance.
package reporttest

import (
	"strings"

	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/internal/testkit"
)

// Diff describes, for each part of a report that differs between want and
// got beyond tol (testkit.JSONDiff: relative, absolute below 1), the first
// difference; "" when none does. The parts are the window's cells and
// quality counters, the ANOVA table, the estimates, the SRM checks and the
// joint SRM check: what a report says, not when its window opened.
func Diff(want, got *report.Report, tol float64) string {
	var out []string
	for _, part := range []struct {
		name      string
		want, got any
	}{
		{"cells", want.Window.Cells, got.Window.Cells}, {"quality", want.Window.Quality, got.Window.Quality},
		{"anova", want.Anova, got.Anova}, {"estimates", want.Estimates, got.Estimates},
		{"srm", want.SRM, got.SRM}, {"joint srm", want.JointSRM, got.JointSRM},
	} {
		if d := testkit.JSONDiff(part.want, part.got, tol, part.name); d != "" {
			out = append(out, d)
		}
	}
	return strings.Join(out, "; ")
}
