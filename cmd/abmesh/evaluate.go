package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
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
// traffic, checks the hashing hypothesis, runs the repeat-traffic scenario
// (request-level against unit-level analysis), and writes the report
// (markdown, or the JSON of sim.Report with -o json) to --out or stdout.
// Progress goes to stderr. The report names the command that reproduces
// it, the machine and the runtime.
func evaluateCmd(fs *flag.FlagSet) body {
	o := evaluateOptions{repeat: sim.DefaultRepeatOptions(), monitoring: sim.DefaultMonitoringOptions()}
	fs.IntVar(&o.reps, "reps", 200, "replications per scenario (and of the hashing check)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the simulated traffic")
	fs.StringVar(&o.scenario, "scenario", "all", "scenario: shop, large, repeat, monitoring or all")
	fs.StringVar(&o.out, "out", "", "write the report to this file (default: stdout)")
	output := outputFlag(fs, "markdown", "json")
	fs.IntVar(&o.workers, "workers", 2, "replications simulated in parallel (does not change the results)")
	fs.Float64Var(&o.repeat.Requests, "requests-per-unit", o.repeat.Requests, "repeat: mean requests per unit (geometric, ≥ 1)")
	fs.Float64Var(&o.repeat.ICC, "within-unit-corr", o.repeat.ICC, "repeat: correlation of one unit's requests, in [0, 1)")
	fs.IntVar(&o.monitoring.Reps, "monitoring-reps", o.monitoring.Reps, "monitoring: A/A replications read after every 1% of the horizon; a quarter as many with a real effect")
	fs.IntVar(&o.windows, "windows", o.repeat.Windows, "repeat: coverage windows per aggregate and design; the SRM check runs 2.5× as many with a true split and a tenth with an imbalance, the units-to-decision check a quarter")
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
	reps, workers, windows int
	seed                   uint64
	scenario, out, output  string
	repeat                 sim.RepeatOptions     // --requests-per-unit, --within-unit-corr
	monitoring             sim.MonitoringOptions // --monitoring-reps
}

// scenarios returns the scenarios --scenario names, or an error naming
// the flag for a bad value of any flag.
func (o *evaluateOptions) scenarios() ([]string, error) {
	switch {
	case o.reps < 1:
		return nil, fmt.Errorf("evaluate: --reps %d: want at least 1", o.reps)
	case o.workers < 1:
		return nil, fmt.Errorf("evaluate: --workers %d: want at least 1", o.workers)
	case o.windows < 1:
		return nil, fmt.Errorf("evaluate: --windows %d: want at least 1", o.windows)
	case o.monitoring.Reps < 1:
		return nil, fmt.Errorf("evaluate: --monitoring-reps %d: want at least 1", o.monitoring.Reps)
	case !(o.repeat.Requests >= 1) || math.IsInf(o.repeat.Requests, 0):
		return nil, fmt.Errorf("evaluate: --requests-per-unit %v: want a number ≥ 1", o.repeat.Requests)
	case !(o.repeat.ICC >= 0 && o.repeat.ICC < 1):
		return nil, fmt.Errorf("evaluate: --within-unit-corr %v: want a number in [0, 1)", o.repeat.ICC)
	}
	switch o.scenario {
	case "all":
		return []string{"shop", "large", "repeat", "monitoring"}, nil
	case "shop", "large", "repeat", "monitoring":
		return []string{o.scenario}, nil
	}
	return nil, fmt.Errorf("evaluate: --scenario %q: want shop, large, repeat, monitoring or all", o.scenario)
}

func runEvaluate(ctx context.Context, o evaluateOptions, stdout, stderr io.Writer) error {
	names, err := o.scenarios()
	if err != nil {
		return err
	}
	start := time.Now()
	rep := &sim.Report{Command: evaluateCommand(o), Machine: machine()}
	for _, name := range names {
		switch name {
		case "repeat":
			if rep.Repeat, err = runRepeat(ctx, o, stderr); err != nil {
				return err
			}
			continue
		case "monitoring":
			if rep.Monitoring, err = runMonitoring(ctx, o, stderr); err != nil {
				return err
			}
			continue
		}
		if err := runScenario(ctx, o, name, rep, stderr); err != nil {
			return err
		}
	}
	rep.Runtime = time.Since(start)
	return writeEvaluation(o, rep, stdout, stderr)
}

// runScenario compares the strategies on one scenario and checks its
// hashing hypothesis, adding both to rep.
func runScenario(ctx context.Context, o evaluateOptions, name string, rep *sim.Report, stderr io.Writer) error {
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
	return nil
}

