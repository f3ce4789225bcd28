package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/abmesh/abmesh/internal/convert"
	"github.com/abmesh/abmesh/internal/manifest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

const defaultRPCTimeout = 10 * time.Second

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runApply(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "apply", "-f FILE [-f FILE...]")
	var files stringList
	fs.Var(&files, "f", "manifest file (repeatable)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if len(files) == 0 {
		return errors.New("apply: -f FILE is required")
	}
	// Parse and validate every file before applying anything; then apply
	// the layers of all files before their experiments.
	all := &manifest.Set{}
	for _, f := range files {
		s, err := manifest.ReadFile(f)
		if err != nil {
			return fmt.Errorf("nothing applied: %w", err)
		}
		all.Merge(s)
	}
	c, err := e.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	return applySet(ctx, e, c, all)
}

func applySet(ctx context.Context, e *env, c *clients, s *manifest.Set) error {
	for i := range s.Layers {
		l := convert.LayerToProto(&s.Layers[i])
		cctx, cancel := callCtx(ctx)
		_, err := c.experiment.CreateLayer(cctx, &pb.CreateLayerRequest{Layer: l})
		verb := "created"
		if status.Code(err) == codes.AlreadyExists {
			verb = "unchanged"
			var cur *pb.GetLayerResponse
			cur, err = c.experiment.GetLayer(cctx, &pb.GetLayerRequest{Id: l.GetId()})
			if err == nil && cur.GetLayer().GetDescription() != l.GetDescription() {
				_, err = c.experiment.UpdateLayer(cctx, &pb.UpdateLayerRequest{Layer: l})
				verb = "configured"
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("layer %q: %w", l.GetId(), rpcError(err))
		}
		fmt.Fprintf(e.stdout, "layer/%s %s\n", l.GetId(), verb)
	}
	for i := range s.Experiments {
		x := convert.ExperimentToProto(&s.Experiments[i])
		cctx, cancel := callCtx(ctx)
		_, err := c.experiment.CreateExperiment(cctx, &pb.CreateExperimentRequest{Experiment: x})
		verb := "created"
		if status.Code(err) == codes.AlreadyExists {
			verb = "unchanged"
			var cur *pb.GetExperimentResponse
			cur, err = c.experiment.GetExperiment(cctx, &pb.GetExperimentRequest{Id: x.GetId()})
			if err == nil && !sameSpec(cur.GetExperiment(), x) {
				_, err = c.experiment.UpdateExperiment(cctx, &pb.UpdateExperimentRequest{Experiment: x})
				verb = "configured"
			}
		}
		cancel()
		if err != nil {
			return fmt.Errorf("experiment %q: %w", x.GetId(), rpcError(err))
		}
		fmt.Fprintf(e.stdout, "experiment/%s %s\n", x.GetId(), verb)
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

// rpcError turns a gRPC status into an error people read.
func rpcError(err error) error {
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch s.Code() {
	case codes.Unavailable:
		return &unreachableError{fmt.Sprintf("abmeshd unavailable (is it running? start it with abmeshd): %s", s.Message())}
	case codes.DeadlineExceeded:
		return &unreachableError{fmt.Sprintf("abmeshd did not answer in time: %s", s.Message())}
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

func runGet(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "get", "experiments|layers|overrides [NAME] [-o json]")
	out := outputFlag(fs)
	pos, err := parseWithOutput(fs, args, out)
	if err != nil {
		return err
	}
	if len(pos) == 0 || len(pos) > 2 {
		fs.Usage()
		return errors.New("get: want a resource (experiments, layers or overrides) and an optional name")
	}
	name := ""
	if len(pos) == 2 {
		name = pos[1]
	}
	c, cctx, done, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	switch strings.TrimSuffix(pos[0], "s") {
	case "experiment", "exp":
		list, done, err := oneOrList(e, *out, name,
			func() (*pb.Experiment, error) {
				r, err := c.experiment.GetExperiment(cctx, &pb.GetExperimentRequest{Id: name})
				return r.GetExperiment(), err
			},
			func() (proto.Message, []*pb.Experiment, error) {
				r, err := c.experiment.ListExperiments(cctx, &pb.ListExperimentsRequest{})
				return r, r.GetExperiments(), err
			})
		if done || err != nil {
			return err
		}
		tw := table(e.stdout)
		fmt.Fprintln(tw, "NAME\tSTATUS\tPHASE\tOWNER\tCHANGE\tMEASURE\tMETRIC\tVARIANTS\tLAYER\tINTERFERENCE")
		for _, x := range list {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.GetId(),
				strings.TrimPrefix(x.GetStatus().String(), "EXPERIMENT_STATUS_"), x.GetPhase(), dash(x.GetOwner()),
				dash(x.GetChangeService()), dash(x.GetMeasureService()), x.GetMetric().GetName(), variantsString(x),
				layerString(x), interferenceString(x))
		}
		return tw.Flush()
	case "layer":
		list, done, err := oneOrList(e, *out, name,
			func() (*pb.Layer, error) {
				r, err := c.experiment.GetLayer(cctx, &pb.GetLayerRequest{Id: name})
				return r.GetLayer(), err
			},
			func() (proto.Message, []*pb.Layer, error) {
				r, err := c.experiment.ListLayers(cctx, &pb.ListLayersRequest{})
				return r, r.GetLayers(), err
			})
		if done || err != nil {
			return err
		}
		tw := table(e.stdout)
		fmt.Fprintln(tw, "NAME\tDESCRIPTION")
		for _, l := range list {
			fmt.Fprintf(tw, "%s\t%s\n", l.GetId(), dash(l.GetDescription()))
		}
		return tw.Flush()
	case "override":
		r, err := c.experiment.ListOverrides(cctx, &pb.ListOverridesRequest{ExperimentId: name})
		if err != nil {
			return rpcError(err)
		}
		if *out == "json" {
			return printJSON(e.stdout, r)
		}
		tw := table(e.stdout)
		fmt.Fprintln(tw, "EXPERIMENT\tUNIT\tVARIANT")
		for _, o := range r.GetOverrides() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", o.GetExperimentId(), o.GetUnitId(), o.GetVariant())
		}
		return tw.Flush()
	}
	return fmt.Errorf("get: unknown resource %q: want experiments, layers or overrides", pos[0])
}

// oneOrList fetches the named item (name != "") or the whole list. With
// -o json it prints the response and reports done; otherwise it returns the
// items for a table.
func oneOrList[T proto.Message](e *env, out, name string, one func() (T, error), list func() (proto.Message, []T, error)) ([]T, bool, error) {
	if name != "" {
		x, err := one()
		if err != nil {
			return nil, true, rpcError(err)
		}
		if out == "json" {
			return nil, true, printJSON(e.stdout, x)
		}
		return []T{x}, false, nil
	}
	resp, xs, err := list()
	if err != nil {
		return nil, true, rpcError(err)
	}
	if out == "json" {
		return nil, true, printJSON(e.stdout, resp)
	}
	return xs, false, nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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

func lifecycle(verb string) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		fs := newFlags(e, verb, "NAME")
		pos, err := parseInterspersed(fs, args)
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			fs.Usage()
			return fmt.Errorf("%s: want exactly one experiment name", verb)
		}
		c, cctx, done, err := e.connect(ctx)
		if err != nil {
			return err
		}
		defer done()
		var x *pb.Experiment
		switch verb {
		case "start":
			r, err := c.experiment.StartExperiment(cctx, &pb.StartExperimentRequest{Id: pos[0]})
			if err != nil {
				return rpcError(err)
			}
			x = r.GetExperiment()
		case "pause":
			r, err := c.experiment.PauseExperiment(cctx, &pb.PauseExperimentRequest{Id: pos[0]})
			if err != nil {
				return rpcError(err)
			}
			x = r.GetExperiment()
		}
		fmt.Fprintf(e.stdout, "experiment/%s %s (phase %d)\n", x.GetId(), strings.ToLower(strings.TrimPrefix(x.GetStatus().String(), "EXPERIMENT_STATUS_")), x.GetPhase())
		return nil
	}
}

