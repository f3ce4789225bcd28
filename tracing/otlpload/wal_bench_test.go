package otlpload

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/wal"
	"github.com/abmesh/abmesh/tracing"
	"github.com/abmesh/abmesh/tracing/otlp"
)

// BenchmarkReceiverPathWAL is the receiver's path with the write-ahead
// log on a real file in a temporary directory: 8 concurrent exporters,
// each decoding its 500-span request, appending it to the log, adding it
// to the assembler and waiting for its fsync (group commit), as the
// registered receiver does with abmeshd's --wal; traces are completed
// every 20 requests.
func BenchmarkReceiverPathWAL(b *testing.B) {
	cfg := Config{Endpoint: "x", Duration: time.Second}
	cfg.setDefaults()
	l, err := wal.Open(b.TempDir(), 0, wal.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	asm, err := tracing.NewAssembler(tracing.Config{TickInterval: -1, MaxSpans: 1 << 22, MaxTraces: 1 << 20}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer asm.Close()
	var seq, worker, reqs atomic.Uint64
	b.SetParallelism(4) // 4 × GOMAXPROCS exporters
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := newGenerator(cfg, 500, worker.Add(1))
		var batch tracing.Batch
		for pb.Next() {
			data := g.next(&seq)
			batch.Reset()
			if err := otlp.DecodeProto(data, &batch); err != nil {
				b.Error(err)
				return
			}
			s, err := l.Append(data)
			if err != nil {
				b.Error(err)
				return
			}
			batch.Seq = s
			if _, err := asm.Add(&batch); err != nil {
				b.Error(err)
				return
			}
			l.Done(s)
			if err := l.Wait(context.Background(), s); err != nil {
				b.Error(err)
				return
			}
			if reqs.Add(1)%20 == 0 {
				asm.Flush()
				l.Truncate(l.Pending())
			}
		}
	})
	spans := float64(reqs.Load()) * 500
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/spans, "ns/span")
	b.ReportMetric(spans/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(l.Stats().Syncs)/float64(reqs.Load()), "fsyncs/request")
}
