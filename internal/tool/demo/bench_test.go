package demo

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	"github.com/abmesh/abmesh/internal/tool/shop"
	"github.com/abmesh/abmesh/internal/tool/truth"
	"github.com/abmesh/abmesh/tracing"
)

// BenchmarkMeshRequest measures one user request through the demo mesh
// (frontend → … → checkout, 11–17 hops over real gRPC on loopback) with
// tracing on and OTLP export to a real abmeshd, with and without the abmesh
// SDK; the difference is the SDK's share of a request's latency, at
// saturation (8 requests in flight per core) and one request at a time. The
// catalog's simulated work (a sleep) is off so the figures are the mesh's
// own cost. Run it with -benchtime 10s and -cpu 2.
func BenchmarkMeshRequest(b *testing.B) {
	for _, tc := range []struct {
		name     string
		noSDK    bool
		parallel bool
	}{{"sdk/saturated", false, true}, {"no-sdk/saturated", true, true}, {"sdk/one-at-a-time", false, false}, {"no-sdk/one-at-a-time", true, false}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			d := daemontest.Start(b, daemontest.OTLP(), func(c *daemon.Config) { c.Assembly = tracing.Config{IdleTimeout: time.Second} })
			startShop(b, d.Registry())
			var truths []truth.Model
			for _, o := range shop.Truths() {
				if m, _ := assign.ParseMetric(o.Metric); m.Kind != assign.MetricLatencyMS { // no simulated work (sleep) in the catalog
					truths = append(truths, o)
				}
			}
			m, err := StartMesh(ctx, MeshConfig{Abmeshd: d.Addr(), OTLP: d.OTLPAddr(), Truth: truths, Seed: 1,
				NoSDK: tc.noSDK, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Stop(ctx)
			var n atomic.Int64
			b.ResetTimer()
			start := time.Now()
			if !tc.parallel {
				// One request at a time: the latency a single user sees.
				for i := 0; i < b.N; i++ {
					if err := m.Request(ctx, "bench-"+strconv.Itoa(i), "vip", "checkout", 0); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
				return
			}
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if err := m.Request(ctx, "bench-"+strconv.FormatInt(i, 10), "vip", "checkout", 0); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}
