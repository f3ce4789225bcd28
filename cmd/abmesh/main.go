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
	"strings"
	"syscall"

	"github.com/abmesh/abmesh/internal/daemon"
)

// commandGroups is every command of abmesh, in the order "abmesh help"
// and docs/cli.md list them. A command's usage is the text after its name
// in the usage line its -h prints; its summary is one line, lower case.
var commandGroups = []group{
	{"Experiments", []command{
		{"apply", "-f FILE [-f FILE...]", "create or update the experiments and layers of manifest files", rpc(applyCmd)},
		{"get", "experiments|layers|overrides [NAME] [-o json]", "list or show experiments, layers or overrides", rpc(getCmd)},
		{"start", "NAME", "start an experiment (DRAFT or PAUSED → RUNNING)", rpc(lifecycleCmd("start"))},
		{"pause", "NAME", "pause an experiment: everyone gets the control", rpc(lifecycleCmd("pause"))},
		{"conclude", "NAME --winner VARIANT", "conclude an experiment: everyone gets the winner", rpc(concludeCmd)},
		{"delete", "experiment|layer NAME", "delete an experiment or a layer", rpc(deleteCmd)},
		{"override", "NAME --unit U --variant V [--delete]", "pin a unit to a variant (excluded from analysis)", rpc(overrideCmd)},
		{"history", "[NAME] [--kind experiment|layer|override] [--limit N] [-o table|json]", "show the audit log of admin changes (who, when, what), newest first", rpc(historyCmd)},
		{"assign", "--unit U [--service S] [--test T...] [--attr k=v...] [--mint] [-o json]", "show a unit's assignments", rpc(assignCmd)},
	}},
	{"Subsets and reports", []command{
		{"subsets", "[-o table|json|dot]", "list every running test's subset and why each member is in it", rpc(subsetsCmd)},
		{"cells", "TEST [-o json]", "show the factorial cells (units and requests) of a test's current analysis window", rpc(cellsCmd)},
		{"report", "TEST [--window N] [--type 1|2|3] [-o json]", "show a test's factorial report", rpc(reportCmd)},
		{"graph", "[-o table|json|dot]", "show the service dependency graph built from traces", rpc(graphCmd)},
		{"status", "[-o json]", "show every counter of the trace consumer and the cells", rpc(statusCmd)},
	}},
	{"Authentication", []command{
		{"token new", "NAME ROLES", "make a random bearer token: print it and its line for abmeshd's --auth-file (ROLES: admin,reader,client,ingest)", offline(tokenNewCmd)},
		{"token hash", "[TOKEN]", "print the hash of a token (from the argument, else one line of stdin) as abmeshd's --auth-file spells it", offline(tokenHashCmd)},
	}},
	{"Offline analysis", []command{
		{"anova", "--csv FILE --response COL --factors A,B[,C] [--type 1|2|3] [--estimates] [-o json]", "factorial ANOVA of a CSV file (offline)", offline(anovaCmd)},
		{"power", "--u U --f2 F2 | --k K --f F | --d D | --u U --cells C --mde M --sd S [--alpha A] [--power P] [-o json]", "sample size from power analysis (offline)", offline(powerCmd)},
		{"traces inspect", "FILE [-o table|json]", "show the requests of a Jaeger JSON or OTLP JSON trace file (offline)", offline(tracesInspectCmd)},
	}},
	{"Demo, evaluation and load", []command{
		{"demo", "[--duration D] [--rate R] [--serve] [--data-dir DIR] [--jaeger-otlp HOST:PORT --jaeger-query HOST:PORT]", "run abmeshd, a ten-service shop mesh (its tests served by the SDK, OpenFeature and forward-auth at the edge), the shop's experiments and simulated users end to end", offline(demoCmd)},
		{"evaluate", "[--reps N] [--seed S] [--scenario shop|large|repeat|monitoring|all] [--monitoring-reps N] [--windows N] [--requests-per-unit M] [--within-unit-corr R] [--out FILE] [-o markdown|json] [--workers W]", "compare abmesh with the alternatives, request-level with unit-level analysis, and fixed-horizon with anytime-valid monitoring, on simulated traffic with known truth (writes docs/evaluation.md)", offline(evaluateCmd)},
		{"bench assign", "[--duration D] [--calls N] [--rate R] [--concurrency N] [--conns N] [--units N] [--service S] [--pid PID] [-o json]", "load abmeshd's Assign RPC from this process and report RPC/s, latency percentiles and (with --pid) abmeshd's CPU per call", rpc(benchAssignCmd)},
		{"bench edge", "[--url URL] [--rate R] [--duration D] [--concurrency N] [--units N] [--fresh F] [--cookie NAME] [-o json]", "load abmeshd's forward-auth endpoint (or a proxy in front of it) at a paced rate from this process and report latency percentiles", offline(benchEdgeCmd)},
		{"bench otlp", "[--endpoint HOST:PORT] [--duration D] [--rate SPANS/S] [--concurrency N] [-o json]", "send realistic OTLP trace load to a receiver from this process and report accepted spans/s", offline(benchOTLPCmd)},
		{"bench crash", "[--abmeshd PATH] [--kills N] [--rate SPANS/S] [--replicas N --store URL] [--dir DIR] [--abmeshd-flags FLAGS] [-o json]", "run abmeshd (or N replicas on one PostgreSQL) under OTLP load from this process, kill -9 it (them in turn) at random moments, restart it, and check that the traces counted equal the traces acknowledged", offline(benchCrashCmd)},
	}},
}

