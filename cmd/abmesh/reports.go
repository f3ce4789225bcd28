package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/abmesh/abmesh/analysis"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
	"github.com/abmesh/abmesh/subset"
)

func subsetsCmd(fs *flag.FlagSet) body {
	out := outputFlag(fs, "table", "json", "dot")
	return func(ctx context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		resp, err := r.api.report.ListSubsets(ctx, &pb.ListSubsetsRequest{})
		if err != nil {
			return err
		}
		var subs []subset.Subset
		for _, s := range resp.GetSubsets() {
			subs = append(subs, protoconv.SubsetFromProto(s))
		}
		switch *out {
		case "json":
			return printJSON(r.stdout, resp)
		case "dot":
			sg, err := serviceGraph(ctx, r)
			if err != nil {
				return err
			}
			xs, err := r.api.experiment.ListExperiments(ctx, &pb.ListExperimentsRequest{})
			if err != nil {
				return err
			}
			var tests []subset.Test
			for _, x := range xs.GetExperiments() {
				if x.GetStatus() == pb.ExperimentStatus_EXPERIMENT_STATUS_RUNNING {
					tests = append(tests, subset.Test{ID: x.GetId(), ChangeService: x.GetChangeService(), MeasureService: x.GetMeasureService()})
				}
			}
			return subset.WriteDOT(r.stdout, sg, subs, tests)
		}
		if len(subs) == 0 {
			fmt.Fprintln(r.stdout, "no running test")
			return nil
		}
		return subset.WriteTable(r.stdout, subs)
	}
}

// serviceGraph fetches abmeshd's service graph for subset.WriteDOT.
func serviceGraph(ctx context.Context, r *request) (*subset.Graph, error) {
	g, err := r.api.report.GetServiceGraph(ctx, &pb.GetServiceGraphRequest{})
	if err != nil {
		return nil, err
	}
	return subset.NewGraph(protoconv.EdgesFromProto(g))
}

func cellsCmd(fs *flag.FlagSet) body {
	out := outputFlag(fs, "table", "json")
	return func(ctx context.Context, r *request) error {
		rep, err := fetchReport(ctx, r, 0, 0)
		if err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(r.stdout, &pb.Report{TestId: rep.GetTestId(), Factors: rep.GetFactors(), Cells: rep.GetCells(), Subset: rep.GetSubset(),
				Metric: rep.GetMetric(), Aggregate: rep.GetAggregate()})
		}
		fmt.Fprintf(r.stdout, "%s: window %d, metric %s (per unit: %s)\n", rep.GetTestId(), rep.GetSubset().GetWindow(), rep.GetMetric(), aggregateName(rep.GetAggregate()))
		return writeCells(r.stdout, rep)
	}
}

// fetchReport gets the report of the one test named on the command line.
func fetchReport(ctx context.Context, r *request, window, anovaType int) (*pb.Report, error) {
	if err := r.want(1, "exactly one test name"); err != nil {
		return nil, err
	}
	resp, err := r.api.report.GetReport(ctx, &pb.GetReportRequest{TestId: r.args[0], Window: int32(window), AnovaType: int32(anovaType)})
	return resp.GetReport(), err
}

// writeCells prints the cells: units (the unit of analysis), their
// counted requests, and the mean, SD and interval over the units.
func writeCells(w io.Writer, r *pb.Report) error {
	tw := table(w)
	fmt.Fprintf(tw, "%s\tUNITS\tREQUESTS\tMEAN\tSD\t95%% CI\n", strings.ToUpper(strings.Join(r.GetFactors(), "\t")))
	for _, c := range r.GetCells() {
		ci := "-"
		if c.GetN() > 0 && c.GetCiLow() != c.GetCiHigh() {
			ci = fmt.Sprintf("[%s, %s]", g4(c.GetCiLow()), g4(c.GetCiHigh()))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", strings.Join(c.GetVariants(), "\t"), c.GetN(), c.GetRequests(), g4(c.GetMean()), g4(c.GetSd()), ci)
	}
	return tw.Flush()
}

func g4(x float64) string { return fmt.Sprintf("%.4g", x) }

func pv(p float64) string {
	if p < 1e-4 {
		return "<0.0001"
	}
	return fmt.Sprintf("%.4f", p)
}

func reportCmd(fs *flag.FlagSet) body {
	out := outputFlag(fs, "table", "json")
	window := fs.Int("window", 0, "analysis window number (0: the current one)")
	typ := fs.Int("type", 3, "ANOVA sums of squares type: 1, 2 or 3")
	return func(ctx context.Context, r *request) error {
		rep, err := fetchReport(ctx, r, *window, *typ)
		if err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(r.stdout, rep)
		}
		return writeReport(r.stdout, rep)
	}
}

