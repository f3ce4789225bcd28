package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/abmesh/abmesh/analysis"
)

// anovaJSON is the -o json output of "abmesh anova": R's term names, the
// Type III intercept left out. f, p and partial_eta2 are null when the term
// was not tested (no residual df) and ss and ms too when it could not be
// estimated (empty cells); note then says why.
type anovaJSON struct {
	Type     int          `json:"type"`
	Terms    []anovaTermJ `json:"terms"`
	Residual anovaResidJ  `json:"residual"`
}

type anovaTermJ struct {
	Term        string   `json:"term"`
	DF          int      `json:"df"`
	SS          *float64 `json:"ss"`
	MS          *float64 `json:"ms"`
	F           *float64 `json:"f"`
	P           *float64 `json:"p"`
	PartialEta2 *float64 `json:"partial_eta2"`
	Note        string   `json:"note,omitempty"`
}

type anovaResidJ struct {
	DF int64   `json:"df"`
	SS float64 `json:"ss"`
}

// anovaCmd is "abmesh anova". It reads the CSV into cell statistics
// (levels in order of first appearance, the first being the control) and
// prints the factorial ANOVA with every interaction: an aligned table, or with -o json the object
// {"type":3,"terms":[{"term":"a:b","df":…,"ss":…,"ms":…,"f":…,"p":…,"partial_eta2":…},…],"residual":{"df":…,"ss":…}}.
func anovaCmd(fs *flag.FlagSet) body {
	csvPath := fs.String("csv", "", "CSV file with a header row (required)")
	response := fs.String("response", "", "numeric response column (required)")
	factors := fs.String("factors", "", "comma-separated factor columns, e.g. a,b,c (required)")
	typ := fs.Int("type", 3, "sums of squares: 1 (sequential), 2 (car type II) or 3 (car type III, contr.sum)")
	estimates := fs.Bool("estimates", false, "also print effects, interaction contrasts and means with 95% intervals (text output only)")
	output := outputFlag(fs, "text", "json")
	return func(_ context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		switch {
		case *csvPath == "":
			return errors.New("anova: --csv is required")
		case *response == "":
			return errors.New("anova: --response is required")
		case *factors == "":
			return errors.New("anova: --factors is required")
		case *typ < 1 || *typ > 3:
			return fmt.Errorf("anova: --type %d: want 1, 2 or 3", *typ)
		}
		var names []string
		for _, f := range strings.Split(*factors, ",") {
			if f = strings.TrimSpace(f); f != "" {
				names = append(names, f)
			}
		}
		if len(names) == 0 {
			return errors.New("anova: --factors names no column")
		}
		f, err := os.Open(*csvPath)
		if err != nil {
			return fmt.Errorf("anova: %w", err)
		}
		defer f.Close()
		tab, err := analysis.ReadCSV(f, *response, names)
		if err != nil {
			return fmt.Errorf("anova: %s: %w", *csvPath, err)
		}
		a, err := analysis.Anova(tab, analysis.SSType(*typ))
		if err != nil {
			return fmt.Errorf("anova: %s: %w", *csvPath, err)
		}
		if *output == "json" {
			return writeAnovaJSON(r.stdout, a)
		}
		if err := analysis.WriteAnova(r.stdout, a); err != nil {
			return err
		}
		if *estimates {
			e, err := analysis.Estimate(tab, 0.95)
			if err != nil {
				return fmt.Errorf("anova: estimates: %w", err)
			}
			fmt.Fprintln(r.stdout)
			return analysis.WriteEstimates(r.stdout, e)
		}
		return nil
	}
}

func writeAnovaJSON(w io.Writer, a *analysis.AnovaTable) error {
	out := anovaJSON{
		Type:     int(a.Type),
		Terms:    make([]anovaTermJ, 0, len(a.Terms)),
		Residual: anovaResidJ{DF: a.Residual.DF, SS: a.Residual.SS},
	}
	num := func(x float64) *float64 { return &x }
	for _, t := range a.Terms {
		j := anovaTermJ{Term: t.Name, DF: t.DF, Note: t.Note}
		if t.Estimable {
			j.SS, j.MS, j.PartialEta2 = num(t.SS), num(t.MS), num(t.PartialEta2)
		}
		if t.Tested {
			j.F, j.P = num(t.F), num(t.P)
		}
		out.Terms = append(out.Terms, j)
	}
	enc := json.NewEncoder(w)
	return enc.Encode(out)
}

// powerJSON is the -o json output of "abmesh power". Inputs that do not
// apply to the chosen test are omitted.
type powerJSON struct {
	Test  string   `json:"test"` // "f2", "anova", "t" or "term"
	U     *int     `json:"u,omitempty"`
	F2    *float64 `json:"f2,omitempty"`
	K     *int     `json:"k,omitempty"`
	F     *float64 `json:"f,omitempty"`
	D     *float64 `json:"d,omitempty"`
	Cells *int     `json:"cells,omitempty"`
	MDE   *float64 `json:"mde,omitempty"`
	SD    *float64 `json:"sd,omitempty"`
	Alpha float64  `json:"alpha"`
	Power float64  `json:"power"`
	// V is the denominator df (test f2); N the per-group (anova, t) or
	// per-cell (term) n, continuous; Ceil the count to collect (ceil(N), or
	// for f2 the total sample size ceil(u + v + 1)).
	V    *float64 `json:"v,omitempty"`
	N    *float64 `json:"n,omitempty"`
	Ceil int64    `json:"n_required"`
}

