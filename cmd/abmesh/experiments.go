package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/abmesh/abmesh/internal/adapter/manifest"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func applyCmd(fs *flag.FlagSet) body {
	var files stringList
	fs.Var(&files, "f", "manifest file (repeatable)")
	return func(ctx context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		if len(files) == 0 {
			return errors.New("apply: -f FILE is required")
		}
		// Parse and validate every file before applying anything; then
		// apply the layers of all files before their experiments.
		all := &manifest.Set{}
		for _, f := range files {
			s, err := manifest.ReadFile(f)
			if err != nil {
				return fmt.Errorf("nothing applied: %w", err)
			}
			all.Merge(s)
		}
		return applySet(ctx, r, all)
	}
}

func applySet(ctx context.Context, r *request, s *manifest.Set) error {
	c := r.api
	for i := range s.Layers {
		l := protoconv.LayerToProto(&s.Layers[i])
		_, err := c.experiment.CreateLayer(ctx, &pb.CreateLayerRequest{Layer: l})
		verb := "created"
		if status.Code(err) == codes.AlreadyExists {
			verb = "unchanged"
			var cur *pb.GetLayerResponse
			cur, err = c.experiment.GetLayer(ctx, &pb.GetLayerRequest{Id: l.GetId()})
			if err == nil && cur.GetLayer().GetDescription() != l.GetDescription() {
				_, err = c.experiment.UpdateLayer(ctx, &pb.UpdateLayerRequest{Layer: l})
				verb = "configured"
			}
		}
		if err != nil {
			return fmt.Errorf("layer %q: %w", l.GetId(), rpcError(err))
		}
		fmt.Fprintf(r.stdout, "layer/%s %s\n", l.GetId(), verb)
	}
	for i := range s.Experiments {
		x := protoconv.ExperimentToProto(&s.Experiments[i])
		_, err := c.experiment.CreateExperiment(ctx, &pb.CreateExperimentRequest{Experiment: x})
		verb := "created"
		if status.Code(err) == codes.AlreadyExists {
			verb = "unchanged"
			var cur *pb.GetExperimentResponse
			cur, err = c.experiment.GetExperiment(ctx, &pb.GetExperimentRequest{Id: x.GetId()})
			if err == nil && !sameSpec(cur.GetExperiment(), x) {
				_, err = c.experiment.UpdateExperiment(ctx, &pb.UpdateExperimentRequest{Experiment: x})
				verb = "configured"
			}
		}
		if err != nil {
			return fmt.Errorf("experiment %q: %w", x.GetId(), rpcError(err))
		}
		fmt.Fprintf(r.stdout, "experiment/%s %s\n", x.GetId(), verb)
	}
	return nil
}

// sameSpec reports whether two experiments have the same definition,
// ignoring what the server owns (status, winner, phases, times): an
// unchanged manifest then changes nothing, not even the config version.
func sameSpec(a, b *pb.Experiment) bool {
	strip := func(x *pb.Experiment) *pb.Experiment {
		y := proto.Clone(x).(*pb.Experiment)
		y.Status, y.Winner, y.Phase, y.Phases, y.CreateTime, y.UpdateTime = 0, "", 0, nil, nil, nil
		return y
	}
	return proto.Equal(strip(a), strip(b))
}

// rpcError turns a gRPC status into an error people read; other errors,
// nil included, it returns as they are.
func rpcError(err error) error {
	s, ok := status.FromError(err)
	if !ok || err == nil {
		return err
	}
	switch s.Code() {
	case codes.Unavailable:
		return &unreachableError{fmt.Sprintf("abmeshd unavailable (is it running? start it with abmeshd): %s", s.Message())}
	case codes.DeadlineExceeded:
		return &unreachableError{fmt.Sprintf("abmeshd did not answer in time: %s", s.Message())}
	case codes.Unauthenticated:
		return fmt.Errorf("unauthenticated: %s (give --token or $ABMESH_TOKEN, or --tls-client-cert and --tls-client-key)", s.Message())
	}
	what := codeWords(s.Code())
	if strings.HasPrefix(s.Message(), what+":") {
		return errors.New(s.Message()) // the server already said it
	}
	return fmt.Errorf("%s: %s", what, s.Message())
}

