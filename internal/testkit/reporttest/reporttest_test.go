package reporttest

import (
	"strings"
	"testing"

	"github.com/abmesh/abmesh/internal/report"
)

func TestDiffNamesThePart(t *testing.T) {
	want, got := &report.Report{}, &report.Report{}
	want.Window.Quality.Counted, got.Window.Quality.Counted = 1000, 1000
	if d := Diff(want, got, 1e-9); d != "" {
		t.Fatalf("equal reports: %s", d)
	}
	got.Window.Quality.Counted = 1001
	if d := Diff(want, got, 1e-9); !strings.HasPrefix(d, "quality.") || !strings.Contains(d, "1000") {
		t.Errorf("a counter off by one: %q, want the quality part named", d)
	}
	if d := Diff(want, got, 1e-2); d != "" {
		t.Errorf("within 1%%: %q", d)
	}
}
