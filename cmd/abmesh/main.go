// Command abmesh is the command-line client of abmeshd: it applies
// manifests, reads experiments, subsets, cells and reports, runs the demo
// and the evaluation, and analyses exported data offline.
//
// Run "abmesh help" for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "abmesh:", err)
		}
		os.Exit(1)
	}
}

// env is what every command gets: the global flags and the output streams.
type env struct {
	server string
	stdout io.Writer
	stderr io.Writer
}

// command is one CLI command.
type command struct {
	name    string // "get", "traces inspect"
	usage   string // arguments after the name
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// plain adapts a command that needs only its arguments and stdout.
func plain(f func(args []string, stdout io.Writer) error) func(context.Context, *env, []string) error {
	return func(_ context.Context, e *env, args []string) error { return f(args, e.stdout) }
}

func commands() []command {
	cmds := []command{
		{"apply", "-f FILE [-f FILE...]", "create or update the experiments and layers of manifest files", runApply},
		{"get", "experiments|layers|overrides [NAME] [-o json]", "list or show experiments, layers or overrides", runGet},
		{"start", "NAME", "start an experiment (DRAFT or PAUSED → RUNNING)", lifecycle("start")},
		{"pause", "NAME", "pause an experiment: everyone gets the control", lifecycle("pause")},
		{"conclude", "NAME --winner VARIANT", "conclude an experiment: everyone gets the winner", runConclude},
		{"delete", "experiment|layer NAME", "delete an experiment or a layer", runDelete},
		{"override", "NAME --unit U --variant V [--delete]", "pin a unit to a variant (excluded from analysis)", runOverride},
		{"assign", "--unit U [--service S] [--test T...] [--attr k=v...] [-o json]", "show a unit's assignments", runAssign},
		{"anova", "--csv FILE --response COL --factors A,B[,C] [--type 1|2|3] [-o json]", "factorial ANOVA of a CSV file (offline)", plain(runAnova)},
		{"power", "--u U --f2 F2 | --k K --f F | --d D [--alpha A] [--power P] [-o json]", "sample size from power analysis (offline)", plain(runPower)},
		{"traces inspect", "FILE [-o json]", "show the requests of a Jaeger JSON or OTLP JSON trace file (offline)", plain(runTracesInspect)},
	}
	cmds = append(cmds, extraCommands...)
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	return cmds
}

// extraCommands are registered by other files of this package.
var extraCommands []command

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	e := &env{server: "127.0.0.1:7070", stdout: stdout, stderr: stderr}
	if s := os.Getenv("ABMESH_SERVER"); s != "" {
		e.server = s
	}
	// Global flags come before the command.
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		a := args[0]
		switch {
		case a == "--server" || a == "-server":
			if len(args) < 2 {
				return errors.New("--server needs a HOST:PORT")
			}
			e.server, args = args[1], args[2:]
		case strings.HasPrefix(a, "--server="):
			e.server, args = strings.TrimPrefix(a, "--server="), args[1:]
		case a == "-h" || a == "--help" || a == "-help":
			usage(stdout)
			return nil
		default:
			return fmt.Errorf("unknown global flag %s (see abmesh help)", a)
		}
	}
	if len(args) == 0 || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && equalWords(args[:len(words)], words) {
			rest := args[len(words):]
			// Allow --server after the command too.
			rest, err := e.takeServerFlag(rest)
			if err != nil {
				return err
			}
			err = c.run(ctx, e, rest)
			var unreachable *unreachableError
			if errors.As(err, &unreachable) {
				err = fmt.Errorf("%w (server %s; set --server or $ABMESH_SERVER)", err, e.server)
			}
			return err
		}
	}
	return fmt.Errorf("unknown command %q (see abmesh help)", strings.Join(args, " "))
}

func (e *env) takeServerFlag(args []string) ([]string, error) {
	out := args[:0:0]
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--server":
			if i+1 >= len(args) {
				return nil, errors.New("--server needs a HOST:PORT")
			}
			e.server = args[i+1]
			i++
		case strings.HasPrefix(a, "--server="):
			e.server = strings.TrimPrefix(a, "--server=")
		default:
			out = append(out, a)
		}
	}
	return out, nil
}

func equalWords(a, b []string) bool {
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "abmesh — A/B tests on a microservice mesh, analysed per interference subset")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: abmesh [--server HOST:PORT] COMMAND [ARGS]   (default server 127.0.0.1:7070, or $ABMESH_SERVER)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
		fmt.Fprintf(w, "  %-16s   abmesh %s %s\n", "", c.name, c.usage)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every command takes -h for its flags.")
}
