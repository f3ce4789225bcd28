package analysis

import (
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// RowBuilder builds a CellTable from raw observations, one row at a time,
// when the levels are not known in advance: each factor's levels are
// numbered in order of first appearance, so the first level seen is the
// control. The zero value is not usable; use NewRowBuilder.
type RowBuilder struct {
	names  []string
	levels []map[string]int
	order  [][]string
	cells  map[string]*CellStats
	key    []byte
}

// NewRowBuilder returns a builder for the named factors. Names must be
// non-empty and unique.
func NewRowBuilder(factors []string) (*RowBuilder, error) {
	if len(factors) == 0 {
		return nil, fmt.Errorf("%w: no factor", ErrInvalidDesign)
	}
	seen := map[string]bool{}
	for _, f := range factors {
		if f == "" || seen[f] {
			return nil, fmt.Errorf("%w: factor name %q empty or repeated", ErrInvalidDesign, f)
		}
		seen[f] = true
	}
	b := &RowBuilder{
		names:  append([]string(nil), factors...),
		levels: make([]map[string]int, len(factors)),
		order:  make([][]string, len(factors)),
		cells:  map[string]*CellStats{},
	}
	for i := range b.levels {
		b.levels[i] = map[string]int{}
	}
	return b, nil
}

// Add adds one observation: its levels, one per factor in the builder's
// order, and its value y. Empty level names and non-finite y are rejected
// with an error wrapping ErrInvalidInput.
func (b *RowBuilder) Add(levels []string, y float64) error {
	if len(levels) != len(b.names) {
		return fmt.Errorf("%w: %d levels for %d factors", ErrInvalidInput, len(levels), len(b.names))
	}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return fmt.Errorf("%w: value %v is not finite", ErrInvalidInput, y)
	}
	for f, name := range levels {
		if name == "" {
			return fmt.Errorf("%w: factor %q: empty level", ErrInvalidInput, b.names[f])
		}
	}
	b.key = b.key[:0]
	for f, name := range levels {
		l, ok := b.levels[f][name]
		if !ok {
			l = len(b.order[f])
			b.levels[f][name] = l
			b.order[f] = append(b.order[f], name)
		}
		b.key = binary.AppendUvarint(b.key, uint64(l))
	}
	c := b.cells[string(b.key)]
	if c == nil {
		c = &CellStats{}
		b.cells[string(b.key)] = c
	}
	c.Add(y)
	return nil
}

// Table returns the table of everything added so far. It fails with
// ErrNoData when nothing was added. A factor with a single level is
// allowed here; Anova rejects it.
func (b *RowBuilder) Table() (*CellTable, error) {
	if len(b.cells) == 0 {
		return nil, fmt.Errorf("%w: no rows", ErrNoData)
	}
	factors := make([]Factor, len(b.names))
	for f := range factors {
		factors[f] = Factor{Name: b.names[f], Levels: append([]string(nil), b.order[f]...)}
	}
	t, err := NewCellTable(factors)
	if err != nil {
		return nil, err
	}
	lv := make([]int, len(factors))
	for key, c := range b.cells {
		kb := []byte(key)
		for f := range lv {
			v, n := binary.Uvarint(kb)
			lv[f] = int(v)
			kb = kb[n:]
		}
		t.Cells[t.Index(lv...)].Merge(*c)
	}
	return t, nil
}

// ReadCSV reads a CSV file with a header row and builds the cell table of
// the response column over the factor columns. Levels are numbered in
// order of first appearance (the first level seen is the control); other
// columns are ignored. A row whose response or factor value is R's missing
// marker "NA" is skipped, as R's lm does (na.omit). Errors name the line (1 is the header) or the
// column: an empty file, a missing column, a non-numeric or non-finite
// response, an empty factor value, a row with the wrong number of fields.
// Errors about the input wrap ErrInvalidInput or ErrNoData.
func ReadCSV(r io.Reader, response string, factors []string) (*CellTable, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: empty CSV (no header line)", ErrNoData)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read CSV header: %v", ErrInvalidInput, err)
	}
	col := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(h)
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	find := func(name string) (int, error) {
		i, ok := col[name]
		if !ok {
			return 0, fmt.Errorf("%w: column %q not in CSV header (columns: %s)",
				ErrInvalidInput, name, strings.Join(header, ", "))
		}
		return i, nil
	}
	yi, err := find(response)
	if err != nil {
		return nil, err
	}
	fi := make([]int, len(factors))
	for k, f := range factors {
		if fi[k], err = find(f); err != nil {
			return nil, err
		}
		if f == response {
			return nil, fmt.Errorf("%w: column %q is both response and factor", ErrInvalidInput, f)
		}
	}
	b, err := NewRowBuilder(factors)
	if err != nil {
		return nil, err
	}
	levels := make([]string, len(factors))
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read CSV: %v", ErrInvalidInput, err)
		}
		line, _ := cr.FieldPos(0)
		if isNA(rec[yi]) || anyNA(rec, fi) {
			continue // R's na.omit
		}
		s := strings.TrimSpace(rec[yi])
		y, perr := strconv.ParseFloat(s, 64)
		if perr != nil || math.IsNaN(y) || math.IsInf(y, 0) {
			return nil, fmt.Errorf("%w: line %d: column %q: %q is not a finite number",
				ErrInvalidInput, line, response, rec[yi])
		}
		for k, i := range fi {
			levels[k] = strings.TrimSpace(rec[i])
			if levels[k] == "" {
				return nil, fmt.Errorf("%w: line %d: column %q is empty", ErrInvalidInput, line, factors[k])
			}
		}
		if err := b.Add(levels, y); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
	}
	t, err := b.Table()
	if err != nil {
		return nil, fmt.Errorf("CSV has a header but no data rows: %w", err)
	}
	return t, nil
}

func isNA(s string) bool { return strings.TrimSpace(s) == "NA" }

func anyNA(rec []string, cols []int) bool {
	for _, i := range cols {
		if isNA(rec[i]) {
			return true
		}
	}
	return false
}