// unreachableError is abmeshd not answering; run adds the address tried.
type unreachableError struct{ msg string }

func (e *unreachableError) Error() string { return e.msg }

// codeWords spells a gRPC code as lowercase words: NotFound → "not found".
func codeWords(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}

func getCmd(fs *flag.FlagSet) body {
	out := outputFlag(fs, "table", "json")
	return func(ctx context.Context, r *request) error {
		if len(r.args) == 0 || len(r.args) > 2 {
			return usageErrorf("want a resource (experiments, layers or overrides) and an optional name")
		}
		name := ""
		if len(r.args) == 2 {
			name = r.args[1]
		}
		c := r.api.experiment
		switch strings.TrimSuffix(r.args[0], "s") {
		case "experiment", "exp":
			return printOneOrList(r, *out, name, listing[*pb.Experiment]{
				one: func() (*pb.Experiment, error) {
					x, err := c.GetExperiment(ctx, &pb.GetExperimentRequest{Id: name})
					return x.GetExperiment(), err
				},
				all: func() (proto.Message, []*pb.Experiment, error) {
					xs, err := c.ListExperiments(ctx, &pb.ListExperimentsRequest{})
					return xs, xs.GetExperiments(), err
				},
				header: "NAME\tSTATUS\tPHASE\tOWNER\tCHANGE\tMEASURE\tMETRIC\tAGGREGATE\tVARIANTS\tLAYER\tINTERFERENCE",
				row: func(x *pb.Experiment) string {
					return fmt.Sprintf("%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", x.GetId(),
						strings.TrimPrefix(x.GetStatus().String(), "EXPERIMENT_STATUS_"), x.GetPhase(), dash(x.GetOwner()),
						dash(x.GetChangeService()), dash(x.GetMeasureService()), x.GetMetric().GetName(),
						aggregateName(x.GetMetric().GetAggregate()), variantsString(x), layerString(x), interferenceString(x))
				},
			})
		case "layer":
			return printOneOrList(r, *out, name, listing[*pb.Layer]{
				one: func() (*pb.Layer, error) {
					l, err := c.GetLayer(ctx, &pb.GetLayerRequest{Id: name})
					return l.GetLayer(), err
				},
				all: func() (proto.Message, []*pb.Layer, error) {
					ls, err := c.ListLayers(ctx, &pb.ListLayersRequest{})
					return ls, ls.GetLayers(), err
				},
				header: "NAME\tDESCRIPTION",
				row:    func(l *pb.Layer) string { return l.GetId() + "\t" + dash(l.GetDescription()) },
			})
		case "override":
			ovs, err := c.ListOverrides(ctx, &pb.ListOverridesRequest{ExperimentId: name})
			if err != nil {
				return err
			}
			return printList(r, *out, ovs, "EXPERIMENT\tUNIT\tVARIANT", ovs.GetOverrides(), func(o *pb.Override) string {
				return o.GetExperimentId() + "\t" + o.GetUnitId() + "\t" + o.GetVariant()
			})
		}
		return fmt.Errorf("get: unknown resource %q: want experiments, layers or overrides", r.args[0])
	}
}

// listing is how "get" reads and shows one kind of resource: one gets
// the named item, all the server's list response and its items; a table
// has header and a row for each item.
type listing[T proto.Message] struct {
	one    func() (T, error)
	all    func() (proto.Message, []T, error)
	header string
	row    func(T) string
}

