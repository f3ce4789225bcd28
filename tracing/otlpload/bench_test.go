package otlpload

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/otlp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
)

// BenchmarkReceiverPath measures abmeshd's work per span without the
// network, as the registered receiver does it: gRPC's decode into an
// Empty (copying the request), otlp.DecodeProto, Assembler.Add, and
// completion with BuildObservation, for 500-span requests of realistic
// 10-span traces.
func BenchmarkReceiverPath(b *testing.B) {
	cfg := Config{Endpoint: "x", Duration: time.Second}
	cfg.setDefaults()
	g := newGenerator(cfg, 500, 0)
	asm, err := tracing.NewAssembler(tracing.Config{TickInterval: -1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer asm.Close()
	spans := receiveLoop(b, g, asm)
	if c := asm.Stats(); c.SpansAccepted != uint64(spans) || c.MalformedTotal() != 0 || c.TracesWithoutUnit != 0 {
		b.Fatalf("counters %+v", c)
	}
}

// receiveLoop runs the benchmark loop of the receiver's path: each
// iteration takes the generator's next 500-span request through gRPC's
// decode into an Empty (copying the request), otlp.DecodeProto,
// Assembler.Add and completion. It reports ns/span and returns the spans.
func receiveLoop(b *testing.B, g *generator, asm *tracing.Assembler) int {
	var seq atomic.Uint64
	var batch tracing.Batch
	b.ReportAllocs()
	spans := 0
	for b.Loop() {
		var in emptypb.Empty
		if err := proto.Unmarshal(g.next(&seq), &in); err != nil {
			b.Fatal(err)
		}
		batch.Reset()
		if err := otlp.DecodeProto(in.ProtoReflect().GetUnknown(), &batch); err != nil {
			b.Fatal(err)
		}
		if _, err := asm.Add(&batch); err != nil {
			b.Fatal(err)
		}
		asm.Flush()
		spans += 500
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
	return spans
}

// BenchmarkGenerate measures the load generator's own cost per span.
func BenchmarkGenerate(b *testing.B) {
	cfg := Config{Endpoint: "x", Duration: time.Second}
	cfg.setDefaults()
	g := newGenerator(cfg, 500, 0)
	var seq atomic.Uint64
	for b.Loop() {
		g.next(&seq)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/span")
}

// TestGeneratorDecodes checks that patched requests decode to valid,
// distinct traces with units and exposures.
func TestGeneratorDecodes(t *testing.T) {
	cfg := Config{Endpoint: "x", Duration: time.Second, Units: 7}
	cfg.setDefaults()
	g := newGenerator(cfg, 500, 3)
	var seq atomic.Uint64
	var obs []*tracing.Observation
	asm, err := tracing.NewAssembler(tracing.Config{TickInterval: -1},
		tracing.ConsumerFunc(func(o *tracing.Observation) { obs = append(obs, o) }))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		var b tracing.Batch
		if err := otlp.DecodeProto(g.next(&seq), &b); err != nil {
			t.Fatal(err)
		}
		if res, err := asm.Add(&b); err != nil || res.Accepted != 500 {
			t.Fatalf("Add: %+v %v", res, err)
		}
	}
	asm.Close()
	if len(obs) != 100 {
		t.Fatalf("%d traces, want 100", len(obs))
	}
	o := obs[0]
	if o.Unit != "user-0000000002" || len(o.Services) != 5 || len(o.Edges) != 4 || len(o.Exposures) != 2 {
		t.Errorf("observation = %+v", o)
	}
	if v, ok := o.Metric("checkout", "latency_ms"); !ok || v != 24 {
		t.Errorf("checkout latency = %v, %v", v, ok)
	}
	if v, ok := o.Metric("fraud", "error"); !ok || v != 1 {
		t.Errorf("fraud error = %v, %v (trace 0 of 20 fails)", v, ok)
	}
}
