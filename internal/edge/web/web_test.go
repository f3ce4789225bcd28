package web

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/html"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/internal/testkit"
	"github.com/abmesh/abmesh/subset"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var experiments = map[string]*assign.Experiment{
	"rec-model": {
		ID: "rec-model", ChangeService: "recommendation", MeasureService: "frontend",
		Metric:   assign.Metric{Kind: assign.MetricAttribute, Attribute: "shop.order.value", HigherIsBetter: true},
		Variants: []assign.Variant{{Name: "control", Weight: 50}, {Name: "ml-v2", Weight: 50}},
		Plan: assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 6, SD: 20,
			Interactions: []assign.PlannedInteraction{{With: "ui-layout", MDE: 6}}},
		Status: assign.StatusRunning, Phase: 1,
	},
	"ui-layout": {
		ID: "ui-layout", ChangeService: "frontend", MeasureService: "frontend",
		Metric:   assign.Metric{Kind: assign.MetricAttribute, Attribute: "shop.order.value", HigherIsBetter: true},
		Variants: []assign.Variant{{Name: "control", Weight: 50}, {Name: "two-column", Weight: 50}},
		Plan:     assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 6, SD: 20},
		Status:   assign.StatusRunning, Phase: 1,
	},
	"catalog-cache": {
		ID: "catalog-cache", ChangeService: "productcatalog", MeasureService: "productcatalog",
		Variants: []assign.Variant{{Name: "control", Weight: 50}, {Name: "cached", Weight: 50}},
		Plan:     assign.Plan{Alpha: 0.05, Power: 0.8, MDE: 1, SD: 3},
		Status:   assign.StatusRunning, Phase: 1,
	},
}

func lookup(id string) (*assign.Experiment, bool) {
	x, ok := experiments[id]
	return x, ok
}

// recModelWindow is rec-model's window 1, with ui-layout in its subset:
// order values with known effects (ml-v2 +8, two-column −4, together +6
// more), every cell below the plan's n so the report is still collecting.
func recModelWindow() subset.WindowCells { return recModelWindowN(60) }

// recModelWindowN is recModelWindow with n units per cell (the first n of
// the same draws).
func recModelWindowN(n int) subset.WindowCells {
	w := subset.WindowCells{
		Viewpoint: "rec-model", Seq: 1, Start: now.Add(-2 * time.Hour),
		MeasureService: "frontend", Metric: "attribute:shop.order.value",
		Members: []subset.WindowMember{
			{Test: "rec-model", Phase: 1, Variants: []string{"control", "ml-v2"}},
			{Test: "ui-layout", Phase: 1, Variants: []string{"control", "two-column"}, Reasons: []subset.Reason{
				{Kind: "user_experience", EmitScope: "change", SusceptibleScope: "measure", Shared: []string{"frontend"}},
			}},
		},
		NotModelled: []subset.Member{{Test: "catalog-cache"}},
		Aggregate:   assign.AggregateSum,
		Quality:     subset.Quality{MissingUnit: 3, Conflict: 1, Mismatch: 2, StalePhase: 1, NotAssigned: 5, MissingMetric: 4, UnitTooLong: 6, CellChanged: 7},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 2 {
		for j := range 2 {
			var s analysis.CellStats
			mean := 60 + 8*float64(i) - 4*float64(j) + 6*float64(i*j)
			for range n {
				s.Add(mean + 20*rng.NormFloat64())
			}
			// Units of rec-model's control make 2 requests each, of ml-v2 3.
			req := (2 + int64(i)) * s.N
			w.Cells = append(w.Cells, subset.Cell{Variants: []int{i, j}, Stats: s, Requests: req})
			w.Quality.Counted += req
		}
	}
	w.Quality.Seen = w.Quality.Counted + w.Quality.Excluded()
	return w
}

// emptyWindow is catalog-cache's window with nothing counted yet.
func emptyWindow() subset.WindowCells {
	return subset.WindowCells{
		Viewpoint: "catalog-cache", Seq: 3, Start: now.Add(-time.Minute),
		MeasureService: "productcatalog", Metric: "latency_ms",
		Members: []subset.WindowMember{{Test: "catalog-cache", Phase: 1, Variants: []string{"control", "cached"}}},
	}
}

// fakeSource serves prebuilt reports, and errors as report.Reader does:
// wrapping report.ErrNotFound or report.ErrNoWindow.
type fakeSource struct {
	reports map[string]*report.Report
	subsets []subset.Subset
	errs    map[string]error

	mu      sync.Mutex
	windows []int // the window argument of every Report call
}

func (f *fakeSource) Report(_ context.Context, test string, window int, opt report.Options) (*report.Report, error) {
	if opt.Type != analysis.TypeIII {
		return nil, fmt.Errorf("the pages asked for ANOVA type %v, want Type III", opt.Type)
	}
	f.mu.Lock()
	f.windows = append(f.windows, window)
	f.mu.Unlock()
	if err, ok := f.errs[test]; ok {
		return nil, err
	}
	r, ok := f.reports[test]
	if !ok {
		return nil, fmt.Errorf("test_id: experiment %q %w", test, report.ErrNotFound)
	}
	if window != 0 && window != r.Window.Seq {
		return nil, fmt.Errorf("window: experiment %q has no window %d: %w", test, window, report.ErrNotFound)
	}
	return r, nil
}

func (f *fakeSource) Subsets() []subset.Subset { return f.subsets }

func (f *fakeSource) lastWindow() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.windows[len(f.windows)-1]
}

