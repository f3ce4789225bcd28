package protoconv

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/subset"
)

// TestLayerFactorToProto: a layer factor is one of the report's factors,
// named by the layer, and its tests are listed as subset members marked
// with the layer; a subset's layer marks survive the round trip.
func TestLayerFactorToProto(t *testing.T) {
	w := subset.WindowCells{Viewpoint: "fx", Seq: 1, Metric: "latency_ms", Members: []subset.WindowMember{
		{Test: "fx", Phase: 1, Variants: []string{"control", "rounded"}},
		{Test: "checkout-flow", Layer: "checkout-flow", Variants: []string{"pay/control", "pay/one-click", "ship/control", "outside"},
			Tests: []subset.WindowMember{
				{Test: "pay", Variants: []string{"control", "one-click"}, Layer: "checkout-flow", Reasons: []subset.Reason{{Kind: "k"}}},
				{Test: "ship", Variants: []string{"control"}, Layer: "checkout-flow"},
			}},
	}}
	rep := report.Build(w, func(string) (*assign.Experiment, bool) { return nil, false }, report.Options{Now: time.Unix(0, 0)})
	p := ReportToProto(rep)
	if !slices.Equal(p.GetFactors(), []string{"fx", "checkout-flow"}) {
		t.Errorf("factors %q", p.GetFactors())
	}
	var got [][2]string
	for _, m := range p.GetSubset().GetMembers() {
		got = append(got, [2]string{m.GetTestId(), m.GetLayer()})
	}
	if want := [][2]string{{"fx", ""}, {"pay", "checkout-flow"}, {"ship", "checkout-flow"}}; !slices.Equal(got, want) {
		t.Errorf("members %q, want %q", got, want)
	}
	if r := p.GetSubset().GetMembers()[1].GetReasons(); len(r) != 1 || r[0].GetKind() != "k" {
		t.Errorf("pay's reasons %v", r)
	}

	sub := subset.Subset{Viewpoint: "fx", Members: []subset.Member{{Test: "fx"}, {Test: "pay", Layer: "checkout-flow"}, {Test: "ship", Layer: "checkout-flow"}}}
	if back := SubsetFromProto(SubsetToProto(sub, nil)); !reflect.DeepEqual(back, sub) {
		t.Errorf("round trip %+v, want %+v", back, sub)
	}
}
