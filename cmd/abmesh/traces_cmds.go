package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/files"
)

// tracesInspectJSON is the -o json output of "abmesh traces inspect".
type tracesInspectJSON struct {
	Traces []tracesTraceJSON `json:"traces"`
}

type tracesTraceJSON struct {
	TraceID   string                `json:"trace_id"`
	Unit      string                `json:"unit"`
	Services  []string              `json:"services"`
	Edges     []tracing.Edge        `json:"edges"`
	Exposures []tracesExposureJSON  `json:"exposures"`
	Conflicts []tracesConflictJSON  `json:"conflicts"`
	Metrics   []tracesServiceMetric `json:"metrics"`
}

type tracesExposureJSON struct {
	Test    string `json:"test"`
	Variant string `json:"variant"`
	Service string `json:"service"`
}

type tracesConflictJSON struct {
	Test     string   `json:"test"`
	Variants []string `json:"variants"`
}

type tracesServiceMetric struct {
	Service    string             `json:"service"`
	LatencyMS  float64            `json:"latency_ms"`
	Error      bool               `json:"error"`
	Attributes map[string]float64 `json:"attributes"`
}

// tracesInspectCmd is "abmesh traces inspect FILE". FILE is a Jaeger UI
// JSON export or OTLP JSON (one document or one per line). Its spans are
// assembled into traces exactly as abmeshd does, and for each trace, in
// file order, it prints the unit, the services and calls on the path, the
// feature-flag exposures, conflicts and per-service metrics: aligned text
// for people, followed by a summary of what was rejected; or with -o json
// exactly
//
//	{"traces":[{"trace_id":"<32 hex>","unit":"…","services":[…],
//	  "edges":[{"caller":…,"callee":…}],
//	  "exposures":[{"test":…,"variant":…,"service":…}],
//	  "conflicts":[{"test":…,"variants":[…]}],
//	  "metrics":[{"service":…,"latency_ms":…,"error":…,"attributes":{…}}]}]}
//
// Errors name the file and, for malformed JSON, the line and column.
func tracesInspectCmd(fs *flag.FlagSet) body {
	// "text" is kept as another name of the table.
	output := outputFlag(fs, "table", "json", "text")
	return func(_ context.Context, r *request) error {
		if len(r.args) != 1 {
			return errors.New("traces inspect: want exactly one FILE")
		}
		obs, counters, format, err := tracesInspectFile(r.args[0])
		if err != nil {
			return err
		}
		if *output == "json" {
			return tracesPrintJSON(r.stdout, obs)
		}
		return tracesPrintText(r.stdout, r.args[0], format, obs, counters)
	}
}

// tracesInspectFile reads a trace file and assembles its traces.
func tracesInspectFile(path string) ([]*tracing.Observation, tracing.AssemblyStats, files.Format, error) {
	var b tracing.Batch
	format, err := files.ReadFile(path, &b)
	if err != nil {
		return nil, tracing.AssemblyStats{}, format, fmt.Errorf("traces inspect: %w", err)
	}
	var obs []*tracing.Observation
	n := len(b.Spans) + 1
	asm, err := tracing.NewAssembler(tracing.Config{
		TickInterval:     -1, // completion by Flush only
		MaxTraces:        n,
		MaxSpans:         n,
		MaxSpansPerTrace: n,
		RecentTraces:     1,
	}, tracing.ConsumerFunc(func(o *tracing.Observation) { obs = append(obs, o) }))
	if err != nil {
		return nil, tracing.AssemblyStats{}, format, err
	}
	if _, err := asm.Add(&b); err != nil {
		return nil, tracing.AssemblyStats{}, format, fmt.Errorf("traces inspect: %s: %w", path, err)
	}
	asm.Close()
	return obs, asm.Stats(), format, nil
}

