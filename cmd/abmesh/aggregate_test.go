package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

// TestApplyAggregate: spec.metric.aggregate goes through apply to the
// server and back (get shows it; re-applying is a no-op; mean is the
// default and is shown); changing it on a running test is applied in
// place; an unknown value is refused naming the field.
func TestApplyAggregate(t *testing.T) {
	d := daemontest.Start(t)
	doc := func(agg string) string {
		metric := `{name: "attribute:order.placed", direction: higher` + agg + `}`
		return "apiVersion: abmesh.io/v1\nkind: Experiment\nmetadata: {name: conv}\n" +
			"spec: {changeService: a, measureService: a, metric: " + metric + ", variants: [{name: c, weight: 1}, {name: t, weight: 1}], plan: {mde: 0.01}}\n" +
			"---\napiVersion: abmesh.io/v1\nkind: Experiment\nmetadata: {name: plain}\n" +
			"spec: {changeService: a, measureService: a, variants: [{name: c, weight: 1}, {name: t, weight: 1}], plan: {mde: 1}}\n"
	}
	file := func(agg string) string {
		f := filepath.Join(t.TempDir(), "m.yaml")
		if err := os.WriteFile(f, []byte(doc(agg)), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	mustCLI := func(args ...string) string {
		t.Helper()
		out, err := cli(t, d.Addr(), args...)
		if err != nil {
			t.Fatalf("%q: %v\n%s", args, err, out)
		}
		return out
	}
	mustCLI("apply", "-f", file(", aggregate: any"))
	rows := mustCLI("get", "experiments")
	if !strings.Contains(rows, "AGGREGATE") || !hasRow(rows, "conv", "any") || !hasRow(rows, "plain", "mean") {
		t.Errorf("get experiments does not show conv's aggregate any and plain's mean:\n%s", rows)
	}
	if out := mustCLI("get", "exp", "conv", "-o", "json"); !strings.Contains(out, `"aggregate": "METRIC_AGGREGATE_ANY"`) {
		t.Errorf("get -o json:\n%s", out)
	}
	if out := mustCLI("apply", "-f", file(", aggregate: any")); !strings.Contains(out, "experiment/conv unchanged") || !strings.Contains(out, "experiment/plain unchanged") {
		t.Errorf("re-apply of the same aggregate:\n%s", out)
	}
	mustCLI("start", "conv")
	if out := mustCLI("apply", "-f", file(", aggregate: ratio")); !strings.Contains(out, "experiment/conv configured") {
		t.Errorf("changing a running test's aggregate:\n%s", out)
	}
	if !hasRow(mustCLI("get", "experiment", "conv"), "conv", "ratio") {
		t.Error("the changed aggregate is not what get shows")
	}
	_, err := cli(t, d.Addr(), "apply", "-f", file(", aggregate: median"))
	if err == nil || !strings.Contains(err.Error(), "spec.metric.aggregate") || !strings.Contains(err.Error(), `"median"`) {
		t.Errorf("unknown aggregate: %v, want an error naming spec.metric.aggregate", err)
	}
}

// hasRow reports whether a table line starts with name and has a cell
// equal to value.
func hasRow(table, name, value string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == name {
			for _, x := range f {
				if x == value {
					return true
				}
			}
		}
	}
	return false
}
