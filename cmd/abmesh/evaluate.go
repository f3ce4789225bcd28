package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/abmesh/abmesh/internal/tool/sim"
)

// largeGraphSeed seeds the large scenario's random graph, so its services
// and tests stay the same whatever --seed the traffic uses.
const largeGraphSeed = 1

// hashingViewpoints are the subsets whose hashed allocation is compared
// with a designed one, per scenario.
var hashingViewpoints = map[string]string{"shop": "rec-model", "large": "hero-banner"}

// evaluateCmd is "abmesh evaluate". It runs the simulator with ground truth (internal/tool/sim) on the chosen
// scenarios, compares one-test-at-a-time, orthogonal two-sample tests, one
// full factorial and abmesh's subset factorials on the same simulated
// traffic, checks the hashing hypothesis, and writes the report (markdown,
// or the JSON of sim.Report with -o json) to --out or stdout. Progress goes
// to stderr. The report names the command that reproduces it, the machine
// and the runtime.
func evaluateCmd(fs *flag.FlagSet) body {
	var o evaluateOptions
	fs.IntVar(&o.reps, "reps", 200, "replications per scenario (and of the hashing check)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the simulated traffic")
	fs.StringVar(&o.scenario, "scenario", "all", "scenario: shop, large or all")
	fs.StringVar(&o.out, "out", "", "write the report to this file (default: stdout)")
	output := outputFlag(fs, "markdown", "json")
	fs.IntVar(&o.workers, "workers", 2, "replications simulated in parallel (does not change the results)")
	return func(ctx context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		o.output = *output
		return runEvaluate(ctx, o, r.stdout, r.stderr)
	}
}

// evaluateOptions are the flags of "abmesh evaluate".
type evaluateOptions struct {
	reps, workers         int
	seed                  uint64
	scenario, out, output string
}

func runEvaluate(ctx context.Context, o evaluateOptions, stdout, stderr io.Writer) error {
	switch {
	case o.reps < 1:
		return fmt.Errorf("evaluate: --reps %d: want at least 1", o.reps)
	case o.workers < 1:
		return fmt.Errorf("evaluate: --workers %d: want at least 1", o.workers)
	}
	var names []string
	switch o.scenario {
	case "all":
		names = []string{"shop", "large"}
	case "shop", "large":
		names = []string{o.scenario}
	default:
		return fmt.Errorf("evaluate: --scenario %q: want shop, large or all", o.scenario)
	}

	start := time.Now()
	rep := &sim.Report{Command: evaluateCommand(o.reps, o.seed, o.scenario, o.out, o.output), Machine: machine()}
	for _, name := range names {
		sc, err := scenarioNamed(name)
		if err != nil {
			return err
		}
		t0 := time.Now()
		step := max(1, o.reps/10)
		res, err := sim.Evaluate(ctx, sc, sim.Options{
			Reps: o.reps, Seed: o.seed, Workers: o.workers,
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
		h, err := sim.CheckHashing(sc, sim.HashingOptions{Viewpoint: hashingViewpoints[name], Reps: o.reps, Seed: o.seed})
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
	if o.output == "json" {
		if err := printPlainJSON(&buf, rep); err != nil {
			return err
		}
	} else if err := rep.WriteMarkdown(&buf); err != nil {
		return err
	}
	if o.out == "" {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	if dir := filepath.Dir(o.out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
	}
	if err := os.WriteFile(o.out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	fmt.Fprintf(stderr, "evaluate: wrote %s in %s\n", o.out, rep.Runtime.Round(100*time.Millisecond))
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