func newFakeSource() *fakeSource {
	// Three looks at rec-model's window: 20, 40 and 60 units per cell.
	h := report.NewHistory()
	for _, n := range []int{20, 40} {
		h.Record(report.Build(recModelWindowN(n), lookup, report.Options{Now: now}))
	}
	rec := report.Build(recModelWindow(), lookup, report.Options{Now: now})
	h.Record(rec)
	rec.Notes = append(rec.Notes, `<script>alert("x")</script> is text`)
	return &fakeSource{
		reports: map[string]*report.Report{
			"rec-model":     rec,
			"catalog-cache": report.Build(emptyWindow(), lookup, report.Options{Now: now}),
		},
		subsets: []subset.Subset{
			{Viewpoint: "rec-model", Members: []subset.Member{{Test: "rec-model"}, {Test: "ui-layout"}}},
			{Viewpoint: "catalog-cache", Members: []subset.Member{{Test: "catalog-cache"}}},
			{Viewpoint: "ship-promo", Members: []subset.Member{{Test: "ship-promo"}}},
		},
		errs: map[string]error{
			"ship-promo": fmt.Errorf("experiment %q has no analysis window: it is not running: %w", "ship-promo", report.ErrNoWindow),
			"broken":     errors.New("store: disk on fire"),
			"flaky":      errors.New("try later"),
		},
	}
}

func TestFakeReportIsCollecting(t *testing.T) {
	// The pages below assume a report with every section filled and a
	// progress to show; check that the fixture gives one.
	r := newFakeSource().reports["rec-model"]
	if r.Status != report.Collecting || r.Anova == nil || r.Estimates == nil || r.Progress.ETA <= 0 ||
		r.Progress.NeededPerCell <= 60 || r.SRMFlagged {
		t.Fatalf("fixture: status %v progress %+v notes %q", r.Status, r.Progress, r.Notes)
	}
}

type response struct {
	code int
	ct   string
	body string
	hdr  http.Header
}

func get(t *testing.T, ts *httptest.Server, path string) response {
	t.Helper()
	return do(t, ts, http.MethodGet, path)
}

func do(t *testing.T, ts *httptest.Server, method, path string) response {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header.Get("Content-Type"), string(b), res.Header}
}

func newServer(t *testing.T, src *fakeSource) *httptest.Server {
	ts := httptest.NewServer(newHandler(src))
	t.Cleanup(ts.Close)
	return ts
}

// --- HTML helpers ---

func parseHTML(t *testing.T, s string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("parse HTML: %v", err)
	}
	return doc
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// find returns the first element (depth first) for which match is true.
func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	if n.Type == html.ElementNode && match(n) {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if m := find(c, match); m != nil {
			return m
		}
	}
	return nil
}

func byID(n *html.Node, id string) *html.Node {
	return find(n, func(n *html.Node) bool { return attr(n, "id") == id })
}

