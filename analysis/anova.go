package analysis

import (
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strings"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/mathext"
)

// SSType selects how Anova attributes sums of squares to terms in an
// unbalanced design. All three agree when every cell has the same n.
type SSType int

const (
	// TypeI is sequential: each term is adjusted for the terms before it,
	// in R's order (main effects, then two-way interactions, …): the
	// numbers of R's anova(lm(y ~ a*b*c)).
	TypeI SSType = 1
	// TypeII adjusts each term for every term that does not contain it
	// (car's rule): the numbers of car::Anova(m, type=2).
	TypeII SSType = 2
	// TypeIII adjusts each term for every other term of the full model
	// under the chosen coding (sum-to-zero by default): the numbers of
	// car::Anova(m, type=3) with options(contrasts=c("contr.sum","contr.poly")).
	// With sum-to-zero coding its main effects test the equality of the
	// unweighted marginal means. It needs every cell to be non-empty.
	TypeIII SSType = 3
)

// String returns "I", "II" or "III".
func (t SSType) String() string {
	switch t {
	case TypeI:
		return "I"
	case TypeII:
		return "II"
	case TypeIII:
		return "III"
	}
	return fmt.Sprintf("SSType(%d)", int(t))
}

// Coding is the coding of factors in the Type III model. Types I and II do
// not depend on the coding.
type Coding int

const (
	// SumToZero is R's contr.sum: effects sum to zero over each factor's
	// levels. The default, and the only coding under which Type III tests
	// hypotheses about unweighted marginal means.
	SumToZero Coding = iota
	// Treatment is R's contr.treatment with the first level as reference:
	// Type III then tests each term at the reference level of every other
	// factor (R's default contrasts; rarely what is wanted).
	Treatment
)

// String returns "contr.sum" or "contr.treatment".
func (c Coding) String() string {
	switch c {
	case SumToZero:
		return "contr.sum"
	case Treatment:
		return "contr.treatment"
	}
	return fmt.Sprintf("Coding(%d)", int(c))
}

// AnovaOption configures Anova.
type AnovaOption interface{ apply(*anovaConfig) }

type anovaConfig struct {
	coding Coding
}

type codingOption Coding

func (c codingOption) apply(cfg *anovaConfig) { cfg.coding = Coding(c) }

// WithCoding sets the factor coding of the Type III model (default
// SumToZero). It has no effect on Types I and II.
func WithCoding(c Coding) AnovaOption { return codingOption(c) }

// AnovaTerm is one row of an ANOVA table.
//
// When Estimable is false the term could not be estimated from the
// non-empty cells (DF, SS, MS, F and PartialEta2 are 0, P is 1) and Note
// says why, e.g. "not estimable: cell a=x,b=y is empty". When Tested is
// false (and Estimable true) SS and MS are valid but no F test was possible
// (no residual degrees of freedom, or zero residual variance): F is 0, P is
// 1 and Note says why. No field is ever NaN.
//
// In a Wald table (AnovaTable.Test == TestWald, a ratio table) a row has
// DF, Chisq and P; SS, MS, F and PartialEta2 are 0.
type AnovaTerm struct {
	// Name is the term as R writes it: "a", "a:b", "a:b:c", or
	// "(Intercept)".
	Name string
	// Factors are the indices into the table's Factors of the term's
	// factors, ascending; empty for the intercept.
	Factors []int
	// DF is the numerator degrees of freedom; with empty cells it may be
	// less than the product of (levels − 1), and Note then says so.
	DF int
	// SS is the sum of squares, MS = SS/DF.
	SS, MS float64
	// F = MS / residual MS, and P = P(F(DF, residual DF) > F).
	F, P float64
	// PartialEta2 is the partial η²:
	//
	//	η²p = SS / (SS + SS_residual)
	PartialEta2 float64
	// Chisq is the Wald statistic of a Wald table, and P = P(χ²(DF) > Chisq);
	// 0 in an F table.
	Chisq     float64
	Estimable bool
	Tested    bool
	// Note is empty unless something about the row needs saying.
	Note string
}

