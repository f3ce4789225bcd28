package analysis

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Errors returned by the functions of this package. They are wrapped with
// context; test for them with errors.Is.
var (
	// ErrInvalidDesign: the factors do not describe a factorial design
	// (no factor, an unnamed or duplicated factor or level, a factor with
	// fewer levels than the analysis needs, too many cells).
	ErrInvalidDesign = errors.New("invalid design")
	// ErrNoData: there are no observations to analyse.
	ErrNoData = errors.New("no data")
	// ErrInvalidInput: an argument is out of its domain (a confidence level
	// outside (0, 1), a negative count, a NaN statistic, a malformed row).
	ErrInvalidInput = errors.New("invalid input")
)

// MaxCells is the largest number of cells a CellTable may have.
const MaxCells = 1 << 20

// Factor is one factor of a factorial design, for abmesh one A/B test (or
// one layer of mutually exclusive tests): its name and its levels
// (variants). Without Reference the first level is the control: estimates
// compare every other level with it.
type Factor struct {
	Name   string
	Levels []string
	// Reference, when set, has one entry per level: the index of the level
	// that level is compared with (its control), or −1 (or the level's own
	// index) when it is compared with none. A layer factor, whose levels
	// are the (test, variant) pairs of several tests, compares each
	// test's variants with that test's control this way.
	Reference []int
}

// checkReference checks that Reference, when set, has one entry per level,
// each −1 or a level index.
func (f Factor) checkReference() error {
	if f.Reference == nil {
		return nil
	}
	if len(f.Reference) != len(f.Levels) {
		return fmt.Errorf("%w: factor %q has %d references for %d levels", ErrInvalidDesign, f.Name, len(f.Reference), len(f.Levels))
	}
	for l, r := range f.Reference {
		if r < -1 || r >= len(f.Levels) {
			return fmt.Errorf("%w: factor %q: level %q has reference %d, not a level", ErrInvalidDesign, f.Name, f.Levels[l], r)
		}
	}
	return nil
}

// reference returns the level that level l is compared with, −1 for none
// (Reference is taken as checked).
func (f Factor) reference(l int) int {
	r := 0
	if f.Reference != nil {
		r = f.Reference[l]
	}
	if r == l {
		return -1
	}
	return r
}

// CellTable holds the statistics of every cell of a full factorial design.
//
// Cells has one entry per combination of levels, in row-major order: the
// last factor varies fastest. For levels l (l[f] indexes Factors[f].Levels)
// the cell is
//
//	Cells[((l[0]·k1 + l[1])·k2 + l[2])·… ]
//
// where kf = len(Factors[f].Levels). A cell with N == 0 is empty. Use Index
// and Levels to convert between the two forms; NewCellTable builds a table
// with all cells empty.
//
// A table filled by MergeRatioCell is a ratio table: Ratios holds each
// cell's RatioStats (one entry per cell, in the order of Cells), and each
// cell's CellStats are derived from them as the statistics of the units'
// linearised values (see RatioStats.Linearized): N is the number of units,
// Mean the cell's ratio Σ s / Σ n and M2/(N − 1)/N its delta-method
// variance. Anova and Estimate then use each cell's own delta-method
// variance instead of a pooled one (see Anova and Estimate). Ratios is nil
// for an ordinary table.
type CellTable struct {
	Factors []Factor
	Cells   []CellStats
	Ratios  []RatioStats `json:",omitempty"`
}

// NewCellTable returns a table with every cell empty. Each factor needs a
// non-empty name unique among the factors and at least one level, with
// unique level names; the product of the level counts may not exceed
// MaxCells. Errors wrap ErrInvalidDesign.
func NewCellTable(factors []Factor) (*CellTable, error) {
	t := &CellTable{Factors: factors}
	if err := t.checkFactors(1); err != nil {
		return nil, err
	}
	n := 1
	for _, f := range factors {
		n *= len(f.Levels)
	}
	t.Cells = make([]CellStats, n)
	return t, nil
}

// checkFactors validates the factors, requiring minLevels levels each, and
// that len(Cells) matches the design when Cells is not nil.
func (t *CellTable) checkFactors(minLevels int) error {
	if len(t.Factors) == 0 {
		return fmt.Errorf("%w: no factor", ErrInvalidDesign)
	}
	names := make(map[string]bool, len(t.Factors))
	cells := 1
	for i, f := range t.Factors {
		if f.Name == "" {
			return fmt.Errorf("%w: factor %d has no name", ErrInvalidDesign, i)
		}
		if strings.ContainsAny(f.Name, ":") {
			return fmt.Errorf("%w: factor name %q contains ':'", ErrInvalidDesign, f.Name)
		}
		if names[f.Name] {
			return fmt.Errorf("%w: factor %q appears twice", ErrInvalidDesign, f.Name)
		}
		names[f.Name] = true
		if len(f.Levels) < minLevels {
			if len(f.Levels) == 1 {
				return fmt.Errorf("%w: factor %q has only one level (%q); it needs at least %d",
					ErrInvalidDesign, f.Name, f.Levels[0], minLevels)
			}
			return fmt.Errorf("%w: factor %q has %d levels; it needs at least %d",
				ErrInvalidDesign, f.Name, len(f.Levels), minLevels)
		}
		if err := f.checkReference(); err != nil {
			return err
		}
		seen := make(map[string]bool, len(f.Levels))
		for _, l := range f.Levels {
			if seen[l] {
				return fmt.Errorf("%w: factor %q has level %q twice", ErrInvalidDesign, f.Name, l)
			}
			seen[l] = true
		}
		if cells > MaxCells/len(f.Levels) {
			return fmt.Errorf("%w: more than %d cells", ErrInvalidDesign, MaxCells)
		}
		cells *= len(f.Levels)
	}
	if t.Cells != nil && len(t.Cells) != cells {
		return fmt.Errorf("%w: %d cells for a design of %d", ErrInvalidDesign, len(t.Cells), cells)
	}
	return nil
}

