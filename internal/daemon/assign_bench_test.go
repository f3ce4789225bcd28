package daemon_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// BenchmarkAssignRPC is the whole Assign call over real gRPC on loopback
// to a real abmeshd with 10 running tests, every response carrying 10
// assignments and their 10 routing headers: client and server in one
// process, so its CPU profile (-cpuprofile) shows the server's share
// beside the client's. The server's CPU per call alone is measured from
// outside by `abmesh bench assign --pid` (docs/performance.md).
func BenchmarkAssignRPC(b *testing.B) {
	d := daemontest.Start(b)
	for i := 0; i < 10; i++ {
		x := &assign.Experiment{
			ID: "bench-" + strconv.Itoa(i), Owner: "team", ChangeService: "svc", MeasureService: "svc",
			Metric:   assign.Metric{Kind: assign.MetricAttribute, Attribute: "order.value", HigherIsBetter: true},
			Variants: []assign.Variant{{Name: "control", Weight: 50}, {Name: "treatment", Weight: 50}},
			Plan:     assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 1},
		}
		daemontest.CreateStarted(b, d.Registry(), x)
	}
	conns := []*grpc.ClientConn{daemontest.Dial(b, d.Addr()), daemontest.Dial(b, d.Addr())}
	var worker atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16) // 32 callers on 2 cores, as in docs/performance.md
	b.ResetTimer()
	b.RunParallel(func(p *testing.PB) {
		w := worker.Add(1)
		c := pb.NewAssignmentServiceClient(conns[w%2])
		i := int(w) * 1_000_000
		for p.Next() {
			i++
			resp, err := c.Assign(ctx, &pb.AssignRequest{UnitId: "user-" + strconv.Itoa(i%100000)})
			if err != nil {
				b.Error(err)
				return
			}
			if len(resp.GetAssignments()) != 10 {
				b.Errorf("%d assignments, want 10", len(resp.GetAssignments()))
				return
			}
		}
	})
}