// AnovaResidual is the residual (within-cell) row of an ANOVA table:
//
//	DF = N − (number of non-empty cells)
//	SS = Σ_cells M2
//	MS = SS/DF  (0 when DF is 0)
//
// In a ratio table the cells' M2 are those of the units' linearised
// values (RatioStats.Linearized), so MS is the pooled per-unit variance of
// the ratio, √MS the standard deviation a power plan needs (n counted in
// units); the Wald tests do not use it.
type AnovaResidual struct {
	DF int64
	SS float64
	MS float64
}

// The tests of an ANOVA table (AnovaTable.Test).
const (
	// TestF: F tests on the pooled within-cell variance (ordinary tables).
	TestF = "F"
	// TestWald: Wald chi-square tests with each cell's own delta-method
	// variance (ratio tables).
	TestWald = "Wald chi-square (delta method)"
)

// AnovaTable is a factorial ANOVA: one row per term, in R's order.
type AnovaTable struct {
	Type    SSType
	Coding  Coding // of the Type III model; SumToZero for Types I and II
	Factors []Factor
	// Test says how the rows are tested: TestF or TestWald; renderers
	// should say which.
	Test string
	// N is the number of observations: of units in a ratio table.
	N int64
	// Intercept is the Type III "(Intercept)" row (the test that the
	// intercept, under Coding, is 0); nil for Types I and II.
	Intercept *AnovaTerm
	// Terms are every main effect and interaction of the factors, ordered
	// by degree, then as R orders them (a, b, c, a:b, a:c, b:c, a:b:c).
	Terms    []AnovaTerm
	Residual AnovaResidual
	// EmptyCells names the empty cells ("a=x,b=y"), in table order.
	EmptyCells []string
}

// Term returns the row named name ("a:b"), or nil.
func (a *AnovaTable) Term(name string) *AnovaTerm {
	for i := range a.Terms {
		if a.Terms[i].Name == name {
			return &a.Terms[i]
		}
	}
	if a.Intercept != nil && a.Intercept.Name == name {
		return a.Intercept
	}
	return nil
}