func findAll(n *html.Node, tag string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == tag {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func text(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// rows returns the text of every cell of every row of table id, header
// row first; it fails the test when the table is missing.
func rows(t *testing.T, doc *html.Node, id string) [][]string {
	t.Helper()
	tbl := byID(doc, id)
	if tbl == nil || tbl.Data != "table" {
		t.Fatalf("no <table id=%q>", id)
	}
	var out [][]string
	for _, tr := range findAll(tbl, "tr") {
		var cells []string
		for c := tr.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
				cells = append(cells, text(c))
			}
		}
		out = append(out, cells)
	}
	return out
}

func column(rs [][]string, i int) []string {
	var out []string
	for _, r := range rs[1:] {
		if i < len(r) {
			out = append(out, r[i])
		}
	}
	return out
}

// --- tests ---

func TestIndex(t *testing.T) {
	src := newFakeSource()
	ts := newServer(t, src)
	res := get(t, ts, "/")
	if res.code != http.StatusOK || res.ct != "text/html; charset=utf-8" || res.hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET / = %d %q (cache %q)\n%s", res.code, res.ct, res.hdr.Get("Cache-Control"), res.body)
	}
	doc := parseHTML(t, res.body)
	rs := rows(t, doc, "subsets")
	if len(rs) != 4 {
		t.Fatalf("subsets table has %d rows, want a header and 3: %q", len(rs), rs)
	}
	rec := src.reports["rec-model"]
	wantRec := []string{"rec-model", "rec-model, ui-layout", "COLLECTING", strconv.FormatInt(rec.Table.N(), 10)}
	if !slices.Equal(rs[1][:4], wantRec) {
		t.Errorf("rec-model row %q, want it to start with %q", rs[1], wantRec)
	}
	if want := fmt.Sprintf("%d / %d", rec.Progress.MinCellN, rec.Progress.NeededPerCell); rs[1][5] != want {
		t.Errorf("rec-model min/needed %q, want %q", rs[1][5], want)
	}
	if rs[1][6] == "unknown" || !strings.Contains(rs[1][6], "h") && !strings.Contains(rs[1][6], "m") {
		t.Errorf("rec-model ETA %q, want a duration", rs[1][6])
	}
	if rs[2][0] != "catalog-cache" || rs[2][3] != "0" || rs[2][6] != "unknown" {
		t.Errorf("catalog-cache row %q, want 0 requests and an unknown ETA", rs[2])
	}
	if len(rs[3]) != 3 || !strings.HasPrefix(rs[3][2], `experiment "ship-promo" has no analysis window`) {
		t.Errorf("ship-promo row %q, want the report error in place of the numbers", rs[3])
	}
	link := find(doc, func(n *html.Node) bool { return n.Data == "a" && text(n) == "rec-model" })
	if link == nil || attr(link, "href") != "/reports/rec-model" {
		t.Errorf("no link to /reports/rec-model")
	}
	if !slices.Equal(src.windows, []int{0, 0, 0}) {
		t.Errorf("index asked for windows %v, want the current one of each test", src.windows)
	}
}

func TestIndexEmpty(t *testing.T) {
	ts := newServer(t, &fakeSource{})
	res := get(t, ts, "/")
	if res.code != http.StatusOK || !strings.Contains(res.body, "No running test.") {
		t.Errorf("GET / with no subsets = %d\n%s", res.code, res.body)
	}
}

