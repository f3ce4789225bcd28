// Package web serves the reports as pages people read in a browser: an
// index of every running test's subset and status at "/", and one page per
// test at "/reports/TEST" with the subset, the cell table, the
// fixed-horizon ANOVA table and estimates (marked valid only at the
// planned sample size), the anytime-valid results with the stopping rule
// and each confidence sequence plotted over the window's looks at
// "/reports/TEST/sequence.svg?i=N", the sample-ratio check, the
// data-quality counters and an interaction plot (SVG, drawn with
// gonum/plot) at "/reports/TEST/plot.svg".
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/internal/report"
	"github.com/abmesh/abmesh/subset"
)

//go:embed templates/*.html
var templates embed.FS

// Reports builds reports (a *report.Reader).
type Reports interface {
	// Report returns test's report for window (0: the current one). Errors
	// wrapping report.ErrNotFound are answered 404, report.ErrNoWindow 400,
	// any other 500.
	Report(ctx context.Context, test string, window int, opt report.Options) (*report.Report, error)
}

// Subsets lists the subsets (a *subset.Subsetter).
type Subsets interface {
	// Subsets returns every running test's subset.
	Subsets() []subset.Subset
}

// Handler serves the pages.
type Handler struct {
	reports Reports
	subsets Subsets
	tmpl    *template.Template
	mux     *http.ServeMux
}

// New returns the pages' handler: reports read with Type III sums of
// squares, and the index lists subsets' tests.
func New(reports Reports, subsets Subsets) *Handler {
	funcs := template.FuncMap{
		"num":  num,
		"pct":  func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) },
		"pval": pval,
		"join": strings.Join,
		"eta": func(d time.Duration) string {
			if d < 0 {
				return "unknown"
			}
			return d.Round(time.Second).String()
		},
		"sig": func(p float64, estimable bool) bool { return estimable && p < 0.05 },
		"requests": func(r *report.Report, levels []string) int64 {
			_, n := r.CellCounts(levels)
			return n
		},
		"quality": qualityRows,
		"sub1":    func(x float64) float64 { return 1 - x },
		"minus1":  func(n int) int { return n - 1 },
	}
	h := &Handler{reports: reports, subsets: subsets, mux: http.NewServeMux(),
		tmpl: template.Must(template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html"))}
	h.mux.HandleFunc("GET /{$}", h.index)
	h.mux.HandleFunc("GET /reports/{test}", h.report)
	h.mux.HandleFunc("GET /reports/{test}/plot.svg", h.plot)
	h.mux.HandleFunc("GET /reports/{test}/sequence.svg", h.sequence)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type indexRow struct {
	Test     string
	Members  []string
	Status   string
	Progress report.Progress
	N        int64
	Note     string
}

func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var rows []indexRow
	for _, s := range h.subsets.Subsets() {
		row := indexRow{Test: s.Viewpoint, Members: s.FactorLabels()}
		if r, err := h.build(ctx, s.Viewpoint, 0); err != nil {
			row.Note = err.Error()
		} else {
			row.Status, row.Progress = r.Status.String(), r.Progress
			if r.Table != nil {
				row.N = r.Table.N()
			}
		}
		rows = append(rows, row)
	}
	h.render(w, "index.html", map[string]any{"Rows": rows, "Now": time.Now().UTC().Format(time.RFC3339)})
}

func windowParam(r *http.Request) (int, error) {
	s := r.URL.Query().Get("window")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("window %q: want a window number", s)
	}
	return n, nil
}

// load builds the report a request names (path "test", query "window"),
// or writes the error response and returns nil.
func (h *Handler) load(w http.ResponseWriter, r *http.Request) (*report.Report, int) {
	win, err := windowParam(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, 0
	}
	rep, err := h.build(r.Context(), r.PathValue("test"), win)
	if err != nil {
		httpError(w, err)
		return nil, 0
	}
	return rep, win
}

func (h *Handler) report(w http.ResponseWriter, r *http.Request) {
	rep, win := h.load(w, r)
	if rep == nil {
		return
	}
	h.render(w, "report.html", map[string]any{"R": rep, "Window": win, "HasPlot": rep.Table != nil && rep.Table.N() > 0})
}

