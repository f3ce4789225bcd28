package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abmesh/abmesh/internal/tool/sim"
)

func evaluateJSON(t *testing.T, args ...string) (*sim.Report, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := runCmd(&out, &errOut, "evaluate", append(args, "-o", "json")...); err != nil {
		t.Fatalf("evaluate %v: %v\n%s", args, err, errOut.String())
	}
	var rep sim.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return &rep, errOut.String()
}

// A short run of the shop: the report's structure, and its outcomes
// against the known truth.
func TestEvaluateShop(t *testing.T) {
	const R = 100
	rep, progress := evaluateJSON(t, "--scenario", "shop", "--reps", "100", "--seed", "3")
	if !strings.Contains(rep.Command, "abmesh evaluate --reps 100 --seed 3 --scenario shop") || rep.Machine == "" || rep.Runtime <= 0 {
		t.Errorf("command %q, machine %q, runtime %v", rep.Command, rep.Machine, rep.Runtime)
	}
	for _, want := range []string{"evaluate shop: 100/100 replications", "(d) abmesh subset factorials", "hashing check, subset of rec-model"} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks %q:\n%s", want, progress)
		}
	}
	if len(rep.Scenarios) != 1 || len(rep.Hashing) != 1 {
		t.Fatalf("%d scenarios, %d hashing checks", len(rep.Scenarios), len(rep.Hashing))
	}
	res := rep.Scenarios[0]
	if res.Scenario != "shop" || res.Reps != R || len(res.Tests) != 7 || len(res.Strategies) != 4 {
		t.Fatalf("scenario %s, %d reps, %d tests, %d strategies", res.Scenario, res.Reps, len(res.Tests), len(res.Strategies))
	}
	a, b, c, d := res.Strategy(sim.OneAtATime), res.Strategy(sim.Orthogonal), res.Strategy(sim.FullFactorial), res.Strategy(sim.Subsets)
	if a == nil || b == nil || c == nil || d == nil {
		t.Fatal("a strategy is missing after the JSON round trip")
	}

	// abmesh: main effects unbiased and covered about 95% of the time.
	var covered, n float64
	for i, q := range res.Quantities {
		if q.Kind != sim.MainEffect {
			continue
		}
		e := d.Estimates[i]
		if math.Abs(e.Bias) > 4*e.SD/math.Sqrt(R) {
			t.Errorf("abmesh main effect of %s: bias %.3g, SD %.3g", q.Test, e.Bias, e.SD)
		}
		if math.Abs(e.Coverage-0.95) > 4*math.Sqrt(0.95*0.05/R) {
			t.Errorf("abmesh main effect of %s: coverage %.2f", q.Test, e.Coverage)
		}
		covered += e.Coverage * R
		n += R
	}
	if cov := covered / n; math.Abs(cov-0.95) > 4*math.Sqrt(0.95*0.05/n) {
		t.Errorf("abmesh main-effect coverage over all tests %.3f", cov)
	}
	// The real interaction is detected in most replications.
	term := -1
	for i, q := range res.Quantities {
		if q.Kind == sim.Interaction && q.Test == "rec-model" && q.Name() == "rec-model:ui-layout" {
			term = i
		}
	}
	if term < 0 {
		t.Fatal("no rec-model:ui-layout interaction")
	}
	if det := d.Estimates[term].Rejected; det < 0.75 {
		t.Errorf("abmesh detected rec-model:ui-layout in %.2f of replications", det)
	}
	// Orthogonal two-sample tests cannot see it: rec-model's effect if
	// ui-layout ships (+15) is estimated as the main effect (+8).
	ships := res.Quantity(sim.SimpleEffect, "rec-model", "rec-model | ui-layout=two-column")
	if ships < 0 || res.Quantities[ships].Truth != 15 {
		t.Fatalf("rec-model | ui-layout=two-column: %d", ships)
	}
	if e := b.Estimates[ships]; math.Abs(e.Bias+7) > 4*e.SD/math.Sqrt(R) {
		t.Errorf("(b) bias for rec-model if ui-layout ships: %.2f, want −7", e.Bias)
	}
	if e := d.Estimates[ships]; math.Abs(e.Bias) > 4*e.SD/math.Sqrt(R) {
		t.Errorf("(d) bias for rec-model if ui-layout ships: %.2f, want 0", e.Bias)
	}
	if !(d.Units.Mean < c.Units.Mean && d.Units.Mean < a.Units.Mean) {
		t.Errorf("units: abmesh %.0f, full factorial %.0f, one at a time %.0f", d.Units.Mean, c.Units.Mean, a.Units.Mean)
	}
	if err := rep.Hashing[0].Indistinguishable(sim.Hashed); err != nil {
		t.Error(err)
	}
}

// The large scenario: the full factorial needs orders of magnitude more
// units than abmesh's subsets.
func TestEvaluateLarge(t *testing.T) {
	rep, _ := evaluateJSON(t, "--scenario", "large", "--reps", "3")
	res := rep.Scenarios[0]
	c, d := res.Strategy(sim.FullFactorial), res.Strategy(sim.Subsets)
	if c.Cells != 4096 || d.Cells > 8 {
		t.Errorf("cells: full factorial %d, abmesh %d", c.Cells, d.Cells)
	}
	if c.Units.Mean < 50*d.Units.Mean {
		t.Errorf("units: full factorial %.0f, abmesh %.0f (want ≥ 50×)", c.Units.Mean, d.Units.Mean)
	}
}