func tracesPrintJSON(w io.Writer, obs []*tracing.Observation) error {
	out := tracesInspectJSON{Traces: make([]tracesTraceJSON, 0, len(obs))}
	for _, o := range obs {
		t := tracesTraceJSON{
			TraceID:   o.TraceID,
			Unit:      o.Unit,
			Services:  append([]string{}, o.Services...),
			Edges:     append([]tracing.Edge{}, o.Edges...),
			Exposures: make([]tracesExposureJSON, 0, len(o.Exposures)),
			Conflicts: make([]tracesConflictJSON, 0, len(o.Conflicts)),
			Metrics:   make([]tracesServiceMetric, 0, len(o.Metrics)),
		}
		for _, x := range o.Exposures {
			t.Exposures = append(t.Exposures, tracesExposureJSON{Test: x.Test, Variant: x.Variant, Service: x.Service})
		}
		for _, c := range o.Conflicts {
			t.Conflicts = append(t.Conflicts, tracesConflictJSON{Test: c.Test, Variants: c.Variants})
		}
		for _, m := range o.Metrics {
			attrs := m.Attributes
			if attrs == nil {
				attrs = map[string]float64{}
			}
			t.Metrics = append(t.Metrics, tracesServiceMetric{Service: m.Service, LatencyMS: m.LatencyMS, Error: m.Error, Attributes: attrs})
		}
		out.Traces = append(out.Traces, t)
	}
	return printPlainJSON(w, out)
}

func tracesPrintText(w io.Writer, path string, format files.Format, obs []*tracing.Observation, c tracing.AssemblyStats) error {
	w = escaped(w) // units, services and attributes come from the file
	tw := table(w)
	for i, o := range obs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		unit := o.Unit
		if unit == "" {
			unit = "(none)"
		}
		// Labels are padded by hand so that each table below can be
		// aligned on its own.
		fmt.Fprintf(w, "trace %s\n", o.TraceID)
		fmt.Fprintf(w, "  %-10s %s\n", "unit", unit)
		fmt.Fprintf(w, "  %-10s %s\n", "start", o.Start.UTC().Format(time.RFC3339Nano))
		fmt.Fprintf(w, "  %-10s %s\n", "services", strings.Join(o.Services, ", "))
		calls := make([]string, 0, len(o.Edges))
		for _, e := range o.Edges {
			s := e.Caller + " → " + e.Callee
			if e.Calls > 1 {
				s += fmt.Sprintf(" ×%d", e.Calls)
			}
			calls = append(calls, s)
		}
		if len(calls) == 0 {
			calls = []string{"(none)"}
		}
		fmt.Fprintf(w, "  %-10s %s\n", "calls", strings.Join(calls, ", "))
		if len(o.Exposures) == 0 {
			fmt.Fprintf(w, "  %-10s (none)\n", "exposures")
		} else {
			fmt.Fprintf(tw, "  %-10s TEST\tVARIANT\tSERVICE\tPHASE\tREASON\n", "exposures")
			for _, x := range o.Exposures {
				fmt.Fprintf(tw, "  %-10s %s\t%s\t%s\t%d\t%s\n", "", x.Test, x.Variant, x.Service, x.Phase, dash(x.Reason))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		for _, cf := range o.Conflicts {
			fmt.Fprintf(w, "  %-10s %s served %s\n", "conflict", cf.Test, strings.Join(cf.Variants, " and "))
		}
		fmt.Fprintf(tw, "  %-10s SERVICE\tLATENCY_MS\tERROR\tATTRIBUTES\n", "metrics")
		for _, m := range o.Metrics {
			fmt.Fprintf(tw, "  %-10s %s\t%.3f\t%d\t%s\n", "", m.Service, m.LatencyMS, tracesBool(m.Error), dash(tracesAttrs(m.Attributes)))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(obs) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%s (%s): %d traces, %d spans read, %d accepted", path, format, len(obs), c.SpansReceived, c.SpansAccepted)
	if n := c.MalformedTotal(); n > 0 {
		keys := make([]string, 0, len(c.Malformed))
		for k := range c.Malformed {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, c.Malformed[k]))
		}
		fmt.Fprintf(w, ", %d rejected (%s)", n, strings.Join(parts, ", "))
	}
	if c.SpansInCycles > 0 {
		fmt.Fprintf(w, ", %d spans in parent cycles", c.SpansInCycles)
	}
	if c.ValuesTruncated > 0 {
		fmt.Fprintf(w, ", %d values truncated", c.ValuesTruncated)
	}
	_, err := fmt.Fprintln(w)
	return err
}

func tracesAttrs(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.FormatFloat(m[k], 'g', -1, 64))
	}
	return strings.Join(parts, " ")
}

func tracesBool(b bool) int {
	if b {
		return 1
	}
	return 0
}