// validate checks the factors (at least minLevels levels each), the number
// of cells and every cell's statistics.
func (t *CellTable) validate(minLevels int) error {
	if t == nil {
		return fmt.Errorf("%w: nil table", ErrNoData)
	}
	if t.Cells == nil {
		return fmt.Errorf("%w: no cells", ErrInvalidDesign)
	}
	if err := t.checkFactors(minLevels); err != nil {
		return err
	}
	if err := t.checkRatios(); err != nil {
		return err
	}
	var n int64
	for i, c := range t.Cells {
		if c.N < 0 || (c.N > 0 && (math.IsNaN(c.Mean) || math.IsInf(c.Mean, 0) ||
			math.IsNaN(c.M2) || math.IsInf(c.M2, 0) || c.M2 < 0)) {
			return fmt.Errorf("%w: cell %s has invalid statistics %+v", ErrInvalidInput, t.CellName(i), c)
		}
		n += c.N
	}
	if n == 0 {
		return fmt.Errorf("%w: every cell is empty", ErrNoData)
	}
	return nil
}

// Index returns the position in Cells of the cell with the given level
// indices, one per factor. It panics if len(levels) != len(t.Factors) or a
// level is out of range.
func (t *CellTable) Index(levels ...int) int {
	if len(levels) != len(t.Factors) {
		panic(fmt.Sprintf("analysis: %d levels for %d factors", len(levels), len(t.Factors)))
	}
	i := 0
	for f, l := range levels {
		k := len(t.Factors[f].Levels)
		if l < 0 || l >= k {
			panic(fmt.Sprintf("analysis: level %d out of range for factor %q", l, t.Factors[f].Name))
		}
		i = i*k + l
	}
	return i
}

// Levels writes into dst (grown as needed) the level indices of cell i, one
// per factor, and returns it.
func (t *CellTable) Levels(i int, dst []int) []int {
	k := len(t.Factors)
	if cap(dst) < k {
		dst = make([]int, k)
	}
	dst = dst[:k]
	for f := k - 1; f >= 0; f-- {
		n := len(t.Factors[f].Levels)
		dst[f] = i % n
		i /= n
	}
	return dst
}

// LevelIndex returns the index of the level named level of the factor
// named factor, or an error wrapping ErrInvalidInput.
func (t *CellTable) LevelIndex(factor, level string) (f, l int, err error) {
	f = t.factorIndex(factor)
	if f < 0 {
		return -1, -1, fmt.Errorf("%w: no factor %q", ErrInvalidInput, factor)
	}
	for l, name := range t.Factors[f].Levels {
		if name == level {
			return f, l, nil
		}
	}
	return f, -1, fmt.Errorf("%w: factor %q has no level %q", ErrInvalidInput, factor, level)
}

