package web

import (
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/subset"
)

// layerWindow is fx's window with the layer checkout-flow (pay-button and
// ship-promo) as one factor: its levels, tests and cells.
func layerWindow() subset.WindowCells {
	ux := []subset.Reason{{Kind: "user_experience", EmitScope: "measure", SusceptibleScope: "measure", Shared: []string{"checkout"}}}
	w := subset.WindowCells{
		Viewpoint: "fx", Seq: 1, Start: now.Add(-time.Hour), MeasureService: "checkout", Metric: "latency_ms",
		Members: []subset.WindowMember{
			{Test: "fx", Phase: 1, Variants: []string{"control", "rounded"}},
			{Test: "checkout-flow", Layer: "checkout-flow",
				Variants: []string{"pay-button/control", "pay-button/one-click", "ship-promo/control", "ship-promo/free-shipping", subset.OutsideLevel},
				Tests: []subset.WindowMember{
					{Test: "pay-button", Phase: 2, Variants: []string{"control", "one-click"}, Reasons: ux, Layer: "checkout-flow", Slice: assign.Slice{End: 4000}},
					{Test: "ship-promo", Phase: 1, Variants: []string{"control", "free-shipping"}, Reasons: ux, Layer: "checkout-flow", Slice: assign.Slice{Start: 4000, End: 8000}},
				}},
		},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 2 {
		for l := range 5 {
			var s analysis.CellStats
			for range 30 {
				s.Add(50 + 3*float64(l) + rng.NormFloat64())
			}
			w.Cells = append(w.Cells, subset.Cell{Variants: []int{i, l}, Stats: s})
			w.Quality.Counted += s.N
		}
	}
	w.Quality.Seen = w.Quality.Counted
	return w
}

// TestReportPageLayer: the page shows a layer factor as the layer, with
// its tests and their reasons below it, its levels in the cells, and each
// test's variant against that test's control; the index names the factor
// with its tests.
func TestReportPageLayer(t *testing.T) {
	src := &fakeSource{
		reports: map[string]*report.Report{"fx": report.Build(layerWindow(), lookup, report.Options{Now: now})},
		subsets: []subset.Subset{{Viewpoint: "fx", Members: []subset.Member{
			{Test: "fx"}, {Test: "pay-button", Layer: "checkout-flow"}, {Test: "ship-promo", Layer: "checkout-flow"}}}},
	}
	ts := newServer(t, src)
	res := get(t, ts, "/reports/fx")
	if res.code != http.StatusOK {
		t.Fatalf("GET /reports/fx = %d\n%s", res.code, res.body)
	}
	doc := parseHTML(t, res.body)
	sub := rows(t, doc, "subset")
	if len(sub) != 5 || sub[2][0] != "checkout-flow" || !strings.HasPrefix(sub[2][3], "layer checkout-flow") ||
		sub[3][0] != "pay-button" || sub[3][1] != "2" || !strings.Contains(sub[3][3], "emits user_experience") || sub[4][0] != "ship-promo" {
		t.Errorf("subset rows %q", sub)
	}
	var effects [][2]string
	for _, r := range rows(t, doc, "effects")[1:] {
		effects = append(effects, [2]string{r[0], r[1]})
	}
	want := [][2]string{{"fx", "rounded"}, {"checkout-flow", "pay-button/one-click"}, {"checkout-flow", "ship-promo/free-shipping"}}
	if !slices.Equal(effects, want) {
		t.Errorf("effects %q, want %q", effects, want)
	}
	if cells := rows(t, doc, "cells"); len(cells) != 11 || cells[0][1] != "checkout-flow" || cells[5][1] != subset.OutsideLevel {
		t.Errorf("cells %q", cells)
	}

	idx := rows(t, parseHTML(t, get(t, ts, "/").body), "subsets")
	if len(idx) != 2 || idx[1][1] != "fx, checkout-flow (pay-button, ship-promo)" {
		t.Errorf("index rows %q", idx)
	}
}
