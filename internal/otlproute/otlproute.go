// Package otlproute sends each trace's spans to one of several OTLP
// receivers chosen by its trace id alone, so every trace stays whole on one
// receiver: what an OpenTelemetry Collector's load-balancing exporter with
// routing_key traceID does in front of abmeshd replicas (docs/scaling.md).
// That exporter uses a consistent-hash ring; here the rule is FNV-1a of the
// trace id over the list of receivers, which the demo's --replicas and the
// replica tests share: any function of the trace id alone keeps traces
// whole, which is all the replicas need.
package otlproute

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sync"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Pick returns the receiver, in [0, n), of the trace whose id is traceID:
// FNV-1a (32 bits) of its bytes modulo n. n must be positive.
func Pick(traceID []byte, n int) int {
	h := fnv.New32a()
	h.Write(traceID)
	return int(h.Sum32() % uint32(n))
}

// Router is an sdktrace.SpanExporter that splits each batch by Pick of
// the spans' trace ids over its exporters, and tallies what it sent each.
// It is safe for concurrent use if its exporters are.
type Router struct {
	exps  []sdktrace.SpanExporter
	tally *Tally
}

// NewRouter returns a Router over exps (at least one), counting in tally
// (nil: no counts), whose receivers must be as many as exps.
func NewRouter(tally *Tally, exps ...sdktrace.SpanExporter) *Router {
	if len(exps) == 0 {
		panic("otlproute: a router needs an exporter")
	}
	if tally != nil && len(tally.counts) != len(exps) {
		panic(fmt.Sprintf("otlproute: a tally of %d receivers for %d exporters", len(tally.counts), len(exps)))
	}
	return &Router{exps: exps, tally: tally}
}

// ExportSpans exports each span to its trace's exporter. The parts go out
// one after the other; a part that fails does not stop the others, and
// the error names each receiver (from 1) that failed. The tally counts
// every part, failed or not (an OTLP partial success is an error too):
// it says where the spans went, not what was accepted.
func (r *Router) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	parts := make([][]sdktrace.ReadOnlySpan, len(r.exps))
	for _, s := range spans {
		id := s.SpanContext().TraceID()
		i := Pick(id[:], len(r.exps))
		parts[i] = append(parts[i], s)
	}
	var errs []error
	for i, part := range parts {
		if len(part) == 0 {
			continue
		}
		r.tally.add(i, part)
		if err := r.exps[i].ExportSpans(ctx, part); err != nil {
			errs = append(errs, fmt.Errorf("receiver %d: %w", i+1, err))
		}
	}
	return errors.Join(errs...)
}

// Shutdown shuts every exporter down.
func (r *Router) Shutdown(ctx context.Context) error {
	var errs []error
	for _, e := range r.exps {
		errs = append(errs, e.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// Count is what was sent to one receiver.
type Count struct {
	// Traces counts root spans (spans without a parent): one per trace
	// whose root was exported.
	Traces int64 `json:"traces"`
	Spans  int64 `json:"spans"`
}

// Tally counts, per receiver, the spans and traces Routers sent it, and
// can write one line per trace. Several Routers (one per service, say) may
// share it.
type Tally struct {
	mu     sync.Mutex
	counts []Count
	routes io.Writer
	err    error
}

// NewTally returns a tally of n receivers. With routes non-nil, each
// exported root span writes a line "TRACE_ID RECEIVER" to it (the
// receiver numbered from 1).
func NewTally(n int, routes io.Writer) *Tally {
	return &Tally{counts: make([]Count, n), routes: routes}
}

func (t *Tally) add(i int, spans []sdktrace.ReadOnlySpan) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.counts[i].Spans += int64(len(spans))
	for _, s := range spans {
		if s.Parent().IsValid() {
			continue
		}
		t.counts[i].Traces++
		if t.routes != nil && t.err == nil {
			_, t.err = fmt.Fprintf(t.routes, "%s %d\n", s.SpanContext().TraceID(), i+1)
		}
	}
}

// Counts returns what was sent to each receiver so far, whatever the
// exports' outcome (see Router.ExportSpans).
func (t *Tally) Counts() []Count {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Count(nil), t.counts...)
}

// Err returns the first error writing the routes, if any; no line is
// written after it.
func (t *Tally) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

var _ sdktrace.SpanExporter = (*Router)(nil)