// printOneOrList prints the named item (name != "") or the whole list:
// with -o json as the server answered, else as a table.
func printOneOrList[T proto.Message](r *request, out, name string, l listing[T]) error {
	if name == "" {
		resp, items, err := l.all()
		if err != nil {
			return err
		}
		return printList(r, out, resp, l.header, items, l.row)
	}
	x, err := l.one()
	if err != nil {
		return err
	}
	return printList(r, out, x, l.header, []T{x}, l.row)
}

// printList prints a server's response: with -o json as it is, else as a
// table of header and a row for each item.
func printList[T any](r *request, out string, resp proto.Message, header string, items []T, row func(T) string) error {
	if out == "json" {
		return printJSON(r.stdout, resp)
	}
	tw := table(r.stdout)
	fmt.Fprintln(tw, header)
	for _, x := range items {
		fmt.Fprintln(tw, row(x))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// aggregateName spells a per-unit aggregate as manifests do: mean, sum,
// any, count or ratio (UNSPECIFIED is mean).
func aggregateName(a pb.MetricAggregate) string {
	if a == pb.MetricAggregate_METRIC_AGGREGATE_UNSPECIFIED {
		a = pb.MetricAggregate_METRIC_AGGREGATE_MEAN
	}
	return strings.ToLower(strings.TrimPrefix(a.String(), "METRIC_AGGREGATE_"))
}

func variantsString(x *pb.Experiment) string {
	var parts []string
	for _, v := range x.GetVariants() {
		parts = append(parts, fmt.Sprintf("%s:%d", v.GetName(), v.GetWeight()))
	}
	s := strings.Join(parts, ",")
	if x.GetWinner() != "" {
		s += " (winner " + x.GetWinner() + ")"
	}
	return s
}

func layerString(x *pb.Experiment) string {
	if x.GetLayer() == "" {
		return "-"
	}
	return fmt.Sprintf("%s[%d,%d)", x.GetLayer(), x.GetSlice().GetStart(), x.GetSlice().GetEnd())
}

func interferenceString(x *pb.Experiment) string {
	var parts []string
	for _, i := range x.GetEmits() {
		parts = append(parts, "emits "+i.GetKind()+"@"+i.GetScope())
	}
	for _, i := range x.GetSusceptible() {
		parts = append(parts, "susceptible "+i.GetKind()+"@"+i.GetScope())
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// lifecycleCmd is start or pause, which take one experiment name and
// report its new status.
func lifecycleCmd(verb string) func(fs *flag.FlagSet) body {
	return func(*flag.FlagSet) body {
		return func(ctx context.Context, r *request) error {
			if err := r.want(1, "exactly one experiment name"); err != nil {
				return err
			}
			var x *pb.Experiment
			switch verb {
			case "start":
				resp, err := r.api.experiment.StartExperiment(ctx, &pb.StartExperimentRequest{Id: r.args[0]})
				if err != nil {
					return err
				}
				x = resp.GetExperiment()
			case "pause":
				resp, err := r.api.experiment.PauseExperiment(ctx, &pb.PauseExperimentRequest{Id: r.args[0]})
				if err != nil {
					return err
				}
				x = resp.GetExperiment()
			}
			fmt.Fprintf(r.stdout, "experiment/%s %s (phase %d)\n", x.GetId(), strings.ToLower(strings.TrimPrefix(x.GetStatus().String(), "EXPERIMENT_STATUS_")), x.GetPhase())
			return nil
		}
	}
}

func concludeCmd(fs *flag.FlagSet) body {
	winner := fs.String("winner", "", "the variant everyone gets from now on (required)")
	return func(ctx context.Context, r *request) error {
		if len(r.args) != 1 || *winner == "" {
			return usageErrorf("want one experiment name and --winner")
		}
		resp, err := r.api.experiment.ConcludeExperiment(ctx, &pb.ConcludeExperimentRequest{Id: r.args[0], Winner: *winner})
		if err != nil {
			return err
		}
		fmt.Fprintf(r.stdout, "experiment/%s concluded, winner %s\n", resp.GetExperiment().GetId(), resp.GetExperiment().GetWinner())
		return nil
	}
}

func deleteCmd(*flag.FlagSet) body {
	return func(ctx context.Context, r *request) error {
		if err := r.want(2, "a kind (experiment or layer) and a name"); err != nil {
			return err
		}
		kind, name := strings.TrimSuffix(r.args[0], "s"), r.args[1]
		var err error
		switch kind {
		case "experiment":
			_, err = r.api.experiment.DeleteExperiment(ctx, &pb.DeleteExperimentRequest{Id: name})
		case "layer":
			_, err = r.api.experiment.DeleteLayer(ctx, &pb.DeleteLayerRequest{Id: name})
		default:
			return fmt.Errorf("delete: unknown kind %q: want experiment or layer", r.args[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(r.stdout, "%s/%s deleted\n", kind, name)
		return nil
	}
}

func overrideCmd(fs *flag.FlagSet) body {
	unit := fs.String("unit", "", "the unit id to pin (required)")
	variant := fs.String("variant", "", "the variant to pin it to")
	del := fs.Bool("delete", false, "remove the unit's override instead")
	return func(ctx context.Context, r *request) error {
		if len(r.args) != 1 || *unit == "" || (*variant == "" && !*del) {
			return usageErrorf("want one experiment name, --unit and --variant (or --delete)")
		}
		test := r.args[0]
		if *del {
			if _, err := r.api.experiment.DeleteOverride(ctx, &pb.DeleteOverrideRequest{ExperimentId: test, UnitId: *unit}); err != nil {
				return err
			}
			fmt.Fprintf(r.stdout, "override %s/%s deleted\n", test, *unit)
			return nil
		}
		o := &pb.Override{ExperimentId: test, UnitId: *unit, Variant: *variant}
		if _, err := r.api.experiment.SetOverride(ctx, &pb.SetOverrideRequest{Override: o}); err != nil {
			return err
		}
		fmt.Fprintf(r.stdout, "override %s/%s → %s\n", test, *unit, *variant)
		return nil
	}
}

func assignCmd(fs *flag.FlagSet) body {
	unit := fs.String("unit", "", "the unit id")
	service := fs.String("service", "", "only tests whose change service is this one")
	mint := fs.Bool("mint", false, "let abmeshd mint a fresh unit id")
	var tests, attrs stringList
	fs.Var(&tests, "test", "only this test (repeatable)")
	fs.Var(&attrs, "attr", "unit attribute k=v for targeting (repeatable)")
	out := outputFlag(fs, "table", "json")
	return func(ctx context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		if *unit == "" && !*mint {
			return usageErrorf("--unit (or --mint) is required")
		}
		req := &pb.AssignRequest{UnitId: *unit, Service: *service, TestIds: tests, MintUnit: *mint, Attributes: map[string]string{}}
		for _, a := range attrs {
			k, v, ok := strings.Cut(a, "=")
			if !ok || k == "" {
				return fmt.Errorf("--attr %q: want key=value", a)
			}
			req.Attributes[k] = v
		}
		resp, err := r.api.assignment.Assign(ctx, req)
		if err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(r.stdout, resp)
		}
		fmt.Fprintf(escaped(r.stdout), "unit %s (config version %d)\n", resp.GetUnitId(), resp.GetConfigVersion())
		tw := table(r.stdout)
		fmt.Fprintln(tw, "TEST\tVARIANT\tREASON\tPHASE\tHEADER")
		for _, a := range resp.GetAssignments() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\tx-abmesh-%s: %s\n", a.GetTestId(), a.GetVariant(),
				strings.ToLower(strings.TrimPrefix(a.GetReason().String(), "ASSIGNMENT_REASON_")), a.GetPhase(), a.GetTestId(), a.GetVariant())
		}
		if len(resp.GetAssignments()) == 0 {
			fmt.Fprintln(tw, "(no running test matches)")
		}
		return tw.Flush()
	}
}
