package client_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// TestConfigAtSizeLimitStreams fills abmeshd's configuration to within
// 128 bytes of assign.MaxConfigBytes and checks that the SDK receives it
// whole over a real Watch stream, and that one more experiment is refused
// over gRPC with InvalidArgument naming the configuration and the limit.
func TestConfigAtSizeLimitStreams(t *testing.T) {
	d := daemontest.Start(t)
	reg := d.Registry()
	// Creating and starting add two timestamps and a phase: under 128 bytes.
	createStarted(t, reg, fillTo(t, reg.Snapshot().Config(), assign.MaxConfigBytes-128))
	cfg := reg.Snapshot().Config()
	if n := cfg.EncodedSize(); n > assign.MaxConfigBytes || n < assign.MaxConfigBytes-128 {
		t.Fatalf("EncodedSize %d, want within 128 bytes under %d", n, assign.MaxConfigBytes)
	}
	wire := proto.Size(protoconv.SnapshotToProto(cfg))
	t.Logf("config: EncodedSize %d bytes, protobuf %d bytes", cfg.EncodedSize(), wire)

	c := newClient(t, d.Addr())
	waitReady(t, c)
	waitVersion(t, c, reg.Version())
	got, ok := c.Engine().Experiment("big")
	if !ok || len(got.Targeting) != len(cfg.Experiments[0].Targeting) {
		t.Fatalf("SDK's copy of the big experiment: found %v, %d rules", ok, len(got.Targeting))
	}
	if s := c.Stats(); s.SnapshotsRejected != 0 || s.Reconnects != 0 {
		t.Fatalf("stats: %+v", s)
	}

	api := pb.NewExperimentServiceClient(daemontest.Dial(t, d.Addr()))
	_, err := api.CreateExperiment(context.Background(), &pb.CreateExperimentRequest{Experiment: protoconv.ExperimentToProto(newExp("one-more", "recommendation"))})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument ||
		!strings.HasPrefix(st.Message(), assign.ConfigField+": ") || !strings.Contains(st.Message(), fmt.Sprint(assign.MaxConfigBytes)) {
		t.Fatalf("create past the limit: %v, want InvalidArgument naming %q and %d", err, assign.ConfigField, assign.MaxConfigBytes)
	}
}

// fillTo returns an experiment "big" of service recommendation whose
// targeting values (not_in rules, so every unit still matches) bring cfg
// to at most limit bytes of EncodedSize, within a few bytes.
func fillTo(t *testing.T, cfg assign.Config, limit int) *assign.Experiment {
	t.Helper()
	x := newExp("big", "recommendation")
	value := strings.Repeat("v", assign.MaxAttributeValueLen)
	size := func() int {
		c := cfg
		c.Experiments = append(c.Experiments[:len(c.Experiments):len(c.Experiments)], *x)
		return c.EncodedSize()
	}
	for i := 0; ; i++ {
		if i%1000 == 0 {
			if len(x.Targeting) == assign.MaxRules {
				t.Fatal("rules exhausted before the limit")
			}
			x.Targeting = append(x.Targeting, assign.Rule{Attribute: fmt.Sprintf("attr-%d", len(x.Targeting)), Op: assign.OpNotIn})
		}
		r := &x.Targeting[len(x.Targeting)-1]
		r.Values = append(r.Values, value)
		if size() > limit {
			// The last value takes what is left, to the byte where possible.
			for n := len(value) - 1; n > 0; n-- {
				r.Values[len(r.Values)-1] = value[:n]
				if size() <= limit {
					return x
				}
			}
			t.Fatal("cannot fit the last value")
		}
	}
}