// writeReport prints a report as tables people read in a terminal.
func writeReport(w io.Writer, r *pb.Report) error {
	writeReportHead(w, r)
	writeSubset(w, r)
	fmt.Fprintln(w, "\nCELLS (n counts units)")
	writeCells(w, r)
	writeAnytime(w, r)
	writeEffects(w, r)
	writeAnova(w, r)
	writeSampleRatio(w, r)
	writeJointSampleRatio(w, r.GetJointSampleRatio())
	fmt.Fprintln(w, "\nDATA QUALITY (requests)")
	var parts []string
	for _, c := range r.GetDataQuality() {
		if c.GetValue() != 0 || c.GetName() == "seen" || c.GetName() == "counted" {
			parts = append(parts, fmt.Sprintf("%s=%d", c.GetName(), c.GetValue()))
		}
	}
	_, err := fmt.Fprintln(w, strings.Join(parts, "  "))
	return err
}

// writeReportHead prints the title line (with the metric's per-unit
// aggregate), the progress in units, the SRM warning and the notes.
func writeReportHead(w io.Writer, r *pb.Report) {
	p := r.GetProgress()
	status := strings.TrimPrefix(r.GetStatus().String(), "REPORT_STATUS_")
	fmt.Fprintf(w, "REPORT %s  [%s]  metric %s (per unit: %s)  window %d\n", r.GetTestId(), status, r.GetMetric(),
		aggregateName(r.GetAggregate()), r.GetSubset().GetWindow())
	eta := "unknown"
	if p.GetEtaSeconds() >= 0 {
		eta = fmt.Sprintf("%.0fs", p.GetEtaSeconds())
	}
	fmt.Fprintf(w, "progress %.1f%%: %d/%d cells have ≥ %d units (smallest cell %d units), ETA %s\n",
		100*p.GetFraction(), p.GetCellsReady(), p.GetCellsTotal(), p.GetNeededPerCell(), p.GetMinCellN(), eta)
	if needs := p.GetNeeds(); len(needs) > 1 {
		var parts []string
		for _, n := range needs {
			parts = append(parts, fmt.Sprintf("%s (MDE %s) %d", n.GetTerm(), g4(n.GetMde()), n.GetNeededPerCell()))
		}
		fmt.Fprintf(w, "units per cell needed by term: %s\n", strings.Join(parts, ", "))
	}
	if l := r.GetStatusLine(); l != "" {
		fmt.Fprintln(w, "status:", l)
	}
	if r.GetSampleRatioMismatch() {
		fmt.Fprintln(w, "WARNING: sample ratio mismatch (p < 0.001): check assignment before reading the estimates")
	}
	for _, n := range r.GetNotes() {
		fmt.Fprintln(w, "note:", n)
	}
}

// writeSubset prints the subset's members and why each is there.
func writeSubset(w io.Writer, r *pb.Report) {
	fmt.Fprintln(w, "\nSUBSET (viewpoint first)")
	tw := table(w)
	fmt.Fprintln(tw, "TEST\tWHY")
	for i, m := range r.GetSubset().GetMembers() {
		why := "viewpoint"
		if i > 0 {
			var parts []string
			for _, rs := range m.GetReasons() {
				parts = append(parts, fmt.Sprintf("emits %s over %s; viewpoint susceptible over %s; shared %s",
					rs.GetKind(), rs.GetMemberScope(), rs.GetViewpointScope(), strings.Join(rs.GetSharedServices(), ",")))
			}
			why = strings.Join(parts, " | ")
		}
		test := m.GetTestId()
		if l := m.GetLayer(); l != "" {
			test += " (layer " + l + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\n", test, why)
	}
	for _, m := range r.GetSubset().GetNotModelled() {
		fmt.Fprintf(tw, "%s\tinterference not modelled (subset cap)\n", m.GetTestId())
	}
	tw.Flush()
}

// writeEffects prints the main effects and the interaction contrasts.
func writeEffects(w io.Writer, r *pb.Report) {
	if len(r.GetEstimates()) > 0 {
		fmt.Fprintf(w, "\nEFFECTS (fixed horizon%s: variant vs. control, marginal means, 95%% CI%s)\n", fixedHorizon(r), testSuffix(r.GetEstimateTest()))
		tw := table(w)
		fmt.Fprintln(tw, "TEST\tVARIANT\tCONTROL\tVARIANT MEAN\tDIFF\t95% CI\tRELATIVE\tp")
		for _, x := range r.GetEstimates() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t[%s, %s]\t%+.1f%%\t%s\n", x.GetTestId(), x.GetVariant(), g4(x.GetControlMean()),
				g4(x.GetVariantMean()), g4(x.GetDifference()), g4(x.GetCiLow()), g4(x.GetCiHigh()), 100*x.GetRelative(), pv(x.GetP()))
		}
		tw.Flush()
	}
	if len(r.GetInteractions()) > 0 {
		fmt.Fprintf(w, "\nINTERACTIONS (fixed horizon%s: difference of differences, 95%% CI%s)\n", fixedHorizon(r), testSuffix(r.GetEstimateTest()))
		tw := table(w)
		fmt.Fprintln(tw, "TERM\tESTIMATE\t95% CI\tp")
		for _, x := range r.GetInteractions() {
			fmt.Fprintf(tw, "%s\t%s\t[%s, %s]\t%s\n", x.GetTerm(), g4(x.GetEstimate()), g4(x.GetCiLow()), g4(x.GetCiHigh()), pv(x.GetP()))
		}
		tw.Flush()
	}
}

