package analysis

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

func warpbreaks(t testing.TB) *CellTable {
	_, tab := loadRef(t, "testdata/anova/warpbreaks.expected.json")
	return tab
}

func TestWriteAnova(t *testing.T) {
	tab := warpbreaks(t)
	a, err := Anova(tab, TypeIII)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteAnova(&b, a); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Type III ANOVA (contr.sum), N = 54",
		"Term  Df", "Pr(>F)",
		"(Intercept)", "wool:tension", "Residuals",
		"450.667",  // SS of wool
		"0.0582",   // p of wool
		"5745.11",  // residual SS
		"0.000693", // p of tension
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Aligned: every table line has the same width.
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")[1:]
	for _, l := range lines[1:] {
		if len([]rune(l)) != len([]rune(lines[0])) {
			t.Errorf("ragged table:\n%s", out)
			break
		}
	}

	// Not-estimable rows show "-" and their note.
	tab.Cells[0] = CellStats{}
	a, _ = Anova(tab, TypeIII)
	b.Reset()
	if err := WriteAnova(&b, a); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "1 empty cell") || !strings.Contains(out, "* wool: not estimable: cell wool=A,tension=L is empty") {
		t.Errorf("empty-cell table:\n%s", out)
	}

	// Write errors are returned.
	if err := WriteAnova(failWriter{}, a); err == nil {
		t.Error("no error from a failing writer")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteEstimates(t *testing.T) {
	e, err := Estimate(warpbreaks(t), 0.95)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteEstimates(&b, e); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Estimates (95% CI, residual df = 48",
		"Effects", "Factor   Variant  Control",
		"wool     B        A        -5.778  [-11.76, 0.209]   0.0582    -18.62%  [-34.89%, 0.75%]",
		"tension  M        L", "Rel CI",
		"Marginal means", "Cell means", "wool  tension  n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("estimates lack %q:\n%s", want, out)
		}
	}
	if err := WriteEstimates(io.Discard, e); err != nil {
		t.Error(err)
	}
	if err := WriteEstimates(failWriter{}, e); err == nil {
		t.Error("no error from a failing writer")
	}
}

func TestInteractionPlot(t *testing.T) {
	tab := warpbreaks(t)
	svg, err := InteractionPlot(tab, "tension", "wool", 0.95)
	if err != nil {
		t.Fatal(err)
	}
	// Well-formed XML with an <svg> root.
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var root string
	var texts []string
	paths := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG does not parse: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Local
			}
			if el.Name.Local == "path" {
				paths++
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(el)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	if root != "svg" {
		t.Errorf("root element %q", root)
	}
	all := strings.Join(texts, "|")
	for _, want := range []string{"wool=A", "wool=B", "L", "M", "H", "tension", "mean (95% CI)"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG text lacks %q: %s", want, all)
		}
	}
	// Two lines with 3 points, each with an error bar: many paths.
	if paths < 2*(1+3) {
		t.Errorf("only %d paths", paths)
	}

	// One line (no trace), an empty cell, and errors.
	tab.Cells[0] = CellStats{}
	if _, err := InteractionPlot(tab, "tension", "", 0.9); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct{ x, trace string }{{"nope", ""}, {"wool", "nope"}, {"wool", "wool"}} {
		if _, err := InteractionPlot(tab, tc.x, tc.trace, 0.95); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%v: err = %v", tc, err)
		}
	}
	if _, err := InteractionPlot(tab, "wool", "", 1.5); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("level 1.5: %v", err)
	}
}
