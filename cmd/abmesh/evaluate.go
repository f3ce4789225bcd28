package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/abmesh/abmesh/internal/sim"
)

func init() {
	extraCommands = append(extraCommands,
		command{"evaluate", "[--reps N] [--seed S] [--scenario shop|large|all] [--out FILE] [-o markdown|json]",
			"compare abmesh with the alternatives on simulated traffic with known truth (writes docs/evaluation.md)",
			func(_ context.Context, e *env, args []string) error { return runEvaluate(args, e.stdout, e.stderr) }})
}

// largeGraphSeed seeds the large scenario's random graph, so its services
// and tests stay the same whatever --seed the traffic uses.
const largeGraphSeed = 1

// hashingViewpoints are the subsets whose hashed allocation is compared
// with a designed one, per scenario.
var hashingViewpoints = map[string]string{"shop": "rec-model", "large": "hero-banner"}

// runEvaluate implements
//
//	abmesh evaluate [--reps N] [--seed S] [--scenario shop|large|all] [--out FILE] [-o markdown|json] [--workers W]
//
// It runs the simulator with ground truth (internal/sim) on the chosen
// scenarios, compares one-test-at-a-time, orthogonal two-sample tests, one
// full factorial and abmesh's subset factorials on the same simulated
// traffic, checks the hashing hypothesis, and writes the report (markdown,
// or the JSON of sim.Report with -o json) to --out or stdout. Progress goes
// to stderr. The report names the command that reproduces it, the machine
// and the runtime.
func runEvaluate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("evaluate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reps := fs.Int("reps", 200, "replications per scenario (and of the hashing check)")
	seed := fs.Uint64("seed", 1, "seed of the simulated traffic")
	scenario := fs.String("scenario", "all", "scenario: shop, large or all")
	out := fs.String("out", "", "write the report to this file (default: stdout)")
	output := fs.String("o", "markdown", "output format: markdown or json")
	workers := fs.Int("workers", 2, "replications simulated in parallel (does not change the results)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: abmesh evaluate [--reps N] [--seed S] [--scenario shop|large|all] [--out FILE] [-o markdown|json] [--workers W]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("evaluate: unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *reps < 1:
		return fmt.Errorf("evaluate: --reps %d: want at least 1", *reps)
	case *workers < 1:
		return fmt.Errorf("evaluate: --workers %d: want at least 1", *workers)
	case *output != "markdown" && *output != "json":
		return fmt.Errorf("evaluate: -o %q: want markdown or json", *output)
	}
	var names []string
	switch *scenario {
	case "all":
		names = []string{"shop", "large"}
	case "shop", "large":
		names = []string{*scenario}
	default:
		return fmt.Errorf("evaluate: --scenario %q: want shop, large or all", *scenario)
	}

	start := time.Now()
	ctx := context.Background()
	rep := &sim.Report{Command: evaluateCommand(*reps, *seed, *scenario, *out, *output), Machine: machine()}
	for _, name := range names {
		sc, err := scenarioNamed(name)
		if err != nil {
			return err
		}
		t0 := time.Now()
		step := max(1, *reps/10)
		res, err := sim.Evaluate(ctx, sc, sim.Options{
			Reps: *reps, Seed: *seed, Workers: *workers,
			Progress: func(done, total int) {
				if done%step == 0 || done == total {
					fmt.Fprintf(stderr, "evaluate %s: %d/%d replications (%s)\n", name, done, total, time.Since(t0).Round(100*time.Millisecond))
				}
			},
		})
		if err != nil {
			return fmt.Errorf("evaluate %s: %w", name, err)
		}
		d := res.Strategy(sim.Subsets)
		for _, s := range res.Strategies {
			fmt.Fprintf(stderr, "evaluate %s: %-32s %d/%d replications finished, %.0f units until every decision (%.1f× abmesh)\n",
				name, s.Label, s.Finished, res.Reps, s.Units.Mean, s.Units.Mean/d.Units.Mean)
		}
		rep.Scenarios = append(rep.Scenarios, res)

		t1 := time.Now()
		h, err := sim.CheckHashing(sc, sim.HashingOptions{Viewpoint: hashingViewpoints[name], Reps: *reps, Seed: *seed})
		if err != nil {
			return fmt.Errorf("evaluate %s: hashing check: %w", name, err)
		}
		verdict := "indistinguishable from a designed allocation"
		if err := h.Indistinguishable(sim.Hashed); err != nil {
			verdict = err.Error()
		}
		fmt.Fprintf(stderr, "evaluate %s: hashing check, subset of %s, %d replications: %s (%s)\n",
			name, h.Viewpoint, h.Reps, verdict, time.Since(t1).Round(10*time.Millisecond))
		rep.Hashing = append(rep.Hashing, h)
	}
	rep.Runtime = time.Since(start)

	var buf bytes.Buffer
	if *output == "json" {
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := rep.WriteMarkdown(&buf); err != nil {
		return err
	}
	if *out == "" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	if dir := filepath.Dir(*out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	fmt.Fprintf(stderr, "evaluate: wrote %s in %s\n", *out, rep.Runtime.Round(100*time.Millisecond))
	return nil
}

func scenarioNamed(name string) (*sim.Scenario, error) {
	switch name {
	case "shop":
		return sim.Shop(), nil
	case "large":
		return sim.Large(largeGraphSeed)
	}
	return nil, fmt.Errorf("evaluate: unknown scenario %q", name)
}

// evaluateCommand returns the command line that reproduces a run.
func evaluateCommand(reps int, seed uint64, scenario, out, output string) string {
	parts := []string{"abmesh evaluate", fmt.Sprintf("--reps %d", reps), fmt.Sprintf("--seed %d", seed), "--scenario " + scenario}
	if out != "" {
		parts = append(parts, "--out "+out)
	}
	if output != "markdown" {
		parts = append(parts, "-o "+output)
	}
	return strings.Join(parts, " ")
}

// machine describes this machine: OS/architecture, CPU model and count, Go version.
func machine() string {
	s := fmt.Sprintf("%s/%s, %d CPUs", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	if m := cpuModel(); m != "" {
		s += " (" + m + ")"
	}
	return s + ", " + runtime.Version()
}

// cpuModel reads the CPU model from /proc/cpuinfo; "" when unknown.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}