// fixedHorizon marks the fixed-horizon results: valid only when read at
// the planned sample size.
func fixedHorizon(r *pb.Report) string {
	if r.GetFixedHorizonReached() {
		return ", planned sample size reached"
	}
	if n := r.GetProgress().GetNeededPerCell(); n > 0 {
		return fmt.Sprintf(", valid only at the planned sample size of %d units per cell", n)
	}
	return ", valid only at the planned sample size"
}

// writeAnytime prints the anytime-valid results (valid whenever read):
// the stopping rule's verdict on each planned term, every term's test and
// every effect's and interaction's confidence sequence.
func writeAnytime(w io.Writer, r *pb.Report) {
	a := r.GetAnytime()
	if a == nil {
		return
	}
	level := 100 * (1 - a.GetAlpha())
	fmt.Fprintf(w, "\nANYTIME-VALID (valid whenever read; %s, φ₀ = %s units per cell)\n", a.GetMethod(), g4(a.GetPhi()))
	if d := r.GetDecision(); len(d.GetTerms()) > 0 {
		tw := table(w)
		fmt.Fprintln(tw, "PLANNED TERM\tMDE\tp (anytime)\tVERDICT\tNOTE")
		for _, t := range d.GetTerms() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.GetTerm(), g4(t.GetMde()), pv(t.GetP()), t.GetVerdict(), t.GetNote())
		}
		tw.Flush()
	}
	tw := table(w)
	fmt.Fprintf(tw, "EFFECT\tESTIMATE\t%.0f%% CONFIDENCE SEQUENCE\tp (anytime)\n", level)
	seqs := append(append([]*pb.ConfidenceSequence(nil), a.GetEffects()...), a.GetInteractions()...)
	for _, e := range seqs {
		name := e.GetTerm()
		if name == "" {
			name = e.GetTestId() + "=" + e.GetVariant()
		}
		cs := "unbounded yet"
		if e.GetBounded() {
			cs = fmt.Sprintf("[%s, %s]", g4(e.GetCsLow()), g4(e.GetCsHigh()))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, g4(e.GetEstimate()), cs, pv(e.GetP()))
	}
	for _, t := range a.GetTerms() {
		if t.GetTested() {
			fmt.Fprintf(tw, "term %s (%d df)\t\t\t%s\n", t.GetTerm(), t.GetDf(), pv(t.GetP()))
		} else {
			fmt.Fprintf(tw, "term %s\t\t%s\t\n", t.GetTerm(), t.GetNote())
		}
	}
	tw.Flush()
}