// Anova computes the factorial ANOVA with all interactions of the table's
// factors from the cell statistics alone.
//
// The cell-means model is sufficient: weighted least squares on the
// non-empty cells' means, with weight n per cell, has the same fitted
// values as least squares on the raw rows, and
//
//	RSS(model) = Σ_cells M2 + Σ_cells n·(mean − fitted)²
//
// so every sum of squares is a difference of the second term between two
// models, and the residual row is Σ M2 on N − (non-empty cells) df.
// Types I and II are computed by projecting √n·mean on an orthonormal
// basis grown term by term (aliased columns, from empty cells, are
// dropped as R drops them); Type III, which needs every cell, by the
// equivalent Wald form on the full model, whose coefficients are linear in
// the cell means:
//
//	SS_T = β_T' (L_T D⁻¹ L_T')⁻¹ β_T,  β_T = L_T·mean,  D = diag(n)
//
// where the rows L_T of the inverse coding matrix are Kronecker products of
// per-factor rows. Cost: Type III O(cells²) (64 cells ≈ 0.1 ms, 1024 cells
// ≈ 10 ms); Type I O(cells³) (1024 cells ≈ 1 s); Type II O(terms·cells³),
// fine for the 2–7 factors of a subset (128 cells ≈ 0.15 s) but minutes
// at 10 factors.
//
// Every factor needs at least two levels. A table whose cells are all
// empty returns ErrNoData. Empty cells do not make Anova fail: terms that
// can no longer be estimated are returned with Estimable false and a Note
// naming the empty cells (under Type III every term, because each
// sum-to-zero coefficient involves every cell; use Type II). A design with
// one observation per cell has no residual df: terms get Tested false.
//
// A ratio table (see CellTable) has Type III only, as Wald chi-square
// tests (Test is TestWald) of the same hypotheses, L_T·R = 0 with R the
// cells' ratios, each cell with its own delta-method variance v_c
// (RatioStats.Variance) and cells independent:
//
//	W_T = β_T' (L_T V L_T')⁻¹ β_T,  β_T = L_T·R,  V = diag(v_c),  W_T ~ χ²(df_T)
//
// It needs every cell to have two units or more (else the rows are not
// tested, with a Note). Types I and II of a ratio table are an error
// wrapping ErrInvalidInput: their hypotheses are defined by weighting the
// cells by their observation counts under one pooled variance, which a
// ratio (heteroscedastic cells, requests not independent) does not have.
func Anova(t *CellTable, typ SSType, opts ...AnovaOption) (*AnovaTable, error) {
	cfg := anovaConfig{coding: SumToZero}
	for _, o := range opts {
		o.apply(&cfg)
	}
	if typ < TypeI || typ > TypeIII {
		return nil, fmt.Errorf("%w: ANOVA type %d (want 1, 2 or 3)", ErrInvalidInput, int(typ))
	}
	if cfg.coding != SumToZero && cfg.coding != Treatment {
		return nil, fmt.Errorf("%w: coding %d", ErrInvalidInput, int(cfg.coding))
	}
	if err := t.validate(2); err != nil {
		return nil, err
	}
	if t.Ratios != nil && typ != TypeIII {
		return nil, fmt.Errorf("%w: Type %s ANOVA of a ratio table: only Type III is defined (Wald chi-square tests on the cells' ratios with their delta-method variances)",
			ErrInvalidInput, typ)
	}
	d := newDesign(t)
	out := &AnovaTable{
		Type:     typ,
		Coding:   SumToZero,
		Factors:  t.Factors,
		Test:     TestF,
		N:        d.nObs,
		Residual: AnovaResidual{DF: d.dfRes, SS: d.ssRes},
	}
	if t.Ratios != nil {
		out.Test = TestWald
	}
	if d.dfRes > 0 {
		out.Residual.MS = d.ssRes / float64(d.dfRes)
	}
	for _, i := range d.empty {
		out.EmptyCells = append(out.EmptyCells, t.CellName(i))
	}
	masks := allTerms(d.k)
	out.Terms = make([]AnovaTerm, len(masks))
	for i, m := range masks {
		out.Terms[i] = AnovaTerm{Name: t.TermName(m), Factors: maskFactors(m)}
	}
	var df []int
	var ss []float64
	switch typ {
	case TypeI:
		df, ss = d.typeI(masks)
	case TypeII:
		df, ss = d.typeII(masks)
	case TypeIII:
		out.Coding = cfg.coding
		out.Intercept = &AnovaTerm{Name: "(Intercept)"}
		if len(d.empty) > 0 {
			d.notEstimable(out, "not estimable: "+d.emptyList(d.empty)+"; Type III needs every cell (use Type II)")
			return out, nil
		}
		if t.Ratios != nil {
			d.waldRows(out, cfg.coding)
			return out, nil
		}
		df, ss = d.typeIII(out.Intercept, masks, cfg.coding)
	}
	for i, m := range masks {
		d.fill(&out.Terms[i], m, nominalDF(d.nlev, m), df[i], ss[i])
	}
	return out, nil
}

// notEstimable marks every row of a Type III table not estimable, with note.
func (d *design) notEstimable(out *AnovaTable, note string) {
	out.Intercept.Note, out.Intercept.P = note, 1
	for i := range out.Terms {
		out.Terms[i].Note, out.Terms[i].P = note, 1
	}
}

// typeIII computes the Type III df and SS of every term (and fills the
// intercept row) on a design with every cell non-empty.
func (d *design) typeIII(intercept *AnovaTerm, masks []uint64, coding Coding) ([]int, []float64) {
	df := make([]int, len(masks))
	ss := make([]float64, len(masks))
	w := d.newWald(coding, d.n)
	idf, iss := w.ss(0)
	for i, m := range masks {
		df[i], ss[i] = w.ss(m)
	}
	d.fill(intercept, 0, idf, idf, iss)
	return df, ss
}

// waldRows fills the rows of a ratio table's Type III Wald tests: the
// quadratic form of wald.ss with precision weights 1/v_c, tested against
// χ²(df). A cell with fewer than two units has no variance: no row is
// tested then.
func (d *design) waldRows(out *AnovaTable, coding Coding) {
	rows := append([]*AnovaTerm{out.Intercept}, termPtrs(out.Terms)...)
	prec := make([]float64, len(d.cells))
	for r, i := range d.cells {
		if d.t.Ratios[i].K < 2 {
			note := "no test: cell " + d.t.CellName(i) + " has one unit; its delta-method variance needs two"
			for _, row := range rows {
				row.Estimable, row.DF, row.P, row.Note = true, nominalDF(d.nlev, maskOf(row.Factors)), 1, note
			}
			return
		}
		prec[r] = 1 / d.t.Ratios[i].Variance()
	}
	w := d.newWald(coding, prec)
	for _, row := range rows {
		fillWald(row, w, maskOf(row.Factors), nominalDF(d.nlev, maskOf(row.Factors)))
	}
}

