package daemon

import (
	"context"
	"testing"

	"google.golang.org/grpc"
)

// BenchmarkMetricsUnary is what the metrics interceptor adds to each
// unary call (Assign's path): counting the start, the call in flight, the
// latency and the code.
func BenchmarkMetricsUnary(b *testing.B) {
	m := newMetrics(&Daemon{})
	info := &grpc.UnaryServerInfo{FullMethod: "/abmesh.v1.AssignmentService/Assign"}
	h := func(context.Context, any) (any, error) { return nil, nil }
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = m.unary(ctx, nil, info, h)
		}
	})
}
