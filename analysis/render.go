package analysis

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteAnova writes a as an aligned text table for people, in the layout
// of R's ANOVA tables (Df, Sum Sq, Mean Sq, F value, Pr(>F)) plus the
// partial η² and a note column; a Wald table (a ratio table's) in car's
// layout (Df, Chisq, Pr(>Chisq)). Rows that could not be estimated or
// tested show "-" and their note.
func WriteAnova(w io.Writer, a *AnovaTable) error {
	ew := &errWriter{w: w}
	lay := layoutOf(a)
	ew.printf("%s", lay.head)
	if len(a.EmptyCells) > 0 {
		ew.printf(", %d empty cell(s)", len(a.EmptyCells))
	}
	ew.printf("\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, lay.header)
	rows := a.Terms
	if a.Intercept != nil {
		rows = append([]AnovaTerm{*a.Intercept}, rows...)
	}
	var notes []string
	for _, r := range rows {
		mark := ""
		if r.Note != "" {
			notes = append(notes, r.Name+": "+r.Note)
			mark = " *"
		}
		fmt.Fprint(tw, lay.row(r, mark))
	}
	fmt.Fprint(tw, lay.tail)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		ew.printf("* %s\n", n)
	}
	return ew.err
}

// anovaLayout is how WriteAnova writes one kind of table: its title line,
// column header, one line per row and the line after the rows.
type anovaLayout struct {
	head, header string
	row          func(r AnovaTerm, mark string) string
	tail         string
}

func layoutOf(a *AnovaTable) anovaLayout {
	if a.Test == TestWald {
		return anovaLayout{
			head:   fmt.Sprintf("Type %s %s tests (%s), N = %d units", a.Type, a.Test, a.Coding, a.N),
			header: "Term\tDf\tChisq\tPr(>Chisq)\t\n",
			row: func(r AnovaTerm, mark string) string {
				if !r.Tested {
					return fmt.Sprintf("%s\t-\t-\t-\t%s\n", r.Name, mark)
				}
				return fmt.Sprintf("%s\t%d\t%s\t%s\t%s\n", r.Name, r.DF, fmtG(r.Chisq, 5), fmtP(r.P), mark)
			},
		}
	}
	head := fmt.Sprintf("Type %s ANOVA", a.Type)
	if a.Type == TypeIII {
		head += " (" + a.Coding.String() + ")"
	}
	return anovaLayout{
		head:   fmt.Sprintf("%s, N = %d", head, a.N),
		header: "Term\tDf\tSum Sq\tMean Sq\tF value\tPr(>F)\tη²p\t\n",
		row: func(r AnovaTerm, mark string) string {
			if !r.Estimable {
				return fmt.Sprintf("%s\t-\t-\t-\t-\t-\t-\t%s\n", r.Name, mark)
			}
			f, p := "-", "-"
			if r.Tested {
				f, p = fmtG(r.F, 5), fmtP(r.P)
			}
			return fmt.Sprintf("%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.DF, fmtG(r.SS, 6), fmtG(r.MS, 6), f, p, fmtF(r.PartialEta2, 4), mark)
		},
		tail: fmt.Sprintf("Residuals\t%d\t%s\t%s\t\t\t\t\n", a.Residual.DF, fmtG(a.Residual.SS, 6), fmtG(a.Residual.MS, 6)),
	}
}

// WriteEstimates writes e as aligned text tables for people: effects
// (variant vs control, absolute and relative), interaction contrasts,
// marginal means and cell means, each with its interval at e.Level.
func WriteEstimates(w io.Writer, e *Estimates) error {
	ew := &errWriter{w: w}
	pct := strconv.FormatFloat(100*e.Level, 'f', -1, 64) + "%"
	if e.Test == TestZ {
		ew.printf("Estimates (%s CI, normal intervals from each cell's delta-method variance)\n", pct)
	} else {
		ew.printf("Estimates (%s CI, residual df = %d, MSE = %s)\n", pct, e.DF, fmtG(e.MSE, 5))
	}
	table := func(title, header string, rows [][]string) {
		if len(rows) == 0 || ew.err != nil {
			return
		}
		ew.printf("\n%s\n", title)
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		for _, r := range rows {
			fmt.Fprintln(tw, strings.Join(r, "\t"))
		}
		if err := tw.Flush(); err != nil && ew.err == nil {
			ew.err = err
		}
	}
	var rows [][]string
	for _, f := range e.Effects {
		if f.Note != "" && f.DiffSE == 0 {
			rows = append(rows, []string{f.Factor, f.Variant, f.Control, "-", "-", "-", "-", "-", f.Note})
			continue
		}
		rel, relCI := "-", "-"
		if f.RelSE > 0 {
			rel = fmtPct(f.Rel)
			relCI = "[" + fmtPct(f.RelCI.Lo) + ", " + fmtPct(f.RelCI.Hi) + "]"
		}
		rows = append(rows, []string{f.Factor, f.Variant, f.Control, fmtG(f.Diff, 4), fmtCI(f.DiffCI), fmtP(f.P), rel, relCI, f.Note})
	}
	table("Effects (variant − control, marginal means)", "Factor\tVariant\tControl\tDiff\tCI\tp\tRel\tRel CI\t", rows)

	rows = rows[:0]
	for _, c := range e.Interactions {
		if c.SE == 0 {
			rows = append(rows, []string{c.Term, "-", "-", "-", c.Note})
			continue
		}
		rows = append(rows, []string{c.Term, fmtG(c.Estimate, 4), fmtCI(c.CI), fmtP(c.P), c.Note})
	}
	table("Interaction contrasts (difference of differences)", "Term\tEstimate\tCI\tp\t", rows)

	rows = rows[:0]
	for _, m := range e.Marginal {
		rows = append(rows, []string{m.Factor, m.Level, meanOrDash(m.Mean, m.Note), ciOrDash(m.CI, m.SE), m.Note})
	}
	table("Marginal means (unweighted over the other factors)", "Factor\tLevel\tMean\tCI\t", rows)

	rows = rows[:0]
	for _, c := range e.Cells {
		row := append([]string(nil), c.Levels...)
		rows = append(rows, append(row, strconv.FormatInt(c.N, 10), meanOrDash(c.Mean, c.Note), ciOrDash(c.CI, c.SE), c.Note))
	}
	table("Cell means", strings.Join(e.Factors, "\t")+"\tn\tMean\tCI\t", rows)
	return ew.err
}

func meanOrDash(m float64, note string) string {
	if strings.HasPrefix(note, "not estimable") || note == "empty cell" {
		return "-"
	}
	return fmtG(m, 5)
}

func ciOrDash(ci Interval, se float64) string {
	if se == 0 {
		return "-"
	}
	return fmtCI(ci)
}

func fmtCI(ci Interval) string { return "[" + fmtG(ci.Lo, 4) + ", " + fmtG(ci.Hi, 4) + "]" }

func fmtG(x float64, digits int) string { return strconv.FormatFloat(x, 'g', digits, 64) }

func fmtF(x float64, digits int) string { return strconv.FormatFloat(x, 'f', digits, 64) }

func fmtPct(x float64) string { return strconv.FormatFloat(100*x, 'f', 2, 64) + "%" }

// fmtP writes a p-value as R does: 3 significant digits, "<2e-16" below
// machine-precision territory.
func fmtP(p float64) string {
	if p < 2e-16 {
		return "<2e-16"
	}
	if math.IsNaN(p) {
		return "-"
	}
	return strconv.FormatFloat(p, 'g', 3, 64)
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) {
	fmt.Fprintf(e, format, args...)
}
