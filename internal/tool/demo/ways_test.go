package demo

import (
	"context"
	"log/slog"
	"strconv"
	"testing"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/auth"
	"github.com/abmesh/abmesh/internal/daemon"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	"github.com/abmesh/abmesh/internal/tool/shop"
)

// TestMeshWays sends a few requests through the edge to a mesh whose
// frontend serves from forward-auth's headers and whose ad service
// evaluates through OpenFeature: each way serves its services' tests, and
// every evaluation leaves one feature-flag event on an exported span.
// abmeshd authenticates, as in the demo (demoAuth): the SDKs, the edge
// caller and the exporters hold their roles' tokens.
func TestMeshWays(t *testing.T) {
	ctx := context.Background()
	file, tokens, err := demoAuth(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := daemontest.Start(t, daemontest.OTLP(), daemontest.Edge(), func(c *daemon.Config) {
		c.Edge.UnitHeader = edgeUnitHeader
		c.Security.AuthFile = file
	})
	startShop(t, d.Registry())
	m, err := StartMesh(ctx, MeshConfig{Abmeshd: d.Addr(), OTLP: d.OTLPAddr(), Truth: shop.Truths(), Seed: 1,
		Logger: slog.New(slog.DiscardHandler), Ways: DefaultWays(), Edge: d.EdgeAddr(),
		ClientToken: tokens[auth.Client], IngestToken: tokens[auth.Ingest]})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	const n = 20
	for i := range n {
		if err := m.Request(ctx, "ways-"+strconv.Itoa(i), "vip", "checkout", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ways := testWays(d.Registry().Snapshot(), DefaultWays())
	if ways["ui-layout"] != WayEdge || ways["ad-ranker"] != WayOpenFeature || ways["rec-model"] != WaySDK {
		t.Errorf("ways %v", ways)
	}
	events := m.FlagEvents()
	for w := range numWays {
		var got int64
		for id, tw := range ways {
			if tw == w {
				got += events[id]
			}
		}
		if served := m.Evaluations[w].Load(); served == 0 || got != served {
			t.Errorf("%s: %d evaluations served, %d events exported", w, served, got)
		}
	}
	if got := m.Evaluations[WayEdge].Load(); got != n {
		t.Errorf("edge served %d evaluations of ui-layout, want one per request (%d)", got, n)
	}
	if acked, failed := m.SpansAcked.Load(), m.SpansFailed.Load(); acked == 0 || failed != 0 {
		t.Errorf("spans: %d acknowledged, %d failed; want all acknowledged with the ingest token", acked, failed)
	}
}

// startShop applies the shop's manifests to reg and starts every test.
func startShop(tb testing.TB, reg *assign.Registry) {
	tb.Helper()
	ctx := context.Background()
	ids, err := applyShop(ctx, reg)
	if err != nil {
		tb.Fatal(err)
	}
	for _, id := range ids {
		if _, err := reg.Start(ctx, id); err != nil {
			tb.Fatal(err)
		}
	}
}

// TestEdgeServable: the edge's variant is recorded as randomized only for
// a running test without targeting or a slice in which the unit has no
// override.
func TestEdgeServable(t *testing.T) {
	base := assign.Experiment{ID: "t", ChangeService: "frontend", MeasureService: "frontend", Status: assign.StatusRunning, Phase: 1, Phases: []assign.Phase{{Number: 1, Weights: []uint32{50, 50}}},
		Metric: assign.Metric{Kind: assign.MetricLatencyMS}, Plan: assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 1},
		Variants: []assign.Variant{{Name: "control", Weight: 50}, {Name: "b", Weight: 50}}}
	eng, err := assign.Compile(assign.Config{Experiments: []assign.Experiment{base},
		Overrides: []assign.Override{{Experiment: "t", Unit: "pinned", Variant: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	targeted, sliced, paused := base, base, base
	targeted.Targeting = []assign.Rule{{Attribute: "grade", Op: assign.OpEq, Values: []string{"vip"}}}
	sliced.Layer = "l"
	paused.Status = assign.StatusPaused
	for _, tc := range []struct {
		name string
		x    assign.Experiment
		unit string
		want bool
	}{
		{"running", base, "u1", true},
		{"override", base, "pinned", false},
		{"targeted", targeted, "u1", false},
		{"layer", sliced, "u1", false},
		{"paused", paused, "u1", false},
	} {
		if got := edgeServable(eng, &tc.x, tc.unit); got != tc.want {
			t.Errorf("%s: edgeServable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCheckWays refuses ways the mesh cannot serve.
func TestCheckWays(t *testing.T) {
	for _, tc := range []struct {
		cfg MeshConfig
		ok  bool
	}{
		{MeshConfig{Ways: DefaultWays(), Edge: "127.0.0.1:1"}, true},
		{MeshConfig{Ways: map[string]Way{"ad": WayOpenFeature}}, true},
		{MeshConfig{Ways: DefaultWays()}, false},                                      // edge without an endpoint
		{MeshConfig{Ways: map[string]Way{"ad": WayEdge}, Edge: "127.0.0.1:1"}, false}, // edge not at the entry
		{MeshConfig{Ways: map[string]Way{"warehouse": WaySDK}}, false},                // no such service
		{MeshConfig{Ways: map[string]Way{"ad": numWays}}, false},                      // no such way
	} {
		if err := checkWays(tc.cfg); (err == nil) != tc.ok {
			t.Errorf("checkWays(%v, edge %q) = %v, want ok %v", tc.cfg.Ways, tc.cfg.Edge, err, tc.ok)
		}
	}
}
