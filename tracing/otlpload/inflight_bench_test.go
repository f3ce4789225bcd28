package otlpload

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/otlp"
)

// BenchmarkInFlightBytes measures the heap a trace in flight holds:
// realistic 10-span traces (the load generator's, decoded from the wire
// as the receiver does) are added to an Assembler that never completes
// them, keeping the numeric attribute a viewpoint asks for
// (shop.order.value), and the live heap after a collection is compared
// with the heap before. It reports heap bytes per span and per trace in
// flight, and what the Assembler charges (BytesInFlight) per span.
func BenchmarkInFlightBytes(b *testing.B) {
	const traces = 100_000
	cfg := Config{Endpoint: "x", Duration: time.Second}
	cfg.setDefaults()
	g := newGenerator(cfg, 500, 0)
	keep := func(key string) bool { return key == "shop.order.value" }
	for b.Loop() {
		b.StopTimer()
		asm, err := tracing.NewAssembler(tracing.Config{
			TickInterval: -1, MaxTraces: traces, MaxSpans: traces * cfg.TraceSize, MaxBytes: 1 << 30,
			RecentTraces: 1, KeepMetric: keep,
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
		var seq atomic.Uint64
		var batch tracing.Batch
		before := liveHeap()
		b.StartTimer()
		for range traces * cfg.TraceSize / 500 {
			batch.Reset()
			if err := otlp.DecodeProto(g.next(&seq), &batch); err != nil {
				b.Fatal(err)
			}
			if _, err := asm.Add(&batch); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		batch = tracing.Batch{}
		after := liveHeap()
		st := asm.Stats()
		if st.TracesInFlight != traces {
			b.Fatalf("%d traces in flight, want %d", st.TracesInFlight, traces)
		}
		heap := float64(after) - float64(before)
		b.ReportMetric(heap/float64(st.SpansInFlight), "B/span")
		b.ReportMetric(heap/float64(st.TracesInFlight), "B/trace")
		b.ReportMetric(float64(st.BytesInFlight)/float64(st.SpansInFlight), "charged-B/span")
		runtime.KeepAlive(asm)
		asm.Close()
		b.StartTimer()
	}
}

// liveHeap returns the heap in use after two collections.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