// group is a heading of "abmesh help" and the commands under it.
type group struct {
	title    string
	commands []command
}

// command is one CLI command: a row of commandGroups.
type command struct {
	name    string // "get", "traces inspect"
	usage   string // arguments after the name
	summary string
	action  action
}

// action is what a command does: setup defines the command's flags and
// returns its body; server says whether the body calls abmeshd.
type action struct {
	setup  func(fs *flag.FlagSet) body
	server bool
}

// body is a command's own logic, run once its arguments are parsed.
type body func(ctx context.Context, r *request) error

// rpc is the action of a command that calls abmeshd.
func rpc(setup func(fs *flag.FlagSet) body) action { return action{setup: setup, server: true} }

// offline is the action of a command that does not call abmeshd.
func offline(setup func(fs *flag.FlagSet) body) action { return action{setup: setup} }

// request is one run of a command, as its body sees it.
type request struct {
	*env
	name string   // the command's name
	args []string // the positional arguments, flags taken out
	api  *clients // abmeshd's APIs; nil for an offline command
}

// want checks that there are n positional arguments; else it is a usage
// error saying what was wanted.
func (r *request) want(n int, what string) error {
	if len(r.args) != n {
		return usageErrorf("want %s", what)
	}
	return nil
}

// noArgs checks that there is no positional argument.
func (r *request) noArgs() error {
	if len(r.args) > 0 {
		return fmt.Errorf("%s: unexpected argument %q", r.name, r.args[0])
	}
	return nil
}

// usageError is a command line its command cannot run: exec prints the
// command's usage and returns the error, prefixed with the command's name.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error {
	return &usageError{fmt.Sprintf(format, a...)}
}

// exec is the opening every command shares: it makes the command's flag
// set (its usage line from the table), defines the flags, parses args
// (flags may follow positional arguments), connects to abmeshd for an RPC
// command, and runs the body. gRPC errors come back in words.
func (c *command) exec(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, c.name, c.usage)
	run := c.action.setup(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	r := &request{env: e, name: c.name, args: pos}
	if c.action.server {
		if r.api, err = e.dial(); err != nil {
			return err
		}
		defer r.api.Close()
	}
	err = run(ctx, r)
	var u *usageError
	if errors.As(err, &u) {
		fs.Usage()
		return fmt.Errorf("%s: %s", c.name, u.msg)
	}
	if c.action.server {
		return rpcError(err)
	}
	return err
}

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
	actor  string // who the audit log records as making admin changes when abmeshd does not authenticate
	token  string // bearer token for abmeshd's --auth-file
	tlsCA  string // CA file to verify abmeshd's TLS certificate; "system": the system's roots
	// tlsCert and tlsKey are the client certificate for mTLS.
	tlsCert, tlsKey string
	stdin           io.Reader
	stdout          io.Writer
	stderr          io.Writer
}

