package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// clients are the API clients of one connection to abmeshd.
type clients struct {
	conn       *grpc.ClientConn
	experiment pb.ExperimentServiceClient
	assignment pb.AssignmentServiceClient
	report     pb.ReportServiceClient
}

// dial connects to e.server. The connection is lazy: errors show on the
// first call, naming the server.
func (e *env) dial() (*clients, error) {
	conn, err := grpc.NewClient(e.server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("connect to abmeshd at %s: %w", e.server, err)
	}
	return &clients{
		conn:       conn,
		experiment: pb.NewExperimentServiceClient(conn),
		assignment: pb.NewAssignmentServiceClient(conn),
		report:     pb.NewReportServiceClient(conn),
	}, nil
}

func (c *clients) Close() error { return c.conn.Close() }

// connect dials abmeshd for one command and gives the context of its
// calls (with the CLI's deadline); done releases both.
func (e *env) connect(ctx context.Context) (*clients, context.Context, func(), error) {
	c, err := e.dial()
	if err != nil {
		return nil, nil, nil, err
	}
	cctx, cancel := callCtx(ctx)
	return c, cctx, func() { cancel(); c.Close() }, nil
}

// parseWithOutput parses the flags (allowing them after positional
// arguments), checks -o against table, json and allowed, and returns the
// positional arguments.
func parseWithOutput(fs *flag.FlagSet, args []string, out *string, allowed ...string) ([]string, error) {
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, err
	}
	return pos, checkOutput(*out, allowed...)
}

// newFlags returns a flag set that reports errors instead of exiting and
// prints its usage to stderr.
func newFlags(e *env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: abmesh %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// outputFlag registers -o (table or json).
func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("o", "table", "output format: table or json")
}

func checkOutput(o string, allowed ...string) error {
	for _, a := range append([]string{"table", "json"}, allowed...) {
		if o == a {
			return nil
		}
	}
	return fmt.Errorf("-o %q: want table or json", o)
}

// parseInterspersed parses flags that may come after positional
// arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// printJSON writes a proto message as indented JSON with field names as in
// the .proto files.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// printPlainJSON writes any value as indented JSON.
func printPlainJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// callCtx is the context of one RPC from the CLI.
func callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, defaultRPCTimeout)
}