func TestReportPage(t *testing.T) {
	src := newFakeSource()
	ts := newServer(t, src)
	rec := src.reports["rec-model"]
	for _, path := range []string{"/reports/rec-model", "/reports/rec-model?window=1"} {
		t.Run(path, func(t *testing.T) {
			res := get(t, ts, path)
			if res.code != http.StatusOK || res.ct != "text/html; charset=utf-8" {
				t.Fatalf("GET %s = %d %q\n%s", path, res.code, res.ct, res.body)
			}
			doc := parseHTML(t, res.body)
			for _, id := range []string{"subset", "cells", "effects", "interactions", "anova", "srm", "quality"} {
				if n := byID(doc, id); n == nil || n.Data != "table" {
					t.Errorf("no <table id=%q>", id)
				}
			}

			if h1 := findAll(doc, "h1"); len(h1) != 1 || text(h1[0]) != "rec-model COLLECTING" {
				t.Errorf("heading %q", text(h1[0]))
			}
			if !strings.Contains(text(doc), "higher is better") {
				t.Error("page does not give the metric's direction")
			}

			sub := rows(t, doc, "subset")
			if len(sub) != 4 || sub[1][0] != "rec-model" || sub[1][3] != "viewpoint" || sub[2][0] != "ui-layout" ||
				sub[2][2] != "control, two-column" || !strings.Contains(sub[2][3], "emits user_experience over change") ||
				!strings.Contains(sub[2][3], "shared frontend") || !strings.Contains(sub[3][1], "not modelled") {
				t.Errorf("subset table %q", sub)
			}

			cells := rows(t, doc, "cells")
			if len(cells) != 5 || !slices.Equal(cells[0][:2], []string{"rec-model", "ui-layout"}) {
				t.Fatalf("cells table %q, want a header and 4 cells", cells)
			}
			for k, c := range rec.Estimates.Cells {
				row := cells[k+1]
				_, req := rec.CellCounts(c.Levels)
				if row[0] != c.Levels[0] || row[1] != c.Levels[1] || row[2] != strconv.FormatInt(c.N, 10) || row[3] != strconv.FormatInt(req, 10) ||
					req != c.N*int64(2+slices.Index(rec.Window.Members[0].Variants, c.Levels[0])) || row[4] != num(c.Mean) {
					t.Errorf("cell row %q, want %v, %d units, %d requests, mean %s", row, c.Levels, c.N, req, num(c.Mean))
				}
			}

			eff := rows(t, doc, "effects")
			if got := column(eff, 1); !slices.Equal(got, []string{"ml-v2", "two-column"}) {
				t.Errorf("effects variants %q", got)
			}
			e := rec.Estimates.Effect("rec-model", "ml-v2")
			if eff[1][4] != num(e.Diff) || eff[1][5] != fmt.Sprintf("[%s, %s]", num(e.DiffCI.Lo), num(e.DiffCI.Hi)) || eff[1][7] != pval(e.P) {
				t.Errorf("rec-model effect row %q, want diff %s CI [%s, %s] p %s", eff[1], num(e.Diff), num(e.DiffCI.Lo), num(e.DiffCI.Hi), pval(e.P))
			}

			an := rows(t, doc, "anova")
			if got := column(an, 0); !slices.Equal(got, []string{"rec-model", "ui-layout", "rec-model:ui-layout", "Residuals"}) {
				t.Errorf("ANOVA terms %q", got)
			}
			for k, term := range rec.Anova.Terms {
				row := an[k+1]
				if len(row) != 7 || row[1] != strconv.Itoa(term.DF) || row[2] != num(term.SS) || row[4] != num(term.F) || row[5] != pval(term.P) {
					t.Errorf("ANOVA row %q, want %+v", row, term)
				}
			}
			if res := an[len(an)-1]; res[1] != strconv.FormatInt(rec.Anova.Residual.DF, 10) {
				t.Errorf("residual row %q, want df %d", res, rec.Anova.Residual.DF)
			}

			srm := rows(t, doc, "srm")
			if len(srm) != 3 || srm[1][0] != "rec-model" || srm[2][0] != "ui-layout" ||
				srm[1][2] != "120 / 120" || srm[1][3] != "120 / 120" || srm[1][5] != "1.0000" || srm[1][6] != "240 / 360" {
				t.Errorf("SRM table %q, want rec-model's 120 / 120 units and 240 / 360 requests", srm)
			}
			joint := rows(t, doc, "joint-srm")
			if len(joint) != 5 || !slices.Equal(joint[0], []string{"rec-model", "ui-layout", "Units", "Expected", "Requests"}) ||
				!slices.Equal(joint[4], []string{"ml-v2", "two-column", "60", "60", "180"}) {
				t.Errorf("joint SRM table %q", joint)
			}
			if p := byID(doc, "joint-srm-p"); p == nil || text(p) != "p = "+pval(rec.JointSRM.Result.P) || rec.JointSRM.Result.P != 1 {
				t.Errorf("joint SRM p %v, want p = 1 for equal cells", p)
			}
			if a := byID(doc, "aggregate"); a == nil || text(a) != "sum" {
				t.Errorf("aggregate %v, want sum", a)
			}
			checkQuality(t, rows(t, doc, "quality"), rec.Window.Quality)

			img := byID(doc, "plot")
			wantSrc := "/reports/rec-model/plot.svg"
			if strings.Contains(path, "window=1") {
				wantSrc += "?window=1"
			}
			if img == nil || img.Data != "img" || attr(img, "src") != wantSrc || attr(img, "alt") == "" {
				t.Errorf("plot image %v, want <img id=plot src=%q alt=…>", img, wantSrc)
			}

			checkAnytimeSections(t, doc, rec, path)

			// Notes are text, never markup.
			if strings.Contains(res.body, `<script>alert`) || !strings.Contains(res.body, "&lt;script&gt;") {
				t.Error("a note was not escaped")
			}
			if warn := find(doc, func(n *html.Node) bool { return attr(n, "class") == "warn" }); warn != nil {
				t.Errorf("warning %q shown for a window without a sample ratio mismatch", text(warn))
			}
		})
	}
	if got := src.lastWindow(); got != 1 {
		t.Errorf("Report called with window %d for ?window=1", got)
	}
}

// checkAnytimeSections checks the status line, the anytime-valid tables
// (decision over the planned terms, sequences, terms), one sequence plot
// per effect and interaction, and the fixed-horizon marking.
func checkAnytimeSections(t *testing.T, doc *html.Node, rec *report.Report, path string) {
	t.Helper()
	if l := byID(doc, "status-line"); l == nil || !strings.HasPrefix(text(l), "COLLECTING (anytime-valid results are valid now; the fixed-horizon results are valid only at ") {
		t.Errorf("status line %v", l)
	}
	dec := rows(t, doc, "decision")
	if len(dec) != 3 || dec[1][0] != "rec-model" || dec[2][0] != "rec-model:ui-layout" || dec[2][3] != "open" {
		t.Errorf("decision table %q, want rec-model and rec-model:ui-layout, the interaction open", dec)
	}
	seq := rows(t, doc, "sequences")
	e := rec.Anytime.Effect("rec-model", "ml-v2")
	if len(seq) != 4 || seq[1][0] != "rec-model=ml-v2" || seq[1][2] != fmt.Sprintf("[%s, %s]", num(e.CS.Lo), num(e.CS.Hi)) || seq[3][0] != "rec-model:ui-layout" {
		t.Errorf("sequences table %q, want the report's %+v first", seq, e)
	}
	if at := rows(t, doc, "anytime-terms"); len(at) != 4 || at[1][2] != pval(rec.Anytime.Terms[0].P) {
		t.Errorf("anytime terms %q", at)
	}
	imgs := findAll(doc, "img")
	var seqs []string
	for _, img := range imgs {
		if attr(img, "class") == "sequence" {
			seqs = append(seqs, attr(img, "src"))
		}
	}
	suffix := ""
	if strings.Contains(path, "window=1") {
		suffix = "&window=1"
	}
	if want := []string{"/reports/rec-model/sequence.svg?i=0" + suffix, "/reports/rec-model/sequence.svg?i=1" + suffix,
		"/reports/rec-model/sequence.svg?i=2" + suffix}; !slices.Equal(seqs, want) {
		t.Errorf("sequence plots %q, want %q", seqs, want)
	}
	if !strings.Contains(text(doc), "Fixed-horizon results: valid only when read once, at the planned sample size") {
		t.Error("page does not mark the fixed-horizon results")
	}
}