func (t *CellTable) factorIndex(name string) int {
	for i, f := range t.Factors {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// Add adds one observation y to the cell named by its level names, one per
// factor in the order of Factors. A ratio table takes no single values:
// the error wraps ErrInvalidInput.
func (t *CellTable) Add(levels []string, y float64) error {
	i, err := t.indexByName(levels)
	if err != nil {
		return err
	}
	if t.Ratios != nil {
		return errRatioTable
	}
	t.Cells[i].Add(y)
	return nil
}

// MergeCell merges the statistics s into the cell named by its level names,
// one per factor in the order of Factors. A ratio table takes RatioStats
// only (MergeRatioCell): the error wraps ErrInvalidInput.
func (t *CellTable) MergeCell(levels []string, s CellStats) error {
	i, err := t.indexByName(levels)
	if err != nil {
		return err
	}
	if t.Ratios != nil && s.N != 0 {
		return errRatioTable
	}
	t.Cells[i].Merge(s)
	return nil
}

var errRatioTable = fmt.Errorf("%w: a ratio table takes RatioStats (MergeRatioCell), not values", ErrInvalidInput)

// MergeRatioCell merges the ratio statistics r into the cell named by its
// level names, one per factor in the order of Factors, making t a ratio
// table (see CellTable). It fails, wrapping ErrInvalidInput, when t
// already holds ordinary (non-ratio) observations, or when r is not valid:
// a negative K, a non-finite moment, a negative M2, or units without
// requests (K > 0 with MeanN ≤ 0).
func (t *CellTable) MergeRatioCell(levels []string, r RatioStats) error {
	i, err := t.indexByName(levels)
	if err != nil {
		return err
	}
	if err := r.check(); err != nil {
		return fmt.Errorf("cell %s: %w", t.CellName(i), err)
	}
	if err := t.makeRatio(); err != nil {
		return err
	}
	t.Ratios[i].Merge(r)
	t.Cells[i] = t.Ratios[i].Linearized()
	return nil
}

// makeRatio turns t into a ratio table; it fails when t holds ordinary
// observations.
func (t *CellTable) makeRatio() error {
	if t.Ratios != nil {
		return nil
	}
	if t.N() != 0 {
		return fmt.Errorf("%w: the table holds values; a ratio table takes RatioStats only", ErrInvalidInput)
	}
	t.Ratios = make([]RatioStats, len(t.Cells))
	return nil
}

// checkRatios checks that a ratio table's Ratios match its Cells, as
// MergeRatioCell leaves them.
func (t *CellTable) checkRatios() error {
	if t.Ratios == nil {
		return nil
	}
	if len(t.Ratios) != len(t.Cells) {
		return fmt.Errorf("%w: %d ratio cells for %d cells", ErrInvalidDesign, len(t.Ratios), len(t.Cells))
	}
	for i, r := range t.Ratios {
		if err := r.check(); err != nil {
			return fmt.Errorf("cell %s: %w", t.CellName(i), err)
		}
		if c := t.Cells[i]; c.N != r.K || (r.K > 0 && c.Mean != r.Ratio()) {
			return fmt.Errorf("%w: cell %s: the cell statistics do not match its ratio statistics (fill ratio tables with MergeRatioCell)",
				ErrInvalidInput, t.CellName(i))
		}
	}
	return nil
}

func (t *CellTable) indexByName(levels []string) (int, error) {
	if len(levels) != len(t.Factors) {
		return 0, fmt.Errorf("%w: %d levels for %d factors", ErrInvalidInput, len(levels), len(t.Factors))
	}
	i := 0
	for f, name := range levels {
		l := -1
		for j, ln := range t.Factors[f].Levels {
			if ln == name {
				l = j
				break
			}
		}
		if l < 0 {
			return 0, fmt.Errorf("%w: factor %q has no level %q", ErrInvalidInput, t.Factors[f].Name, name)
		}
		i = i*len(t.Factors[f].Levels) + l
	}
	return i, nil
}

// Merge adds every cell of o into t. Both tables must have the same
// factors and levels in the same order, and a ratio table merges only
// with a ratio table or an empty one.
func (t *CellTable) Merge(o *CellTable) error {
	if len(o.Factors) != len(t.Factors) || len(o.Cells) != len(t.Cells) {
		return fmt.Errorf("%w: merging tables of different designs", ErrInvalidInput)
	}
	for f := range t.Factors {
		a, b := t.Factors[f], o.Factors[f]
		if a.Name != b.Name || len(a.Levels) != len(b.Levels) {
			return fmt.Errorf("%w: merging tables of different designs (factor %q)", ErrInvalidInput, a.Name)
		}
		for l := range a.Levels {
			if a.Levels[l] != b.Levels[l] {
				return fmt.Errorf("%w: merging tables of different designs (factor %q)", ErrInvalidInput, a.Name)
			}
		}
	}
	if o.Ratios != nil || t.Ratios != nil {
		return t.mergeRatios(o)
	}
	for i := range t.Cells {
		t.Cells[i].Merge(o.Cells[i])
	}
	return nil
}

// mergeRatios is Merge when either table is a ratio table.
func (t *CellTable) mergeRatios(o *CellTable) error {
	if o.Ratios == nil {
		if o.N() != 0 {
			return errRatioTable
		}
		return nil
	}
	if len(o.Ratios) != len(t.Cells) {
		return fmt.Errorf("%w: %d ratio cells for %d cells", ErrInvalidDesign, len(o.Ratios), len(t.Cells))
	}
	if err := t.makeRatio(); err != nil {
		return err
	}
	for i := range t.Cells {
		t.Ratios[i].Merge(o.Ratios[i])
		t.Cells[i] = t.Ratios[i].Linearized()
	}
	return nil
}

// N returns the total number of observations.
func (t *CellTable) N() int64 {
	var n int64
	for _, c := range t.Cells {
		n += c.N
	}
	return n
}

// CellName returns the cell's levels as "a=x,b=y".
func (t *CellTable) CellName(i int) string {
	lv := t.Levels(i, nil)
	var b strings.Builder
	for f, l := range lv {
		if f > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.Factors[f].Name)
		b.WriteByte('=')
		b.WriteString(t.Factors[f].Levels[l])
	}
	return b.String()
}

// TermName returns a term's name as R writes it: the names of the factors
// in mask (bit f set for Factors[f]) joined by ':', e.g. "a:b".
func (t *CellTable) TermName(mask uint64) string {
	var b strings.Builder
	for f := range t.Factors {
		if mask&(1<<f) != 0 {
			if b.Len() > 0 {
				b.WriteByte(':')
			}
			b.WriteString(t.Factors[f].Name)
		}
	}
	return b.String()
}
