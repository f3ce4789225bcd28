package otlpload

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/proccpu"
	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/otlp"
)

// BenchmarkDecodeRealistic decodes the load generator's 500-span requests
// of realistic 10-span traces (341 wire bytes a span: ten attributes, a
// flag event on two spans in ten) the receiver's way, DecodeSummaries,
// and the old way, DecodeProto into the span model. Besides wall time per
// span it reports the process's CPU time per span (cpu-ns/span, from
// /proc: on a machine shared with other work, wall time measures the
// share of a core the benchmark got, CPU time the work).
func BenchmarkDecodeRealistic(b *testing.B) {
	for _, c := range []struct {
		name   string
		decode func([]byte, *tracing.Batch) error
	}{{"summaries", otlp.DecodeSummaries}, {"spans", otlp.DecodeProto}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := Config{Endpoint: "x", Duration: time.Second}
			cfg.setDefaults()
			g := newGenerator(cfg, 500, 0)
			var seq atomic.Uint64
			data := g.next(&seq)
			var batch tracing.Batch
			b.ReportAllocs()
			cpu0, err := proccpu.Time(os.Getpid())
			if err != nil {
				b.Skip(err)
			}
			for b.Loop() {
				batch.Reset()
				if err := c.decode(data, &batch); err != nil {
					b.Fatal(err)
				}
			}
			cpu1, _ := proccpu.Time(os.Getpid())
			if batch.Len() != 500 {
				b.Fatalf("decoded %d spans, want 500", batch.Len())
			}
			spans := float64(b.N * 500)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, "ns/span")
			b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/spans, "cpu-ns/span")
		})
	}
}