func runConclude(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "conclude", "NAME --winner VARIANT")
	winner := fs.String("winner", "", "the variant everyone gets from now on (required)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *winner == "" {
		fs.Usage()
		return errors.New("conclude: want one experiment name and --winner")
	}
	c, cctx, done, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	r, err := c.experiment.ConcludeExperiment(cctx, &pb.ConcludeExperimentRequest{Id: pos[0], Winner: *winner})
	if err != nil {
		return rpcError(err)
	}
	fmt.Fprintf(e.stdout, "experiment/%s concluded, winner %s\n", r.GetExperiment().GetId(), r.GetExperiment().GetWinner())
	return nil
}

func runDelete(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "delete", "experiment|layer NAME")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		fs.Usage()
		return errors.New("delete: want a kind (experiment or layer) and a name")
	}
	c, cctx, done, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	switch strings.TrimSuffix(pos[0], "s") {
	case "experiment":
		_, err = c.experiment.DeleteExperiment(cctx, &pb.DeleteExperimentRequest{Id: pos[1]})
	case "layer":
		_, err = c.experiment.DeleteLayer(cctx, &pb.DeleteLayerRequest{Id: pos[1]})
	default:
		return fmt.Errorf("delete: unknown kind %q: want experiment or layer", pos[0])
	}
	if err != nil {
		return rpcError(err)
	}
	fmt.Fprintf(e.stdout, "%s/%s deleted\n", strings.TrimSuffix(pos[0], "s"), pos[1])
	return nil
}

