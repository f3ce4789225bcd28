package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/abmesh/abmesh/assign/client"
	"github.com/abmesh/abmesh/internal/auth"
	"github.com/abmesh/abmesh/internal/edge/grpcapi"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// clients are the API clients of one connection to abmeshd.
type clients struct {
	conn       *grpc.ClientConn
	experiment pb.ExperimentServiceClient
	assignment pb.AssignmentServiceClient
	report     pb.ReportServiceClient
}

// dial connects to abmeshd at e.server. The connection is lazy: errors
// show on the first call, naming the server. Each call made without a
// deadline of its own gets rpcTimeout.
func (e *env) dial() (*clients, error) {
	if err := checkActor(e.actor); err != nil {
		return nil, err
	}
	conn, err := e.dialServer(grpc.WithChainUnaryInterceptor(callDeadline, actorHeader(e.actor)))
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

// dialServer makes a lazy gRPC connection to e.server with the
// credentials of the global flags (credentialOptions) and opts.
func (e *env) dialServer(opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	creds, err := e.credentialOptions()
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(e.server, append(creds, opts...)...)
}

// credentialOptions are the dial options of the global flags: TLS when
// --tls-ca or a client certificate is given, plaintext otherwise; the
// bearer token, if any, on every call.
func (e *env) credentialOptions() ([]grpc.DialOption, error) {
	creds := insecure.NewCredentials()
	if e.tlsCA != "" || e.tlsCert != "" || e.tlsKey != "" {
		ca := e.tlsCA
		if ca == "system" {
			ca = ""
		}
		cfg, err := auth.ClientTLS(ca, e.tlsCert, e.tlsKey)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if e.token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(client.BearerToken(e.token)))
	}
	return opts, nil
}

// rpcTimeout bounds each call of the CLI to abmeshd.
const rpcTimeout = 10 * time.Second

// callDeadline gives a call that has no deadline rpcTimeout.
func callDeadline(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
	}
	return invoke(ctx, method, req, reply, cc, opts...)
}

// defaultActor is the actor when --actor is not given: $ABMESH_ACTOR, else
// the OS user name, else none (the audit log then says anonymous).
func defaultActor() string {
	if a := os.Getenv("ABMESH_ACTOR"); a != "" {
		return a
	}
	if u, err := user.Current(); err == nil && checkActor(u.Username) == nil {
		return u.Username
	}
	return ""
}

// checkActor accepts what gRPC metadata carries: printable ASCII, at most
// 128 bytes (abmeshd's limit).
func checkActor(a string) error {
	if len(a) > 128 || strings.ContainsFunc(a, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
		return fmt.Errorf("--actor %q: want printable ASCII of at most 128 bytes", a)
	}
	return nil
}

// actorHeader sends actor, when not empty, in every call's metadata
// (grpcapi.ActorHeader), for abmeshd's audit log.
func actorHeader(actor string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if actor != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, grpcapi.ActorHeader, actor)
		}
		return invoke(ctx, method, req, reply, cc, opts...)
	}
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

// outputFlag registers -o, the output format, which must be one of
// formats; the first is the default.
func outputFlag(fs *flag.FlagSet, formats ...string) *string {
	o := &output{formats: formats, value: formats[0]}
	fs.Var(o, "o", "output `format`: "+orList(formats))
	return &o.value
}

// output is the value of -o.
type output struct {
	formats []string
	value   string
}

func (o *output) String() string { return o.value }

func (o *output) Set(v string) error {
	if !slices.Contains(o.formats, v) {
		return fmt.Errorf("want %s", orList(o.formats))
	}
	o.value = v
	return nil
}

// orList spells a list as "a, b or c".
func orList(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
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
// the .proto files. protojson varies its whitespace from build to build on
// purpose, so the output is re-indented with encoding/json: the same message
// always prints the same bytes, which scripts and diffs rely on.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// printPlainJSON writes any value as indented JSON.
func printPlainJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table returns a tabwriter over w for the CLI's tables. Everything
// written to it passes through appendEscaped first, so that what a server
// stored or saw in spans (names, unit ids, service names) cannot act on
// the terminal.
func table(w io.Writer) *tableWriter {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	return &tableWriter{escapeWriter: escapeWriter{w: tw}, tw: tw}
}

// tableWriter is a tabwriter whose input is escaped.
type tableWriter struct {
	escapeWriter
	tw *tabwriter.Writer
}

// Flush writes the table out.
func (t *tableWriter) Flush() error { return t.tw.Flush() }

// escaped returns w behind an escapeWriter, for text printed outside
// tables. Escaping is idempotent: its output passes unchanged.
func escaped(w io.Writer) io.Writer { return &escapeWriter{w: w} }

// escapeWriter writes what it is given through appendEscaped. Each Write
// must hold whole characters (fmt.Fprintf writes once per call).
type escapeWriter struct {
	w   io.Writer
	buf []byte
}

// Write escapes p and writes it; n is len(p) on success.
func (e *escapeWriter) Write(p []byte) (int, error) {
	e.buf = appendEscaped(e.buf[:0], p)
	if _, err := e.w.Write(e.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// appendEscaped appends p to dst with every character a terminal would
// act on instead of show written as a Go escape: control characters other
// than the table's own tab and newline, format characters such as the
// bidirectional overrides, unassigned and private-use code points as
// \xNN, \uNNNN or \UNNNNNNNN, and invalid UTF-8 bytes as \xNN.
// Printable text, spaces included, passes unchanged.
func appendEscaped(dst, p []byte) []byte {
	for i := 0; i < len(p); {
		c := p[i]
		if c >= 0x20 && c < 0x7f || c == '\t' || c == '\n' {
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			dst = fmt.Appendf(dst, `\x%02x`, c)
		case unicode.IsGraphic(r):
			dst = append(dst, p[i:i+n]...)
		default:
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\u202e'
			dst = append(dst, q[1:len(q)-1]...)
		}
		i += n
	}
	return dst
}
