package sim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// pct1 formats a rate as a percentage with one decimal ("94.9%").
func pct1(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }

// plain formats a parameter as given ("5", "0.3").
func plain(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

// repeatHeadline is the headline's line on repeat traffic.
func (r *RepeatResult) headline() string {
	lo, hi := 1.0, 0.0
	var req []string
	for _, a := range r.Coverage {
		lo, hi = min(lo, a.Unit.All), max(hi, a.Unit.All)
		if a.Request != nil {
			req = append(req, fmt.Sprintf("%s for %s", pct1(a.Request.All), a.Aggregate))
		}
	}
	d := r.Decision
	return fmt.Sprintf("- **Repeat traffic** (%s requests per unit, within-unit correlation %s; the unit is the unit of analysis): "+
		"counting units, the sample-ratio check flags a true 50/50 split in %s of windows (counting requests: %s; the report's flag over a subset of %d: %s); "+
		"the %s intervals of every aggregate cover the truth in %s–%s of windows (one row per request: %s); "+
		"COMPLETE comes at %s units with %s power (counting requests: %s units, %s power against a plan of %s).",
		plain(r.Requests), plain(r.ICC), pct1(r.SRM.Null.UnitRate), pct1(r.SRM.Null.RequestRate), r.SRM.SubsetTests, pct1(r.SRM.Null.SubsetRate),
		pct(r.Level), pct1(lo), pct1(hi), strings.Join(req, ", "),
		count(d.Unit.Units.Mean), pct(d.Unit.UnitPower), count(d.Request.Units.Mean), pct(d.Request.UnitPower), pct(d.Power))
}

// writeRepeat writes the repeat-traffic section.
func writeRepeat(p func(string, ...any), r *RepeatResult) {
	p("## Scenario: repeat traffic (the unit is the unit of analysis)\n\n")
	p("Units make several requests, and a unit's requests are alike; the hash randomizes units. The same simulated traffic is " +
		"analysed one row per request (as abmesh did before per-unit analysis) and one row per unit, the unit's requests aggregated " +
		"by the test's `metric.aggregate` (`mean`, `sum`, `any`, `count`, `ratio`). ")
	p("Units make geometric numbers of requests (`truth.Repeat`) with mean %s at control; each request's value shares a unit draw "+
		"with correlation ρ = %s. Truth: %s. Intervals are %s; seed %d.", plain(r.Requests), plain(r.ICC), r.Truth, pct(r.Level), r.Seed)
	if r.Command != "" {
		p(" Reproduce this section alone with `%s` (%s).", r.Command, roundDuration(r.Runtime))
	}
	p("\n\n")
	writeRepeatSRM(p, r.SRM, r.Requests)
	writeRepeatCoverage(p, r)
	writeRepeatDecision(p, r.Decision)
}

func writeRepeatSRM(p func(string, ...any), s SRMResult, m float64) {
	p("### Sample-ratio check: distinct units, not requests\n\n")
	p("In every window units `u1`, `u2`, … are split by the real hash (`assign.Hash`, a salt per window and test) and each makes geometric requests; "+
		"`analysis.SRM` tests the viewpoint's units per arm and requests per arm against 50/50 at p < %s; windows with a true split have two more members. "+
		"*Theory*: the 1-df chi-square's rate, with noncentrality 4n(share − ½)² for units; for requests the statistic is E[N²]/E[N] = 2m − 1 = %s times larger.\n\n",
		plain(s.Threshold), plain(2*m-1))
	p("| true split | units per window | windows | flagged, units (theory) | flagged, requests (theory) | report's flag, subset of %d (theory) |\n", s.SubsetTests)
	p("| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range append([]SRMRates{s.Null}, s.Imbalance...) {
		sub := "—"
		if r.SubsetTheory > 0 {
			sub = fmt.Sprintf("%s (%s)", pct1(r.SubsetRate), pct1(r.SubsetTheory))
		}
		p("| %s/%s | %s | %s | %s (%s) | %s (%s) | %s |\n", plain(100*r.Share), plain(100-100*r.Share), count(float64(r.Units)), count(float64(r.Windows)),
			pct1(r.UnitRate), pct1(r.UnitTheory), pct1(r.RequestRate), pct1(r.RequestTheory), sub)
	}
	p("\nThe report flags a window when any member's check on units or the joint check on the units per cell flags (`report.SRMFlagged`): "+
		"for a subset of %d tests that is %d checks, each at p < %s / %d (Bonferroni), so the report's flag fires on at most %s%% of correct splits, as one check does.\n\n",
		s.SubsetTests, s.SubsetTests+1, plain(s.Threshold), s.SubsetTests+1, plain(100*s.Threshold))
	if len(s.Imbalance) > 0 {
		r := s.Imbalance[0]
		d := math.Abs(r.Share - 0.5)
		// 95% detection: √λ = c + z(0.95) (the other tail is negligible), λ = 4n·d².
		c := -math.Sqrt2 * math.Erfinv(s.Threshold-1)
		n95 := math.Pow((c+1.6448536269514722)/(2*d), 2)
		p("An imbalance of %s/%s at %s units has noncentrality λ = 4n·(share − ½)² = %s: the unit-level check detects it in %s of windows (theory %s). "+
			"It reaches 95%% at about %s units. Counting requests detects more only because it also flags correct splits.\n\n",
			plain(100*r.Share), plain(100-100*r.Share), count(float64(r.Units)), num(4*float64(r.Units)*d*d), pct1(r.UnitRate), pct1(r.UnitTheory), count(math.Round(n95/1000)*1000))
	}
}

func writeRepeatCoverage(p func(string, ...any), r *RepeatResult) {
	if len(r.Coverage) == 0 {
		return
	}
	p("### Coverage of the %s intervals, per aggregate\n\n", pct(r.Level))
	p("Each window has %s units in uniformly random cells of a 2×2 (tests a, b) or a 2×2×2 (a, b, c) design; `analysis.Estimate` on the unit-level cell table gives every main effect and interaction contrast, "+
		"judged against the aggregate's true value (`truth.Repeat.Factorial`: the unit mean's effect for `mean`, scaled by the expected requests for `sum` and `count`, "+
		"the probability of a non-zero request for `any`, the request-level mean for `ratio`). "+
		"Pooled over both designs, each window gives 5 main-effect and 5 interaction intervals per aggregate.\n\n", count(float64(r.Units)))
	p("| aggregate | metric | windows | unit level: main effects | interactions | all | one row per request: all |\n")
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, a := range r.Coverage {
		req := "—"
		if a.Request != nil {
			req = pct1(a.Request.All)
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", a.Aggregate, a.Metric, count(float64(a.Windows)),
			pct1(a.Unit.Main), pct1(a.Unit.Interaction), pct1(a.Unit.All), req)
	}
	p("\nPer quantity, unit level (truth; coverage):\n\n")
	p("| design | quantity |")
	for _, a := range r.Coverage {
		p(" %s |", a.Aggregate)
	}
	p("\n| --- | --- |%s\n", strings.Repeat(" ---: |", len(r.Coverage)))
	for qi, q := range r.Coverage[0].Quantities {
		p("| %s | %s |", q.Design, q.Name)
		for _, a := range r.Coverage {
			e := a.Quantities[qi]
			p(" %s; %s |", signed(e.Truth), pct1(e.Unit.Coverage))
		}
		p("\n")
	}
	de := 1 + (2*r.Requests-2)*r.ICC
	p("\nOne row per request (`—` where it estimates another quantity): with ρ = %s and geometric requests the design effect is "+
		"1 + (E[N²]/E[N] − 1)·ρ = %s, so its intervals are about √%s = %s times too narrow.\n\n", plain(r.ICC), num(de), num(de), num(math.Sqrt(de)))
}

func writeRepeatDecision(p func(string, ...any), d DecisionResult) {
	p("### Units to decision: the power plan counts units\n\n")
	p("The report service's rule: COMPLETE when every cell of the viewpoint's %s design reaches `analysis.SampleSizeTerm(1, cells, mde, sd, α, power)` "+
		"(the plan's SD %s until 30 residual df, the observed pooled SD after), for viewpoint %s with mde %s = its true main effect, "+
		"α %s, power %s (`mean` aggregate, %d windows of units streaming in). Counting requests, cells fill about m times faster than with units and the SD is the requests'; "+
		"counting units, the SD is that of the unit means.\n\n",
		d.Design, plain(d.PlanSD), d.Test, num(d.MDE), plain(d.Alpha), pct(d.Power), d.Windows)
	p("| cells count | units to COMPLETE: mean [5%%, 95%%] | emptiest cell at COMPLETE | its own analysis: p < α | its own coverage | unit-level power at COMPLETE |\n")
	p("| --- | --- | ---: | ---: | ---: | ---: |\n")
	for _, row := range []struct {
		name string
		s    DecisionStats
	}{{"requests (before)", d.Request}, {"units (now)", d.Unit}} {
		s := row.s
		p("| %s | %s [%s, %s] | %s | %s | %s | %s |\n", row.name, count(s.Units.Mean), count(s.Units.P5), count(s.Units.P95),
			count(s.PerCell), pct1(s.Rejected), pct1(s.Coverage), pct1(s.UnitPower))
	}
	p("\nCounting requests, COMPLETE arrives with %s of the units the plan needs; the request-level analysis then claims %s power, "+
		"but the unit-level truth is %s.\n\n", pct(d.Request.Units.Mean/d.Unit.Units.Mean), pct(d.Request.Rejected), pct(d.Request.UnitPower))
}