func runOverride(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "override", "NAME --unit U --variant V [--delete]")
	unit := fs.String("unit", "", "the unit id to pin (required)")
	variant := fs.String("variant", "", "the variant to pin it to")
	del := fs.Bool("delete", false, "remove the unit's override instead")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *unit == "" || (*variant == "" && !*del) {
		fs.Usage()
		return errors.New("override: want one experiment name, --unit and --variant (or --delete)")
	}
	c, cctx, done, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	if *del {
		if _, err := c.experiment.DeleteOverride(cctx, &pb.DeleteOverrideRequest{ExperimentId: pos[0], UnitId: *unit}); err != nil {
			return rpcError(err)
		}
		fmt.Fprintf(e.stdout, "override %s/%s deleted\n", pos[0], *unit)
		return nil
	}
	_, err = c.experiment.SetOverride(cctx, &pb.SetOverrideRequest{Override: &pb.Override{ExperimentId: pos[0], UnitId: *unit, Variant: *variant}})
	if err != nil {
		return rpcError(err)
	}
	fmt.Fprintf(e.stdout, "override %s/%s → %s\n", pos[0], *unit, *variant)
	return nil
}

func runAssign(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "assign", "--unit U [--service S] [--test T...] [--attr k=v...] [--mint] [-o json]")
	unit := fs.String("unit", "", "the unit id")
	service := fs.String("service", "", "only tests whose change service is this one")
	mint := fs.Bool("mint", false, "let abmeshd mint a fresh unit id")
	var tests, attrs stringList
	fs.Var(&tests, "test", "only this test (repeatable)")
	fs.Var(&attrs, "attr", "unit attribute k=v for targeting (repeatable)")
	out := outputFlag(fs)
	if _, err := parseWithOutput(fs, args, out); err != nil {
		return err
	}
	if *unit == "" && !*mint {
		fs.Usage()
		return errors.New("assign: --unit (or --mint) is required")
	}
	req := &pb.AssignRequest{UnitId: *unit, Service: *service, TestIds: tests, MintUnit: *mint, Attributes: map[string]string{}}
	for _, a := range attrs {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return fmt.Errorf("--attr %q: want key=value", a)
		}
		req.Attributes[k] = v
	}
	c, cctx, done, err := e.connect(ctx)
	if err != nil {
		return err
	}
	defer done()
	r, err := c.assignment.Assign(cctx, req)
	if err != nil {
		return rpcError(err)
	}
	if *out == "json" {
		return printJSON(e.stdout, r)
	}
	fmt.Fprintf(e.stdout, "unit %s (config version %d)\n", r.GetUnitId(), r.GetConfigVersion())
	tw := table(e.stdout)
	fmt.Fprintln(tw, "TEST\tVARIANT\tREASON\tPHASE\tHEADER")
	for _, a := range r.GetAssignments() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\tx-abmesh-%s: %s\n", a.GetTestId(), a.GetVariant(),
			strings.ToLower(strings.TrimPrefix(a.GetReason().String(), "ASSIGNMENT_REASON_")), a.GetPhase(), a.GetTestId(), a.GetVariant())
	}
	if len(r.GetAssignments()) == 0 {
		fmt.Fprintln(tw, "(no running test matches)")
	}
	return tw.Flush()
}
