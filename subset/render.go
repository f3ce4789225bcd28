package subset

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// palette are the fill colours given to subsets in turn (ColorBrewer
// Set3), cycling when there are more subsets.
var palette = []string{
	"#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462",
	"#b3de69", "#fccde5", "#d9d9d9", "#bc80bd", "#ccebc5", "#ffed6f",
}

// WriteDOT writes the service graph in Graphviz DOT: every service a
// node, every edge labelled with its call count, and each subset given a
// colour, in the order of subsets, that fills (in stripes, when subsets
// overlap) the nodes of its Services; a legend cluster names each subset's
// factors (Subset.FactorLabels). Services of subsets that are not in g
// are drawn dashed. tests, when not nil, annotate each node with the tests
// changed ("Δ") and measured ("◎") there. A nil g is the empty graph. It returns the first
// write error.
func WriteDOT(w io.Writer, g *Graph, subsets []Subset, tests []Test) error {
	if g == nil {
		g = emptyGraph
	}
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }

	colours := map[string][]string{}
	var extra []string
	for i, s := range subsets {
		c := palette[i%len(palette)]
		for _, svc := range s.Services {
			if len(colours[svc]) == 0 && !g.Has(svc) {
				extra = append(extra, svc)
			}
			colours[svc] = append(colours[svc], c)
		}
	}
	slices.Sort(extra)
	notes := map[string][]string{}
	for _, t := range tests {
		notes[t.ChangeService] = append(notes[t.ChangeService], "Δ "+t.ID)
		notes[t.MeasureService] = append(notes[t.MeasureService], "◎ "+t.ID)
	}

	p("digraph services {\n")
	p("\trankdir=LR;\n")
	p("\tnode [shape=box, style=filled, fillcolor=white, fontname=\"Helvetica\"];\n")
	p("\tedge [color=\"#666666\", fontname=\"Helvetica\", fontsize=10];\n")
	if len(subsets) > 0 {
		p("\tsubgraph cluster_legend {\n\t\tlabel=\"subsets\";\n\t\tfontname=\"Helvetica\";\n")
		for i, s := range subsets {
			label := s.Viewpoint + ": " + strings.Join(s.FactorLabels(), ", ")
			if n := len(s.NotModelled); n > 0 {
				label += fmt.Sprintf(" (+%d not modelled)", n)
			}
			p("\t\t%s [label=%s, fillcolor=%s];\n", dotID("subset:"+s.Viewpoint), dotID(label), dotID(palette[i%len(palette)]))
		}
		p("\t}\n")
	}
	node := func(svc string, dashed bool) {
		label := svc
		if n := notes[svc]; len(n) > 0 {
			label += "\n" + strings.Join(n, "\n")
		}
		var attrs []string
		attrs = append(attrs, "label="+dotID(label))
		style := "filled"
		if c := colours[svc]; len(c) > 0 {
			if len(c) > 1 {
				style = "striped"
			}
			attrs = append(attrs, "fillcolor="+dotID(strings.Join(c, ":")))
		}
		if dashed {
			style += ",dashed"
		}
		attrs = append(attrs, "style="+dotID(style))
		p("\t%s [%s];\n", dotID(svc), strings.Join(attrs, ", "))
	}
	for _, svc := range g.names {
		node(svc, false)
	}
	for _, svc := range extra {
		node(svc, true)
	}
	for _, e := range g.edges {
		p("\t%s -> %s [label=%s];\n", dotID(e.Caller), dotID(e.Callee), dotID(strconv.FormatUint(e.Calls, 10)))
	}
	p("}\n")
	return bw.Flush()
}

// dotID quotes s as a DOT string; "\n" becomes a centred line break.
func dotID(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// maxShared is how many shared services a table row lists.
const maxShared = 6

// WriteTable writes subsets as an aligned text table for people: one row
// per (member, reason), the viewpoint first with role "viewpoint", then
// the members ("member", or "layer L" for the tests of layer L that are
// one factor) and the tests left out by the cap ("not modelled"), with each reason's kind, scopes, shared services (at most
// six, then "+N") and the member's call volume. It returns the first write
// error.
func WriteTable(w io.Writer, subsets []Subset) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VIEWPOINT\tTEST\tROLE\tKIND\tEMITS OVER\tSUSCEPTIBLE OVER\tSHARED\tVOLUME")
	row := func(vp string, m Member, role string) {
		if len(m.Reasons) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t-\t-\n", vp, m.Test, role)
			return
		}
		for i, r := range m.Reasons {
			vol := ""
			if i == 0 {
				vol = strconv.FormatInt(m.Volume, 10)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", vp, m.Test, role, r.Kind, r.EmitScope, r.SusceptibleScope, sharedList(r.Shared), vol)
		}
	}
	for _, s := range subsets {
		for i, m := range s.Members {
			role := "member"
			switch {
			case i == 0:
				role = "viewpoint"
			case m.Layer != "":
				role = "layer " + m.Layer
			}
			row(s.Viewpoint, m, role)
		}
		for _, m := range s.NotModelled {
			row(s.Viewpoint, m, "not modelled")
		}
	}
	return tw.Flush()
}

func sharedList(s []string) string {
	if len(s) <= maxShared {
		return strings.Join(s, ",")
	}
	return strings.Join(s[:maxShared], ",") + fmt.Sprintf(",+%d", len(s)-maxShared)
}