// writeAnova prints the ANOVA table: F tests, or for a ratio metric the
// Wald chi-square tests on delta-method variances.
func writeAnova(w io.Writer, r *pb.Report) {
	a := r.GetAnova()
	if a == nil {
		return
	}
	if a.GetTest() == analysis.TestWald {
		fmt.Fprintf(w, "\nANOVA (fixed horizon%s; Type %d, %s tests)\n", fixedHorizon(r), a.GetType(), a.GetTest())
		tw := table(w)
		fmt.Fprintln(tw, "TERM\tDF\tχ²\tp")
		for _, t := range a.GetTerms() {
			if !t.GetEstimable() {
				fmt.Fprintf(tw, "%s\t-\t-\t%s\n", t.GetTerm(), t.GetReason())
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", t.GetTerm(), t.GetDf(), g4(t.GetChiSquare()), pv(t.GetP()))
		}
		tw.Flush()
		return
	}
	fmt.Fprintf(w, "\nANOVA (fixed horizon%s; Type %d sums of squares)\n", fixedHorizon(r), a.GetType())
	tw := table(w)
	fmt.Fprintln(tw, "TERM\tDF\tSS\tMS\tF\tp\tPARTIAL η²")
	for _, t := range a.GetTerms() {
		if !t.GetEstimable() {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t%s\n", t.GetTerm(), t.GetReason())
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%.4f\n", t.GetTerm(), t.GetDf(), g4(t.GetSs()), g4(t.GetMs()), g4(t.GetF()), pv(t.GetP()), t.GetPartialEta2())
	}
	fmt.Fprintf(tw, "Residuals\t%d\t%s\t\t\t\t\n", a.GetResidualDf(), g4(a.GetResidualSs()))
	tw.Flush()
}

// writeSampleRatio prints each test's check on units, with its requests
// per variant beside it as a diagnostic.
func writeSampleRatio(w io.Writer, r *pb.Report) {
	fmt.Fprintln(w, "\nSAMPLE RATIO (chi-square of distinct units per variant against the weights; requests are a diagnostic, not the flag)")
	tw := table(w)
	fmt.Fprintln(tw, "TEST\tUNITS\tEXPECTED\tχ²\tp\tFLAG\tREQUESTS")
	for _, s := range r.GetSampleRatio() {
		fmt.Fprintf(tw, "%s\t%v\t%s\t%.3f\t%s\t%s\t%v\n", s.GetTestId(), s.GetObserved(), expectedString(s.GetExpected()),
			s.GetChiSquare(), pv(s.GetP()), flagWord(s.GetMismatch()), s.GetRequests())
	}
	tw.Flush()
}

// writeJointSampleRatio prints the check over the subset's cells; nothing
// when the subset is the viewpoint alone.
func writeJointSampleRatio(w io.Writer, j *pb.JointSampleRatioCheck) {
	if j == nil {
		return
	}
	fmt.Fprintln(w, "\nSAMPLE RATIO OF THE CELLS (units per cell against the product of the tests' shares)")
	if j.GetNote() != "" {
		fmt.Fprintln(w, "not run:", j.GetNote())
		return
	}
	tw := table(w)
	fmt.Fprintln(tw, "CELL\tUNITS\tEXPECTED\tREQUESTS")
	for _, c := range j.GetCells() {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\n", strings.Join(c.GetVariants(), " × "), c.GetObserved(), c.GetExpected(), c.GetRequests())
	}
	tw.Flush()
	fmt.Fprintf(w, "χ² = %.3f, df = %d, p = %s: %s\n", j.GetChiSquare(), j.GetDf(), pv(j.GetP()), flagWord(j.GetMismatch()))
}

// testSuffix names the estimates' test when it is not the usual t.
func testSuffix(test string) string {
	if test == "" || test == analysis.TestT {
		return ""
	}
	return ", " + test
}

func expectedString(xs []float64) string {
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%.0f", x))
	}
	return strings.Join(parts, " ")
}

func flagWord(mismatch bool) string {
	if mismatch {
		return "MISMATCH"
	}
	return "ok"
}

func graphCmd(fs *flag.FlagSet) body {
	out := outputFlag(fs, "table", "json", "dot")
	return func(ctx context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		if *out == "dot" {
			sg, err := serviceGraph(ctx, r)
			if err != nil {
				return err
			}
			return subset.WriteDOT(r.stdout, sg, nil, nil)
		}
		g, err := r.api.report.GetServiceGraph(ctx, &pb.GetServiceGraphRequest{})
		if err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(r.stdout, g)
		}
		tw := table(r.stdout)
		fmt.Fprintln(tw, "CALLER\tCALLEE\tCALLS")
		for _, x := range g.GetEdges() {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", x.GetCaller(), x.GetCallee(), x.GetCalls())
		}
		if len(g.GetEdges()) == 0 {
			fmt.Fprintln(tw, "(no calls seen yet)")
		}
		return tw.Flush()
	}
}

func statusCmd(fs *flag.FlagSet) body {
	out := outputFlag(fs, "table", "json")
	return func(ctx context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		s, err := r.api.report.GetStatus(ctx, &pb.GetStatusRequest{})
		if err != nil {
			return err
		}
		if *out == "json" {
			return printJSON(r.stdout, s)
		}
		tw := table(r.stdout)
		fmt.Fprintf(tw, "config_version\t%d\n", s.GetConfigVersion())
		for _, x := range s.GetCounters() {
			fmt.Fprintf(tw, "%s\t%d\n", x.GetName(), x.GetValue())
		}
		return tw.Flush()
	}
}