// runRepeat runs the repeat-traffic scenario: --windows coverage windows
// per aggregate and design, 2.5× as many SRM windows with a true split,
// a tenth with an imbalance and a quarter to decision.
func runRepeat(ctx context.Context, o evaluateOptions, stderr io.Writer) (*sim.RepeatResult, error) {
	opt := o.repeat
	opt.Windows, opt.NullWindows = o.windows, o.windows*5/2
	opt.DetectWindows, opt.DecisionWindows = max(1, o.windows/10), max(1, o.windows/4)
	opt.Seed, opt.Workers = o.seed, o.workers
	t0 := time.Now()
	opt.Progress = func(check string, done, total int) {
		if done%max(1, total/5) == 0 || done == total {
			fmt.Fprintf(stderr, "evaluate repeat: %s %d/%d windows (%s)\n", check, done, total, time.Since(t0).Round(100*time.Millisecond))
		}
	}
	res, err := sim.EvaluateRepeat(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("evaluate repeat: %w", err)
	}
	res.Command = repeatCommand(o)
	n := res.SRM.Null
	fmt.Fprintf(stderr, "evaluate repeat: SRM on a true split: units flag %.2f%%, requests %.1f%% of %d windows\n", 100*n.UnitRate, 100*n.RequestRate, n.Windows)
	for _, a := range res.Coverage {
		fmt.Fprintf(stderr, "evaluate repeat: %-5s coverage, unit level %.1f%%", a.Aggregate, 100*a.Unit.All)
		if a.Request != nil {
			fmt.Fprintf(stderr, ", request level %.1f%%", 100*a.Request.All)
		}
		fmt.Fprintln(stderr)
	}
	d := res.Decision
	fmt.Fprintf(stderr, "evaluate repeat: units to COMPLETE: counting units %.0f (power %.0f%%), counting requests %.0f (power %.0f%%)\n",
		d.Unit.Units.Mean, 100*d.Unit.UnitPower, d.Request.Units.Mean, 100*d.Request.UnitPower)
	return res, nil
}

// runMonitoring runs the monitoring scenario: --monitoring-reps A/A
// replications and a quarter as many with a real effect.
func runMonitoring(ctx context.Context, o evaluateOptions, stderr io.Writer) (*sim.MonitoringResult, error) {
	opt := o.monitoring
	opt.DecisionReps = max(1, opt.Reps/4)
	opt.Seed, opt.Workers = o.seed, o.workers
	t0 := time.Now()
	opt.Progress = func(check string, done, total int) {
		if done%max(1, total/5) == 0 || done == total {
			fmt.Fprintf(stderr, "evaluate monitoring: %s %d/%d replications (%s)\n", check, done, total, time.Since(t0).Round(100*time.Millisecond))
		}
	}
	res, err := sim.EvaluateMonitoring(ctx, opt)
	if err != nil {
		return nil, fmt.Errorf("evaluate monitoring: %w", err)
	}
	res.Command = fmt.Sprintf("abmesh evaluate --seed %d --scenario monitoring --monitoring-reps %d", o.seed, o.monitoring.Reps)
	for _, c := range []struct {
		name string
		r    sim.TermRates
	}{{"main effects", res.Main}, {"interactions", res.Interactions}} {
		fmt.Fprintf(stderr, "evaluate monitoring: %s: fixed-horizon p < α at some look %.1f%% (at the horizon %.1f%%), anytime-valid %.1f%% ± %.1f%%, sequences cover at every look %.1f%%\n",
			c.name, 100*c.r.FixedAnyLook, 100*c.r.FixedHorizon, 100*c.r.AnytimeAnyLook, 100*c.r.MCError, 100*c.r.Coverage)
	}
	fmt.Fprintf(stderr, "evaluate monitoring: effect of the planned size: DECIDED at a median of %.0f units (fixed horizon %d), %.1f%% decided; with the null a:b planned too %.0f units, %.1f%% decided\n",
		res.Decision.Units.P50, res.Horizon, 100*res.Decision.Decided, res.DecisionInteraction.Units.P50, 100*res.DecisionInteraction.Decided)
	return res, nil
}

// writeEvaluation writes the report as markdown or JSON to --out or stdout.
func writeEvaluation(o evaluateOptions, rep *sim.Report, stdout, stderr io.Writer) error {
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

// evaluateCommand returns the command line that reproduces a run: --reps
// when a strategy comparison runs, the repeat flags when the repeat
// scenario runs.
func evaluateCommand(o evaluateOptions) string {
	parts := []string{"abmesh evaluate"}
	if o.scenario != "repeat" && o.scenario != "monitoring" {
		parts = append(parts, fmt.Sprintf("--reps %d", o.reps))
	}
	parts = append(parts, fmt.Sprintf("--seed %d", o.seed), "--scenario "+o.scenario)
	if o.scenario == "repeat" || o.scenario == "all" {
		parts = append(parts, repeatFlags(o))
	}
	if o.scenario == "monitoring" || o.scenario == "all" {
		parts = append(parts, fmt.Sprintf("--monitoring-reps %d", o.monitoring.Reps))
	}
	if o.out != "" {
		parts = append(parts, "--out "+o.out)
	}
	if o.output != "markdown" {
		parts = append(parts, "-o "+o.output)
	}
	return strings.Join(parts, " ")
}

// repeatCommand returns the command that reproduces the repeat scenario
// alone (its markdown on stdout).
func repeatCommand(o evaluateOptions) string {
	return fmt.Sprintf("abmesh evaluate --seed %d --scenario repeat %s", o.seed, repeatFlags(o))
}

func repeatFlags(o evaluateOptions) string {
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	return fmt.Sprintf("--windows %d --requests-per-unit %s --within-unit-corr %s", o.windows, g(o.repeat.Requests), g(o.repeat.ICC))
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