// globalFlag is a flag given before the command: --NAME VALUE or
// --NAME=VALUE.
type globalFlag struct {
	name, arg string
	value     *string
}

// globalFlags are env's flags, in the order usage lists them.
func (e *env) globalFlags() []globalFlag {
	return []globalFlag{
		{"server", "HOST:PORT", &e.server},
		{"actor", "NAME", &e.actor},
		{"token", "TOKEN", &e.token},
		{"tls-ca", "FILE", &e.tlsCA},
		{"tls-client-cert", "FILE", &e.tlsCert},
		{"tls-client-key", "FILE", &e.tlsKey},
	}
}

// globalFlag sets the global flag args starts with and returns the
// arguments after it.
func (e *env) globalFlag(args []string) ([]string, error) {
	for _, f := range e.globalFlags() {
		switch a := args[0]; {
		case a == "--"+f.name || a == "-"+f.name:
			if len(args) < 2 {
				return nil, fmt.Errorf("--%s needs a %s", f.name, f.arg)
			}
			*f.value = args[1]
			return args[2:], nil
		case strings.HasPrefix(a, "--"+f.name+"="):
			*f.value = strings.TrimPrefix(a, "--"+f.name+"=")
			return args[1:], nil
		}
	}
	return nil, fmt.Errorf("unknown global flag %s (see abmesh help)", args[0])
}

// defaultServer is the abmeshd address when neither --server nor
// $ABMESH_SERVER gives one: abmeshd's own default.
var defaultServer = daemon.DefaultConfig().Listen

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	e := &env{server: defaultServer, actor: defaultActor(), stdin: os.Stdin, stdout: stdout, stderr: stderr}
	if s := os.Getenv("ABMESH_SERVER"); s != "" {
		e.server = s
	}
	if t := os.Getenv("ABMESH_TOKEN"); t != "" {
		e.token = t
	}
	// Global flags come before the command.
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		if a := args[0]; a == "-h" || a == "--help" || a == "-help" {
			usage(stdout)
			return nil
		}
		rest, err := e.globalFlag(args)
		if err != nil {
			return err
		}
		args = rest
	}
	if len(args) == 0 || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	c, rest := lookup(args)
	if c == nil {
		return fmt.Errorf("unknown command %q (see abmesh help)", strings.Join(args, " "))
	}
	// Allow --server after the command too.
	rest, err := e.takeServerFlag(rest)
	if err != nil {
		return err
	}
	err = c.exec(ctx, e, rest)
	var unreachable *unreachableError
	if errors.As(err, &unreachable) {
		err = fmt.Errorf("%w (server %s; set --server or $ABMESH_SERVER)", err, e.server)
	}
	return err
}

// commands lists every command in table order.
func commands() []*command {
	var cs []*command
	for _, g := range commandGroups {
		for i := range g.commands {
			cs = append(cs, &g.commands[i])
		}
	}
	return cs
}

// lookup finds the command args start with, and the arguments after its
// name.
func lookup(args []string) (*command, []string) {
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && equalWords(args[:len(words)], words) {
			return c, args[len(words):]
		}
	}
	return nil, nil
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
	fmt.Fprintf(w, "Usage: abmesh [--server HOST:PORT] [--actor NAME] [--token TOKEN] [--tls-ca FILE] [--tls-client-cert FILE --tls-client-key FILE] COMMAND [ARGS]\n")
	fmt.Fprintf(w, "--server: default %s, or $ABMESH_SERVER. --token (or $ABMESH_TOKEN): bearer token for abmeshd's --auth-file.\n", defaultServer)
	fmt.Fprintln(w, "--tls-ca: talk TLS, verifying abmeshd's certificate against FILE (\"system\": the system's roots);")
	fmt.Fprintln(w, "--tls-client-cert/--tls-client-key: the client certificate for mTLS (TLS on too).")
	fmt.Fprintln(w, "--actor (or $ABMESH_ACTOR; default the OS user name) is who the audit log records for admin changes")
	fmt.Fprintln(w, "when abmeshd does not authenticate callers; with authentication the authenticated identity is recorded.")
	for _, g := range commandGroups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, c := range g.commands {
			fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
			fmt.Fprintf(w, "  %-16s   abmesh %s %s\n", "", c.name, c.usage)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every command takes -h for its flags.")
}
