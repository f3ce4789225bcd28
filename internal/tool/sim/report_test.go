package sim

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestWriteMarkdown(t *testing.T) {
	shop := evaluate(t, Shop(), Options{Reps: 20, Seed: 1})
	large := evaluate(t, mustLarge(t), Options{Reps: 2, Seed: 1})
	h, err := CheckHashing(Shop(), HashingOptions{Viewpoint: "rec-model", Reps: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := &Report{Command: "abmesh evaluate --reps 20", Machine: "test machine", Runtime: 1500 * time.Millisecond,
		Scenarios: []*Result{shop, large}, Hashing: []*HashingResult{h}}
	var buf bytes.Buffer
	if err := r.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	md := buf.String()
	for _, want := range []string{
		"# Evaluation", "**Headline** (shop / large", "Reproduce with `abmesh evaluate --reps 20`", "took 1.5s on test machine",
		"## Scenario: shop", "## Scenario: large", "### Units until every test's decision", "### Main effects",
		"### Effects given the interacting test", "### Interactions (truth ≠ 0)", "### False interaction findings",
		"| rec-model | ui-layout = two-column | +15.0 |", "(d) abmesh subset factorials", "(c) one full factorial",
		"## Hypothesis", "| hashed |", "| shared-salt |", "distinguishable: cell counts, not estimable",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	for _, bad := range []string{"%!", "NaN", "Inf", "%%"} {
		if strings.Contains(md, bad) {
			t.Errorf("markdown contains %q", bad)
		}
	}
	// Every table row has as many cells as its header.
	var cols int
	for i, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = 0
			continue
		}
		n := strings.Count(line, "|")
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("line %d has %d pipes, its table %d: %s", i+1, n, cols, line)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{num(0), "0"}, {num(1234.5), "1,235"}, {num(123.4), "123"}, {num(12.34), "12.3"}, {num(1.234), "1.23"},
		{num(0.1234), "0.123"}, {num(0.001234), "0.0012"}, {signed(2), "+2.00"}, {signed(-0.5), "−0.500"}, {signed(0), "0"},
		{count(1234567), "1,234,567"}, {count(-1234), "-1,234"}, {count(12), "12"},
		{pct(0.95), "95%"}, {pct(0.065), "6.5%"}, {pct(0), "0%"}, {pct(1), "100%"},
		{ratio(103.4), "103×"}, {ratio(3.04), "3×"}, {ratio(1.15), "1.1×"}, {pval(1e-9), "< 0.0001"}, {pval(0.0989), "0.0989"},
		{roundDuration(12345 * time.Millisecond), "12.3s"}, {roundDuration(83 * time.Second), "1m23s"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