// TestSequenceSVG: each effect's confidence sequence over the looks is an
// SVG naming it; a bad or missing index is 400 or 404.
func TestSequenceSVG(t *testing.T) {
	ts := newServer(t, newFakeSource())
	for i, name := range []string{"rec-model=ml-v2", "ui-layout=two-column", "rec-model:ui-layout"} {
		path := fmt.Sprintf("/reports/rec-model/sequence.svg?i=%d", i)
		res := get(t, ts, path)
		if res.code != http.StatusOK || res.ct != "image/svg+xml" {
			t.Fatalf("GET %s = %d %q\n%.300s", path, res.code, res.ct, res.body)
		}
		_, texts := parseSVG(t, res.body)
		if all := strings.Join(texts, " "); !strings.Contains(all, name+": confidence sequence") || !strings.Contains(all, "units in the window") {
			t.Errorf("%s: SVG text %q", path, all)
		}
	}
	for path, code := range map[string]int{"/reports/rec-model/sequence.svg?i=3": 404, "/reports/rec-model/sequence.svg?i=x": 400,
		"/reports/rec-model/sequence.svg": 400, "/reports/catalog-cache/sequence.svg?i=0": 404, "/reports/nope/sequence.svg?i=0": 404} {
		if res := get(t, ts, path); res.code != code {
			t.Errorf("GET %s = %d, want %d", path, res.code, code)
		}
	}
}

