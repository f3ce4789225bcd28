package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/subset"
)

// TestWriteReportLayer: `abmesh report` and `abmesh cells` name a layer
// factor as the layer, list its tests with "(layer L)", show its
// test/variant levels, and estimate each test's variant against that
// test's control.
func TestWriteReportLayer(t *testing.T) {
	w := subset.WindowCells{Viewpoint: "fx", Seq: 1, Start: time.Unix(0, 0), Metric: "latency_ms", Members: []subset.WindowMember{
		{Test: "fx", Variants: []string{"control", "rounded"}},
		{Test: "checkout-flow", Layer: "checkout-flow", Variants: []string{"pay/control", "pay/one-click", "ship/control", "ship/free", "outside"},
			Tests: []subset.WindowMember{
				{Test: "pay", Variants: []string{"control", "one-click"}, Layer: "checkout-flow"},
				{Test: "ship", Variants: []string{"control", "free"}, Layer: "checkout-flow"},
			}},
	}}
	for i := range 2 {
		for l := range 5 {
			w.Cells = append(w.Cells, subset.Cell{Variants: []int{i, l}, Stats: analysis.CellStats{N: 50, Mean: float64(10 + l), M2: 49}, Requests: 50})
		}
	}
	r := report.Build(w, func(string) (*assign.Experiment, bool) { return nil, false }, report.Options{Now: time.Unix(3600, 0)})
	var b bytes.Buffer
	if err := writeReport(&b, protoconv.ReportToProto(r)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"pay (layer checkout-flow)", "ship (layer checkout-flow)", "CHECKOUT-FLOW", "rounded  ship/free",
		"checkout-flow  pay/one-click", "checkout-flow  ship/free"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "checkout-flow  ship/control") || strings.Contains(out, "checkout-flow  outside") {
		t.Errorf("a control or outside estimated as a variant:\n%s", out)
	}
}