func TestEvaluateWritesMarkdown(t *testing.T) {
	out := filepath.Join(t.TempDir(), "docs", "evaluation.md")
	var stdout, stderr bytes.Buffer
	if err := runCmd(&stdout, &stderr, "evaluate", "--scenario", "shop", "--reps", "5", "--out", out); err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout not empty with --out: %q", stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{"# Evaluation", "Reproduce with `abmesh evaluate --reps 5 --seed 1 --scenario shop --out " + out + "`",
		"## Scenario: shop", "## Hypothesis"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if !strings.Contains(stderr.String(), "wrote "+out) {
		t.Errorf("stderr: %s", stderr.String())
	}
}

func TestEvaluateFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "mars"},
		{"-o", "yaml"},
		{"--reps", "0"},
		{"--workers", "0"},
		{"--windows", "0"},
		{"--monitoring-reps", "0"},
		{"--requests-per-unit", "0.5"},
		{"--requests-per-unit", "NaN"},
		{"--within-unit-corr", "1"},
		{"--within-unit-corr", "-0.1"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		err := runCmd(&out, &errOut, "evaluate", args...)
		if err == nil {
			t.Errorf("evaluate %v: no error", args)
			continue
		}
		if strings.HasPrefix(args[0], "--") && !strings.Contains(err.Error()+errOut.String(), args[0]) {
			t.Errorf("evaluate %v: error %q does not name the flag", args, err)
		}
	}
}

// The monitoring scenario: --monitoring-reps reaches the simulation and
// the command that reproduces it; the markdown has its section.
func TestEvaluateMonitoring(t *testing.T) {
	rep, progress := evaluateJSON(t, "--scenario", "monitoring", "--monitoring-reps", "40", "--seed", "2")
	m := rep.Monitoring
	if m == nil || m.Reps != 40 || m.DecisionReps != 10 || m.Seed != 2 || m.Looks != 100 || len(rep.Scenarios) != 0 || rep.Repeat != nil {
		t.Fatalf("monitoring %+v, scenarios %d", m, len(rep.Scenarios))
	}
	if m.Command != "abmesh evaluate --seed 2 --scenario monitoring --monitoring-reps 40" ||
		rep.Command != "abmesh evaluate --seed 2 --scenario monitoring --monitoring-reps 40 -o json" {
		t.Errorf("commands %q, %q", m.Command, rep.Command)
	}
	if m.Main.FixedAnyLook <= m.Main.FixedHorizon || !strings.Contains(progress, "evaluate monitoring: main effects: fixed-horizon") {
		t.Errorf("main %+v; progress:\n%s", m.Main, progress)
	}
	var out, errOut bytes.Buffer
	if err := runCmd(&out, &errOut, "evaluate", "--scenario", "monitoring", "--monitoring-reps", "8"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"- **Monitoring**", "## Scenario: monitoring", "| main effects (3) |", "units to DECIDED"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

// The repeat-traffic scenario: its flags reach the simulation and the
// command that reproduces it; unit-level analysis covers, request-level
// does not.
func TestEvaluateRepeat(t *testing.T) {
	rep, progress := evaluateJSON(t, "--scenario", "repeat", "--windows", "40", "--requests-per-unit", "4", "--within-unit-corr", "0.25", "--seed", "2")
	want := "abmesh evaluate --seed 2 --scenario repeat --windows 40 --requests-per-unit 4 --within-unit-corr 0.25"
	if !strings.HasPrefix(rep.Command, want) || len(rep.Scenarios) != 0 {
		t.Errorf("command %q, %d scenarios", rep.Command, len(rep.Scenarios))
	}
	r := rep.Repeat
	if r == nil {
		t.Fatal("no repeat result")
	}
	if r.Requests != 4 || r.ICC != 0.25 || r.Seed != 2 || r.Command != want {
		t.Errorf("repeat parameters %v, %v, seed %d, command %q", r.Requests, r.ICC, r.Seed, r.Command)
	}
	if r.SRM.Null.Windows != 100 || r.SRM.Imbalance[0].Windows != 4 || r.Decision.Windows != 10 || len(r.Coverage) != len(sim.CoverageAggregates) {
		t.Errorf("windows: srm %d/%d, decision %d, %d aggregates", r.SRM.Null.Windows, r.SRM.Imbalance[0].Windows, r.Decision.Windows, len(r.Coverage))
	}
	for _, a := range r.Coverage {
		// 400 intervals: 4 binomial SE of 95% is ±4.4%.
		if a.Windows != 40 || math.Abs(a.Unit.All-0.95) > 4*math.Sqrt(0.95*0.05/float64(a.Unit.Intervals)) {
			t.Errorf("%v: %d windows, unit-level coverage %.3f of %d", a.Aggregate, a.Windows, a.Unit.All, a.Unit.Intervals)
		}
		if a.Request != nil && a.Request.All > 0.85 {
			t.Errorf("%v: request-level coverage %.3f", a.Aggregate, a.Request.All)
		}
	}
	for _, want := range []string{"evaluate repeat: srm null 100/100 windows", "evaluate repeat: coverage count 80/80 windows", "evaluate repeat: units to COMPLETE"} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks %q:\n%s", want, progress)
		}
	}
}

// TestEvaluateStopsWhenCancelled: an interrupt (the context main cancels)
// ends the evaluation.
func TestEvaluateStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := run(ctx, []string{"evaluate", "--scenario", "shop", "--reps", "50"}, io.Discard, io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}