// TestSequencePlotBounds: the band covers each bounded look, and ±MDE
// lines (red) are drawn only with an MDE.
func TestSequencePlotBounds(t *testing.T) {
	looks := []report.Look{
		{Units: 10, Intervals: []report.LookInterval{{Name: "a=b", Estimate: 1}}},
		{Units: 20, Intervals: []report.LookInterval{{Name: "a=b", Estimate: 2, Lo: -3, Hi: 7, Bounded: true}}},
		{Units: 40, Intervals: []report.LookInterval{{Name: "a=b", Estimate: 2.5, Lo: 0, Hi: 5, Bounded: true}}},
	}
	with, err := SequencePlot(looks, 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	without, err := SequencePlot(looks, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	const red = "stroke:#C82828"
	if n, m := strings.Count(string(with), red), strings.Count(string(without), red); n != 2 || m != 0 {
		t.Errorf("%d red lines with an MDE, %d without: want 2 (±MDE) and 0", n, m)
	}
	if _, err := SequencePlot(looks, 1, 0); err == nil {
		t.Error("an interval no look has: no error")
	}
}

// checkQuality checks that the quality table accounts for every
// observation: seen = counted + excluded, and the excluded ones by reason.
func checkQuality(t *testing.T, q [][]string, want subset.Quality) {
	t.Helper()
	got := map[string]int64{}
	var reasons int64
	for _, r := range q[1:] {
		if len(r) != 2 {
			t.Fatalf("quality row %q, want a label and a count", r)
		}
		n, err := strconv.ParseInt(r[1], 10, 64)
		if err != nil {
			t.Fatalf("quality row %q: %v", r, err)
		}
		got[r[0]] = n
		switch r[0] {
		case "Seen", "Counted", "Excluded":
		default:
			reasons += n
		}
	}
	if got["Seen"] != want.Seen || got["Counted"] != want.Counted || got["Excluded"] != want.Excluded() || reasons != want.Excluded() {
		t.Errorf("quality table %q: want seen %d = counted %d + excluded %d, and the reasons summing to it", q, want.Seen, want.Counted, want.Excluded())
	}
	for label, n := range map[string]int64{"no unit id": want.MissingUnit, "another phase": want.StalePhase, "not assigned by the hash": want.NotAssigned,
		"unit id too long (never truncated)": want.UnitTooLong, "unit already counted in another cell": want.CellChanged} {
		if got[label] != n {
			t.Errorf("quality %q = %d, want %d", label, got[label], n)
		}
	}
}

// TestReportPageRatio: a ratio window's page shows the Wald chi-square
// table and says the intervals are delta-method z intervals.
func TestReportPageRatio(t *testing.T) {
	w := recModelWindow()
	w.Aggregate = assign.AggregateRatio
	rng := rand.New(rand.NewPCG(3, 4))
	for k := range w.Cells {
		var rs analysis.RatioStats
		for range 80 {
			n := float64(1 + rng.IntN(5))
			rs.Add(n*(50+10*rng.NormFloat64()), n)
		}
		w.Cells[k].Ratio = &rs
		w.Cells[k].Stats.N = rs.K
	}
	rep := report.Build(w, lookup, report.Options{Now: now})
	if rep.Anova == nil || rep.Anova.Test != analysis.TestWald {
		t.Fatalf("fixture: no Wald ANOVA: %v", rep.Notes)
	}
	doc := parseHTML(t, get(t, newServer(t, &fakeSource{reports: map[string]*report.Report{"rec-model": rep}}), "/reports/rec-model").body)
	an := rows(t, doc, "anova")
	if !slices.Equal(an[0], []string{"Term", "df", "χ²", "p"}) || len(an) != 4 {
		t.Fatalf("ratio ANOVA table %q, want Term, df, χ², p and three terms", an)
	}
	for k, term := range rep.Anova.Terms {
		if row := an[k+1]; row[0] != term.Name || row[2] != num(term.Chisq) || row[3] != pval(term.P) {
			t.Errorf("Wald row %q, want %s χ² %s p %s", row, term.Name, num(term.Chisq), pval(term.P))
		}
	}
	page := text(doc)
	for _, want := range []string{"Wald chi-square (delta method) tests", "z (delta method) intervals", "aggregated per unit: ratio"} {
		if !strings.Contains(page, want) {
			t.Errorf("ratio page does not say %q", want)
		}
	}
}

func TestReportPageSRMWarning(t *testing.T) {
	w := recModelWindow()
	w.Cells[0].Stats.N *= 3 // control×control: rec-model's split is far from 50/50
	src := &fakeSource{reports: map[string]*report.Report{"rec-model": report.Build(w, lookup, report.Options{Now: now})}}
	if !src.reports["rec-model"].SRMFlagged {
		t.Fatal("fixture: SRM not flagged")
	}
	res := get(t, newServer(t, src), "/reports/rec-model")
	doc := parseHTML(t, res.body)
	warn := find(doc, func(n *html.Node) bool { return n.Data == "p" && attr(n, "class") == "warn" })
	if warn == nil || !strings.Contains(text(warn), "Sample ratio mismatch") {
		t.Errorf("no SRM warning on the page")
	}
	if srm := rows(t, doc, "srm"); srm[1][5] != "<0.0001" {
		t.Errorf("rec-model SRM row %q, want p <0.0001", srm[1])
	}
}

func TestReportPageNoData(t *testing.T) {
	ts := newServer(t, newFakeSource())
	res := get(t, ts, "/reports/catalog-cache")
	if res.code != http.StatusOK {
		t.Fatalf("GET = %d\n%s", res.code, res.body)
	}
	doc := parseHTML(t, res.body)
	if byID(doc, "plot") != nil || byID(doc, "anova") != nil || byID(doc, "cells") != nil {
		t.Error("a window without data shows a plot, an ANOVA or cells")
	}
	for _, id := range []string{"subset", "srm", "quality"} {
		rows(t, doc, id)
	}
	if !strings.Contains(text(doc), "no unit counted") {
		t.Error("the page does not say that nothing was counted")
	}
	if res := get(t, ts, "/reports/catalog-cache/plot.svg"); res.code != http.StatusNotFound || !strings.Contains(res.body, "no data yet") {
		t.Errorf("plot without data = %d %q, want 404 no data yet", res.code, res.body)
	}
}

func TestPlotSVG(t *testing.T) {
	ts := newServer(t, newFakeSource())
	for _, path := range []string{"/reports/rec-model/plot.svg", "/reports/rec-model/plot.svg?window=1"} {
		res := get(t, ts, path)
		if res.code != http.StatusOK || res.ct != "image/svg+xml" || res.hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET %s = %d %q\n%.300s", path, res.code, res.ct, res.body)
		}
		root, texts := parseSVG(t, res.body)
		if root.Name.Local != "svg" || root.Name.Space != "http://www.w3.org/2000/svg" {
			t.Errorf("root element %v, want svg in the SVG namespace", root.Name)
		}
		var width, height string
		for _, a := range root.Attr {
			switch a.Name.Local {
			case "width":
				width = a.Value
			case "height":
				height = a.Value
			}
		}
		if width != "432pt" || height != "288pt" { // 6×4 in, what the page's <img> expects
			t.Errorf("SVG size %s × %s, want 432pt × 288pt", width, height)
		}
		all := strings.Join(texts, " ")
		for _, want := range []string{"rec-model", "ui-layout=control", "ui-layout=two-column", "ml-v2"} {
			if !strings.Contains(all, want) {
				t.Errorf("SVG text %q does not contain %q", all, want)
			}
		}
	}
}

// parseSVG decodes the whole document as XML and returns its root element
// and its character data.
func parseSVG(t *testing.T, s string) (xml.StartElement, []string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(s))
	var root *xml.StartElement
	var texts []string
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			if root == nil {
				r := x.Copy()
				root = &r
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if s := strings.TrimSpace(string(x)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	if root == nil || depth != 0 {
		t.Fatalf("SVG has no root element or unbalanced elements (depth %d)", depth)
	}
	return *root, texts
}

func TestPlotSingleFactor(t *testing.T) {
	w := recModelWindow()
	w.Members = w.Members[:1]
	w.Cells = []subset.Cell{
		{Variants: []int{0}, Stats: w.Cells[0].Stats},
		{Variants: []int{1}, Stats: w.Cells[2].Stats},
	}
	r := report.Build(w, lookup, report.Options{Now: now})
	svg, err := Plot(r.Table)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := parseSVG(t, string(svg))
	if root.Name.Local != "svg" {
		t.Errorf("root %v", root.Name)
	}
}

func TestErrors(t *testing.T) {
	ts := newServer(t, newFakeSource())
	tests := []struct {
		method, path string
		code         int
		body         string // substring
	}{
		{"GET", "/reports/nope", http.StatusNotFound, `test_id: experiment "nope" not found`},
		{"GET", "/reports/nope/plot.svg", http.StatusNotFound, `experiment "nope" not found`},
		{"GET", "/reports/rec-model?window=9", http.StatusNotFound, `has no window 9`},
		{"GET", "/reports/rec-model/plot.svg?window=9", http.StatusNotFound, `has no window 9`},
		{"GET", "/reports/rec-model?window=x", http.StatusBadRequest, `window "x"`},
		{"GET", "/reports/rec-model?window=-1", http.StatusBadRequest, `window "-1"`},
		{"GET", "/reports/rec-model?window=1.5", http.StatusBadRequest, `want a window number`},
		{"GET", "/reports/rec-model/plot.svg?window=abc", http.StatusBadRequest, `window "abc"`},
		{"GET", "/reports/ship-promo", http.StatusBadRequest, "not running"},
		{"GET", "/reports/flaky", http.StatusInternalServerError, "try later"},
		{"GET", "/reports/broken", http.StatusInternalServerError, "disk on fire"},
		{"GET", "/reports/broken/plot.svg", http.StatusInternalServerError, "disk on fire"},
		{"GET", "/reports/%3Cb%3Ex%3C%2Fb%3E", http.StatusNotFound, `"<b>x</b>" not found`},
		{"GET", "/nope", http.StatusNotFound, "404 page not found"},
		{"GET", "/reports/rec-model/other", http.StatusNotFound, "404 page not found"},
		{"POST", "/", http.StatusMethodNotAllowed, ""},
		{"DELETE", "/reports/rec-model", http.StatusMethodNotAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			res := do(t, ts, tt.method, tt.path)
			if res.code != tt.code || !strings.Contains(res.body, tt.body) {
				t.Errorf("%s %s = %d %q, want %d with %q", tt.method, tt.path, res.code, res.body, tt.code, tt.body)
			}
			// Error bodies are plain text, so a test id in a message
			// cannot inject markup.
			if res.code >= 400 && !strings.HasPrefix(res.ct, "text/plain") {
				t.Errorf("error content type %q, want text/plain", res.ct)
			}
		})
	}
}

func TestNum(t *testing.T) {
	tests := []struct {
		x    float64
		want string
	}{
		{0, "0"},
		{math.NaN(), "–"},
		{math.Inf(1), "–"},
		{math.Inf(-1), "–"},
		{1, "1"},
		{-2.5, "-2.5"},
		{12.3456789, "12.346"},
		{123456.7, "1.2346e+05"},
		{999999, "1e+06"}, // rounds up to 5 significant digits
		{1e6, "1.000e+06"},
		{-3.2e7, "-3.200e+07"},
		{0.001, "0.001"},
		{0.00099, "9.900e-04"},
		{1e-12, "1.000e-12"},
	}
	for _, tt := range tests {
		if got := num(tt.x); got != tt.want {
			t.Errorf("num(%v) = %q, want %q", tt.x, got, tt.want)
		}
	}
}

func TestPval(t *testing.T) {
	tests := []struct {
		p    float64
		want string
	}{
		{0, "<0.0001"},
		{0.00009, "<0.0001"},
		{0.0001, "0.0001"},
		{0.04999, "0.0500"},
		{0.5, "0.5000"},
		{1, "1.0000"},
	}
	for _, tt := range tests {
		if got := pval(tt.p); got != tt.want {
			t.Errorf("pval(%v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

// --- headless browser ---

// hitCounter counts the requests per path that reach the page handler and,
// for a request with ?probe, adds a script that records on <body> whether
// the plot image decoded (data-plot-width = its natural width).
type hitCounter struct {
	next http.Handler
	mu   sync.Mutex
	hits map[string]int
}

const probeScript = `<script>addEventListener("load", () => {
  const img = document.getElementById("plot");
  document.body.dataset.plotWidth = img && img.complete ? String(img.naturalWidth) : "none";
});</script>`

func (h *hitCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.hits[r.URL.Path]++
	h.mu.Unlock()
	if !r.URL.Query().Has("probe") {
		h.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	h.next.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	io.WriteString(w, strings.Replace(rec.Body.String(), "</body>", probeScript+"</body>", 1))
}

func (h *hitCounter) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[path]
}

func (h *hitCounter) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.hits)
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed")
	return ""
}

// runChromium runs headless chromium on url with extra flags and returns
// its standard output.
func runChromium(t *testing.T, bin, url string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--virtual-time-budget=5000",
	}, extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	testkit.OwnProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	testkit.KillProcessGroup(cmd) // helpers chromium left behind, if any
	if err != nil {
		tail := stderr.String()
		if len(tail) > 3000 {
			tail = tail[len(tail)-3000:]
		}
		t.Fatalf("chromium %v: %v\nstderr tail:\n%s", extra, err, tail)
	}
	return stdout.Bytes()
}

// TestBrowser loads the report page in headless chromium from a real
// loopback listener: the DOM it builds has the tables and a plot image that
// decoded, and a screenshot of the page is drawn with the plot fetched.
func TestBrowser(t *testing.T) {
	bin := chromiumPath(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hits := &hitCounter{next: newHandler(newFakeSource()), hits: map[string]int{}}
	srv := &http.Server{Handler: hits, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()
	const page, plotPath = "/reports/rec-model", "/reports/rec-model/plot.svg"

	t.Run("dump-dom", func(t *testing.T) {
		dom := runChromium(t, bin, base+page+"?probe=1", "--dump-dom")
		doc := parseHTML(t, string(dom))
		an := rows(t, doc, "anova")
		if got := column(an, 0); !slices.Equal(got, []string{"rec-model", "ui-layout", "rec-model:ui-layout", "Residuals"}) {
			t.Errorf("ANOVA rows in the browser's DOM: %q", got)
		}
		for _, id := range []string{"subset", "cells", "effects", "srm", "joint-srm", "quality"} {
			if len(rows(t, doc, id)) < 2 {
				t.Errorf("table %s has no data row in the browser's DOM", id)
			}
		}
		img := byID(doc, "plot")
		if img == nil || img.Data != "img" {
			t.Fatal(`no <img id="plot"> in the browser's DOM`)
		}
		body := findAll(doc, "body")[0]
		if w, err := strconv.Atoi(attr(body, "data-plot-width")); err != nil || w < 100 {
			t.Errorf("plot image did not decode in the browser: data-plot-width=%q", attr(body, "data-plot-width"))
		}
		if hits.count(plotPath) == 0 {
			t.Error("the browser never requested the plot")
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		hits.reset()
		shot := filepath.Join(t.TempDir(), "report.png")
		runChromium(t, bin, base+page, "--screenshot="+shot, "--window-size=1200,2000", "--hide-scrollbars")
		b, err := os.ReadFile(shot)
		if err != nil {
			t.Fatalf("no screenshot: %v", err)
		}
		if len(b) < 20_000 {
			t.Errorf("screenshot is only %d bytes", len(b))
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("screenshot is not a PNG: %v", err)
		}
		if sz := img.Bounds().Size(); sz.X != 1200 || sz.Y != 2000 {
			t.Errorf("screenshot is %v, want 1200×2000", sz)
		}
		// A page that rendered has many colours (text, bars, plot lines).
		colours := map[[4]uint32]bool{}
		for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 3 {
			for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 3 {
				r, g, b, a := img.At(x, y).RGBA()
				colours[[4]uint32{r, g, b, a}] = true
			}
		}
		if len(colours) < 20 {
			t.Errorf("screenshot has %d colours: blank page?", len(colours))
		}
		if hits.count(page) != 1 || hits.count(plotPath) == 0 {
			t.Errorf("requests during the screenshot: page %d, plot %d; want 1 and at least 1", hits.count(page), hits.count(plotPath))
		}
		if dst := os.Getenv("ABMESH_WEB_SCREENSHOT"); dst != "" {
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				t.Error(err)
			}
		}
	})
}

// newHandler serves src's reports and subsets.
func newHandler(src *fakeSource) *Handler { return New(src, src) }