func (h *Handler) plot(w http.ResponseWriter, r *http.Request) {
	rep, _ := h.load(w, r)
	if rep == nil {
		return
	}
	if rep.Table == nil || rep.Table.N() == 0 {
		http.Error(w, "no data yet", http.StatusNotFound)
		return
	}
	svg, err := Plot(rep.Table)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(svg)
}

// sequence serves the plot of one confidence sequence over the window's
// looks: query "i" indexes the report's look intervals (effects, then
// interactions), "window" as for the report.
func (h *Handler) sequence(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.Atoi(r.URL.Query().Get("i"))
	if err != nil || i < 0 {
		http.Error(w, fmt.Sprintf("i %q: want the index of an effect's sequence", r.URL.Query().Get("i")), http.StatusBadRequest)
		return
	}
	rep, _ := h.load(w, r)
	if rep == nil {
		return
	}
	if len(rep.Looks) == 0 || i >= len(rep.Looks[len(rep.Looks)-1].Intervals) {
		http.Error(w, "no such sequence in this window's looks", http.StatusNotFound)
		return
	}
	last := rep.Looks[len(rep.Looks)-1].Intervals[i]
	svg, err := SequencePlot(rep.Looks, i, intervalMDE(rep, last.Name))
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(svg)
}

// Plot draws the interaction plot of a report's cell table: cell means
// with 95% intervals, the viewpoint's variants on the x axis and one line
// per variant of the second factor (or one line when the subset is the
// viewpoint alone).
func Plot(t *analysis.CellTable) ([]byte, error) {
	x, trace := t.Factors[0].Name, ""
	if len(t.Factors) > 1 {
		trace = t.Factors[1].Name
	}
	return analysis.InteractionPlot(t, x, trace, 0.95)
}

// build builds the Type III report of test's window.
func (h *Handler) build(ctx context.Context, test string, window int) (*report.Report, error) {
	return h.reports.Report(ctx, test, window, report.Options{Type: analysis.TypeIII})
}

// httpError writes err with its HTTP status: report.ErrNotFound → 404,
// report.ErrNoWindow → 400, anything else → 500.
func httpError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, report.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, report.ErrNoWindow):
		code = http.StatusBadRequest
	}
	http.Error(w, err.Error(), code)
}

func (h *Handler) render(w http.ResponseWriter, name string, data any) {
	var b strings.Builder
	if err := h.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		http.Error(w, errors.Join(errors.New("render page"), err).Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprint(w, b.String())
}

// qualityLabels are the page's words for the data-quality counters (by
// subset.Quality.Counts name); a counter without one shows its name.
var qualityLabels = map[string]string{
	"too_many_cells":      "too many cells for a cell key",
	"missing_unit":        "no unit id",
	"unit_too_long":       "unit id too long (never truncated)",
	"before_window":       "started before the window",
	"conflict":            "conflicting variants in one trace",
	"override":            "override (not randomized)",
	"not_targeted":        "not targeted",
	"not_in_slice":        "not in the layer slice",
	"paused":              "paused",
	"winner":              "winner served",
	"fallback":            "fallback (no config)",
	"stale_phase":         "another phase",
	"assignment_mismatch": "assignment mismatch",
	"not_assigned":        "not assigned by the hash",
	"missing_metric":      "no metric value",
	"cell_changed":        "unit already counted in another cell",
}

type qualityRow struct {
	Label string
	N     int64
}

// qualityRows lists q's non-zero exclusion counters (every one
// Quality.Counts yields but seen and counted), in its order.
func qualityRows(q subset.Quality) []qualityRow {
	var out []qualityRow
	for name, n := range q.Counts() {
		if n == 0 || name == "seen" || name == "counted" {
			continue
		}
		label, ok := qualityLabels[name]
		if !ok {
			label = name
		}
		out = append(out, qualityRow{Label: label, N: n})
	}
	return out
}

// num formats a float for a table: 4 significant digits, no NaN.
func num(x float64) string {
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		return "–"
	case x == 0:
		return "0"
	case math.Abs(x) >= 1e6 || math.Abs(x) < 1e-3:
		return strconv.FormatFloat(x, 'e', 3, 64)
	}
	return strconv.FormatFloat(x, 'g', 5, 64)
}

func pval(p float64) string {
	if p < 1e-4 {
		return "<0.0001"
	}
	return strconv.FormatFloat(p, 'f', 4, 64)
}