// powerCmd is "abmesh power". It prints the sample size: the denominator
// df v of pwr.f2.test, the per-group n of pwr.anova.test or pwr.t.test
// (two-sample, two-sided), or the per-cell n for a factorial term (see
// analysis.SampleSizeTerm).
func powerCmd(fs *flag.FlagSet) body {
	u := fs.Int("u", 0, "numerator df (with --f2, or with --cells/--mde/--sd for a factorial term)")
	f2 := fs.Float64("f2", 0, "Cohen's f² (pwr.f2.test)")
	k := fs.Int("k", 0, "number of groups (pwr.anova.test, with --f)")
	f := fs.Float64("f", 0, "Cohen's f (pwr.anova.test, with --k)")
	d := fs.Float64("d", 0, "Cohen's d (pwr.t.test, two-sample, two-sided)")
	cells := fs.Int("cells", 0, "number of cells of the factorial design (term mode)")
	mde := fs.Float64("mde", 0, "minimum detectable difference (term mode)")
	sd := fs.Float64("sd", 0, "within-cell standard deviation (term mode)")
	alpha := fs.Float64("alpha", 0.05, "significance level")
	power := fs.Float64("power", 0.8, "target power")
	output := outputFlag(fs, "text", "json")
	return func(_ context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		set := map[string]bool{}
		fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
		has := func(names ...string) bool {
			for _, n := range names {
				if !set[n] {
					return false
				}
			}
			return true
		}
		modes := 0
		for _, m := range [][]string{{"f2"}, {"k"}, {"f"}, {"d"}, {"cells"}, {"mde"}, {"sd"}} {
			if has(m...) {
				modes++
			}
		}
		res := powerJSON{Alpha: *alpha, Power: *power}
		var text string
		var err error
		switch {
		case has("u", "f2") && modes == 1:
			var v float64
			v, err = analysis.SampleSizeF2(*u, *f2, *alpha, *power)
			res.Test, res.U, res.F2, res.V = "f2", u, f2, &v
			res.Ceil = int64(math.Ceil(float64(*u) + v + 1))
			text = fmt.Sprintf("F test (pwr.f2.test): u = %d, f² = %g, alpha = %g, power = %g\n  v = %.2f denominator df, total N = %d\n",
				*u, *f2, *alpha, *power, v, res.Ceil)
		case has("k", "f") && modes == 2 && !set["u"]:
			var n float64
			n, err = analysis.SampleSizeANOVA(*k, *f, *alpha, *power)
			res.Test, res.K, res.F, res.N = "anova", k, f, &n
			res.Ceil = int64(math.Ceil(n))
			text = fmt.Sprintf("one-way ANOVA (pwr.anova.test): k = %d, f = %g, alpha = %g, power = %g\n  n = %.2f per group (collect %d per group, %d in all)\n",
				*k, *f, *alpha, *power, n, res.Ceil, res.Ceil*int64(*k))
		case has("d") && modes == 1 && !set["u"]:
			var n float64
			n, err = analysis.SampleSizeTTest(*d, *alpha, *power)
			res.Test, res.D, res.N = "t", d, &n
			res.Ceil = int64(math.Ceil(n))
			text = fmt.Sprintf("two-sample t test, two-sided (pwr.t.test): d = %g, alpha = %g, power = %g\n  n = %.2f per group (collect %d per group)\n",
				*d, *alpha, *power, n, res.Ceil)
		case has("u", "cells", "mde", "sd") && modes == 3:
			var n float64
			n, err = analysis.SampleSizeTerm(*u, *cells, *mde, *sd, *alpha, *power)
			ff := analysis.MDEToF(*mde, *sd, *u)
			res.Test, res.U, res.Cells, res.MDE, res.SD, res.F, res.N = "term", u, cells, mde, sd, &ff, &n
			res.Ceil = int64(math.Ceil(n))
			text = fmt.Sprintf("factorial term: u = %d, %d cells, mde = %g, sd = %g (f = %.4g), alpha = %g, power = %g\n  n = %.2f per cell (collect %d per cell, %d in all)\n",
				*u, *cells, *mde, *sd, ff, *alpha, *power, n, res.Ceil, res.Ceil*int64(*cells))
		default:
			return errors.New("power: give exactly one of --u U --f2 F2 | --k K --f F | --d D | --u U --cells C --mde M --sd S")
		}
		if err != nil {
			return fmt.Errorf("power: %w", err)
		}
		if *output == "json" {
			return json.NewEncoder(r.stdout).Encode(res)
		}
		_, err = io.WriteString(r.stdout, text)
		return err
	}
}