// fillWald completes the Wald row of term mask (0: the intercept) with
// nominal df.
func fillWald(row *AnovaTerm, w *wald, mask uint64, nominal int) {
	row.Estimable, row.DF, row.P = true, nominal, 1
	df, chisq := w.ss(mask)
	if df == 0 || math.IsInf(chisq, 0) || math.IsNaN(chisq) {
		row.Note = "no test: the variance of the term's contrasts is 0 or singular (cells without variation)"
		return
	}
	row.Chisq = chisq
	row.P = chisqSurvival(chisq, float64(df))
	row.Tested = true
}

func termPtrs(ts []AnovaTerm) []*AnovaTerm {
	p := make([]*AnovaTerm, len(ts))
	for i := range ts {
		p[i] = &ts[i]
	}
	return p
}

func maskOf(factors []int) uint64 {
	var m uint64
	for _, f := range factors {
		m |= 1 << f
	}
	return m
}

// chisqSurvival returns P(X > x) for X ~ χ²(df), as the regularised upper
// incomplete gamma Q(df/2, x/2), which keeps tiny p-values' precision.
func chisqSurvival(x, df float64) float64 {
	if x <= 0 {
		return 1
	}
	return mathext.GammaIncRegComp(df/2, x/2)
}

// fill completes a row from its df and SS; nominal is its df without
// empty cells.
func (d *design) fill(row *AnovaTerm, mask uint64, nominal, df int, ss float64) {
	row.P = 1
	if df == 0 {
		row.Note = "not estimable: " + d.emptyReason(mask)
		return
	}
	if ss < 0 { // rounding in a difference of tiny quantities
		ss = 0
	}
	row.Estimable = true
	row.DF = df
	row.SS = ss
	row.MS = ss / float64(df)
	if ss+d.ssRes > 0 {
		row.PartialEta2 = ss / (ss + d.ssRes)
	}
	if df < nominal {
		row.Note = fmt.Sprintf("df reduced from %d to %d: %s", nominal, df, d.emptyReason(mask))
	}
	switch {
	case d.dfRes == 0:
		row.Note = joinNote(row.Note, "F not computable: residual df is 0 (one observation per cell)")
	case d.ssRes == 0:
		row.Note = joinNote(row.Note, "F not computable: residual SS is 0 (no variation within cells)")
	default:
		mse := d.ssRes / float64(d.dfRes)
		row.F = row.MS / mse
		row.P = fSurvival(row.F, float64(df), float64(d.dfRes))
		row.Tested = true
	}
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// fSurvival returns P(X > x) for X ~ F(d1, d2), computed directly as an
// incomplete beta so tiny p-values keep their relative precision
// (distuv.F.Survival is 1 − CDF):
//
//	P(X > x) = I_{d2/(d2 + d1·x)}(d2/2, d1/2)
func fSurvival(x, d1, d2 float64) float64 {
	if x <= 0 {
		return 1
	}
	if math.IsInf(x, 1) {
		return 0
	}
	return mathext.RegIncBeta(d2/2, d1/2, d2/(d2+d1*x))
}

// allTerms returns the masks of every non-empty subset of k factors in R's
// order: by degree, then by mask read as a binary number with factor 0 as
// the lowest bit (a, b, c, a:b, a:c, b:c, a:d, …).
func allTerms(k int) []uint64 {
	n := uint64(1)<<k - 1
	m := make([]uint64, 0, n)
	for i := uint64(1); i <= n; i++ {
		m = append(m, i)
	}
	sort.Slice(m, func(i, j int) bool {
		ci, cj := bits.OnesCount64(m[i]), bits.OnesCount64(m[j])
		if ci != cj {
			return ci < cj
		}
		return m[i] < m[j]
	})
	return m
}

func maskFactors(m uint64) []int {
	var f []int
	for i := 0; m != 0; i, m = i+1, m>>1 {
		if m&1 != 0 {
			f = append(f, i)
		}
	}
	return f
}

func nominalDF(nlev []int, m uint64) int {
	df := 1
	for f, k := range nlev {
		if m&(1<<f) != 0 {
			df *= k - 1
		}
	}
	return df
}

// design is the weighted cell-means regression of a table.
type design struct {
	t     *CellTable
	k     int
	nlev  []int
	cells []int     // table index of each non-empty cell (a row)
	lv    []int     // levels of row r: lv[r*k : r*k+k]
	n     []float64 // n of each row
	sw    []float64 // √n of each row
	mean  []float64 // mean of each row
	y     []float64 // √n·(mean − grand mean): the centred response
	nObs  int64
	ssRes float64
	dfRes int64
	empty []int // table indices of the empty cells
}

func newDesign(t *CellTable) *design {
	d := &design{t: t, k: len(t.Factors)}
	d.nlev = make([]int, d.k)
	for f := range t.Factors {
		d.nlev[f] = len(t.Factors[f].Levels)
	}
	var sum float64
	var lv []int
	for i, c := range t.Cells {
		if c.N == 0 {
			d.empty = append(d.empty, i)
			continue
		}
		d.cells = append(d.cells, i)
		lv = t.Levels(i, lv)
		d.lv = append(d.lv, lv...)
		n := float64(c.N)
		d.n = append(d.n, n)
		d.sw = append(d.sw, math.Sqrt(n))
		d.mean = append(d.mean, c.Mean)
		d.nObs += c.N
		d.ssRes += c.M2
		sum += n * c.Mean
	}
	grand := sum / float64(d.nObs)
	d.y = make([]float64, len(d.cells))
	for r := range d.y {
		d.y[r] = d.sw[r] * (d.mean[r] - grand)
	}
	d.dfRes = d.nObs - int64(len(d.cells))
	return d
}

// columns calls fn once per column of term mask under sum-to-zero coding,
// weighted by √n, with the column in x (which fn may overwrite).
func (d *design) columns(mask uint64, x []float64, fn func(x []float64)) {
	fs := maskFactors(mask)
	j := make([]int, len(fs)) // contrast index per factor of the term
	for {
		for r := range x {
			v := d.sw[r]
			lv := d.lv[r*d.k : r*d.k+d.k]
			for i, f := range fs {
				l, last := lv[f], d.nlev[f]-1
				switch {
				case l == j[i]:
				case l == last:
					v = -v
				default:
					v = 0
				}
				if v == 0 {
					break
				}
			}
			x[r] = v
		}
		fn(x)
		// Next combination of contrast indices, last factor fastest.
		i := len(fs) - 1
		for ; i >= 0; i-- {
			j[i]++
			if j[i] < d.nlev[fs[i]]-1 {
				break
			}
			j[i] = 0
		}
		if i < 0 {
			return
		}
	}
}

// project adds the columns of mask to b and returns how many were not
// aliased and the SS they explain: Σ (q'y)² over the new basis vectors.
func (d *design) project(b *basis, mask uint64, x []float64) (df int, ss float64) {
	d.columns(mask, x, func(x []float64) {
		if b.rank == b.m {
			return // saturated: every further column is aliased
		}
		if q := b.add(x); q != nil {
			df++
			c := floats.Dot(q, d.y)
			ss += c * c
		}
	})
	return df, ss
}

func (d *design) addIntercept(b *basis, x []float64) {
	copy(x, d.sw)
	b.add(x)
}

func (d *design) typeI(masks []uint64) ([]int, []float64) {
	rows := len(d.cells)
	b := newBasis(rows, rows)
	x := make([]float64, rows)
	d.addIntercept(b, x)
	df := make([]int, len(masks))
	ss := make([]float64, len(masks))
	for i, m := range masks {
		df[i], ss[i] = d.project(b, m, x)
	}
	return df, ss
}

// typeII computes Type II SS: each term's df and the SS its columns
// explain after the intercept and every term that does not contain it
// (car's rule).
func (d *design) typeII(masks []uint64) ([]int, []float64) {
	rows := len(d.cells)
	b := newBasis(rows, rows)
	x := make([]float64, rows)
	df := make([]int, len(masks))
	ss := make([]float64, len(masks))
	for i, m := range masks {
		b.reset()
		d.addIntercept(b, x)
		for _, u := range masks {
			if u&m != m {
				d.project(b, u, x)
			}
		}
		df[i], ss[i] = d.project(b, m, x)
	}
	return df, ss
}

// emptyReason explains why term mask lost df: the empty cells of its
// marginal table if there are any, else the empty cells of the design.
func (d *design) emptyReason(mask uint64) string {
	if len(d.empty) == 0 {
		return "aliased with other terms"
	}
	// Marginal table over the term's factors.
	fs := maskFactors(mask)
	size := 1
	for _, f := range fs {
		size *= d.nlev[f]
	}
	count := make([]float64, size)
	for r := range d.cells {
		count[d.marginalIndex(fs, d.lv[r*d.k:r*d.k+d.k])] += d.n[r]
	}
	var parts []string
	for i, c := range count {
		if c == 0 {
			parts = append(parts, d.marginalName(fs, i))
		}
	}
	if len(parts) > 0 {
		return cellList(parts)
	}
	return "aliased because " + d.emptyList(d.empty)
}

func (d *design) emptyList(cells []int) string {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = d.t.CellName(c)
	}
	return cellList(parts)
}

// cellList writes "cell X is empty" or "cells X, Y and 3 more are empty".
func cellList(names []string) string {
	const show = 3
	if len(names) == 1 {
		return "cell " + names[0] + " is empty"
	}
	var b strings.Builder
	b.WriteString("cells ")
	for i, n := range names {
		if i == show {
			fmt.Fprintf(&b, " and %d more", len(names)-show)
			break
		}
		if i > 0 {
			if i == len(names)-1 {
				b.WriteString(" and ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(n)
	}
	b.WriteString(" are empty")
	return b.String()
}

func (d *design) marginalIndex(fs []int, lv []int) int {
	i := 0
	for _, f := range fs {
		i = i*d.nlev[f] + lv[f]
	}
	return i
}

func (d *design) marginalName(fs []int, i int) string {
	lv := make([]int, len(fs))
	for j := len(fs) - 1; j >= 0; j-- {
		lv[j] = i % d.nlev[fs[j]]
		i /= d.nlev[fs[j]]
	}
	var b strings.Builder
	for j, f := range fs {
		if j > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%s", d.t.Factors[f].Name, d.t.Factors[f].Levels[lv[j]])
	}
	return b.String()
}

// wald computes Type III sums of squares on a design with every cell
// non-empty (rows are then the cells in table order). The full model's
// coding matrix is the Kronecker product of per-factor matrices
// C_f = [1 | contrasts], so its inverse is the Kronecker product of the
// C_f⁻¹, whose rows are: for SumToZero the mean row (1/k, …, 1/k) and the
// contrast rows e_j − 1/k (j < k−1); for Treatment the reference row e_0
// and the contrast rows e_j − e_0 (j ≥ 1). L_T takes the contrast rows of
// the factors in T and the mean (reference) row of the others.
//
// prec are the cells' precision weights: Var(mean_c) ∝ 1/prec_c, n_c for
// the pooled-variance model (SS = σ²·W), 1/v_c for a ratio table's
// delta-method variances (then the quadratic form is the Wald statistic).
type wald struct {
	d      *design
	coding Coding
	prec   []float64
	a, b   []float64 // ping-pong buffers for L
	centre []float64 // mean − grand mean, per cell
}

func (d *design) newWald(c Coding, prec []float64) *wald {
	w := &wald{d: d, coding: c, prec: prec, centre: make([]float64, len(d.mean))}
	var grand float64
	for r := range d.mean {
		grand += d.n[r] * d.mean[r]
	}
	grand /= float64(d.nObs)
	for r := range d.mean {
		w.centre[r] = d.mean[r] - grand
	}
	return w
}

// coef returns entry l of row j of C_f⁻¹ for a factor with k levels:
// j < 0 is the mean/reference row, j ≥ 0 contrast row j.
func (w *wald) coef(k, j, l int) float64 {
	if w.coding == Treatment {
		switch {
		case j < 0:
			return b2f(l == 0)
		case l == j+1:
			return 1
		case l == 0:
			return -1
		}
		return 0
	}
	if j < 0 {
		return 1 / float64(k)
	}
	return b2f(l == j) - 1/float64(k)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// rows builds L_T for term mask (0: the intercept) and returns it with its
// number of rows.
func (w *wald) rows(mask uint64) ([]float64, int) {
	d := w.d
	L := append(w.a[:0], 1)
	nr, nc := 1, 1
	for f := 0; f < d.k; f++ {
		k := d.nlev[f]
		inTerm := mask&(1<<f) != 0
		br := 1 // rows of C_f⁻¹ taken: the contrast rows, or the mean row
		if inTerm {
			br = k - 1
		}
		size := nr * br * nc * k
		if cap(w.b) < size {
			w.b = make([]float64, size)
		}
		next := w.b[:size]
		for i := 0; i < nr; i++ {
			src := L[i*nc : (i+1)*nc]
			for bi := 0; bi < br; bi++ {
				dst := next[(i*br+bi)*nc*k : (i*br+bi+1)*nc*k]
				for l := 0; l < k; l++ {
					cf := w.coef(k, -1, l)
					if inTerm {
						cf = w.coef(k, bi, l)
					}
					for c, v := range src {
						dst[c*k+l] = v * cf
					}
				}
			}
		}
		// Swap buffers: next becomes L, the old L the next scratch.
		w.a, w.b = next, L[:cap(L)]
		L = next
		nr *= br
		nc *= k
	}
	w.a = L
	return L, nr
}

// ss returns the Type III df and SS of term mask (0: the intercept): the
// quadratic form β_T' (L_T P⁻¹ L_T')⁻¹ β_T with P = diag(prec). The df is
// 0 when L_T P⁻¹ L_T' is singular.
func (w *wald) ss(mask uint64) (int, float64) {
	f := w.forms(mask, w.prec)[0]
	return f.df, f.q
}

// form is one term's quadratic form under one precision vector P:
// df rows of L_T, q = β_T' V⁻¹ β_T and logDet = log det V with
// V = L_T P⁻¹ L_T'. df is 0 when V is singular (q and logDet are then 0).
type form struct {
	df     int
	q      float64
	logDet float64
}

// forms returns term mask's quadratic form (see form) under each of
// precs, building L_T and β_T once.
func (w *wald) forms(mask uint64, precs ...[]float64) []form {
	d := w.d
	L, nr := w.rows(mask)
	nc := len(d.mean)
	y := w.centre
	if mask == 0 {
		y = d.mean // the intercept is not invariant to the centring
	}
	beta := make([]float64, nr)
	for i := range beta {
		beta[i] = floats.Dot(L[i*nc:(i+1)*nc], y)
	}
	out := make([]form, len(precs))
	for p, prec := range precs {
		out[p] = quadForm(L, nr, nc, beta, prec)
	}
	return out
}

// quadForm computes the form of β under V = L P⁻¹ L' (L is nr × nc,
// row-major).
func quadForm(L []float64, nr, nc int, beta, prec []float64) form {
	if nr == 1 {
		var v float64
		for c, l := range L {
			v += l * l / prec[c]
		}
		if !(v > 0) || math.IsInf(v, 0) {
			return form{}
		}
		return form{df: 1, q: beta[0] * beta[0] / v, logDet: math.Log(v)}
	}
	V := mat.NewSymDense(nr, nil)
	tmp := make([]float64, nc)
	for i := 0; i < nr; i++ {
		li := L[i*nc : (i+1)*nc]
		for c := range tmp {
			tmp[c] = li[c] / prec[c]
		}
		for j := i; j < nr; j++ {
			V.SetSym(i, j, floats.Dot(tmp, L[j*nc:(j+1)*nc]))
		}
	}
	var ch mat.Cholesky
	if !ch.Factorize(V) {
		return form{}
	}
	var x mat.VecDense
	bv := mat.NewVecDense(nr, beta)
	if err := ch.SolveVecTo(&x, bv); err != nil {
		return form{}
	}
	return form{df: nr, q: mat.Dot(bv, &x), logDet: ch.LogDet()}
}
