package sim

// headline is the headline's line on the monitoring scenario.
func (r *MonitoringResult) headline() string {
	d := r.Decision
	return "- **Monitoring** (a 2×2×2 A/A subset read after every 1% of its planned horizon, " + count(float64(r.Reps)) + " replications): " +
		"the fixed-horizon p-values reject at some look for " + pct1(r.Main.FixedAnyLook) + " of main-effect terms and " + pct1(r.Interactions.FixedAnyLook) +
		" of interaction terms (" + pct1(r.Main.FixedHorizon) + " and " + pct1(r.Interactions.FixedHorizon) + " read at the horizon only); " +
		"the anytime-valid p-values in " + pct1(r.Main.AnytimeAnyLook) + " and " + pct1(r.Interactions.AnytimeAnyLook) +
		"; the confidence sequences cover the truth at every look in " + pct1(r.Main.Coverage) + " and " + pct1(r.Interactions.Coverage) +
		". With an effect of the planned size the report is DECIDED at a median of " + count(d.Units.P50) + " units against the fixed horizon's " +
		count(float64(r.Horizon)) + " (" + count(r.DecisionInteraction.Units.P50) + " when a null interaction is planned too and must be shown futile)."
}

// writeMonitoring writes the monitoring section.
func writeMonitoring(p func(string, ...any), r *MonitoringResult) {
	p("## Scenario: monitoring (reading the report while it collects)\n\n")
	p("A viewpoint `a` and two more tests `b`, `c` in its subset: 8 cells, units randomized uniformly to them, each with a Normal outcome (SD %s) "+
		"around its cell's mean. The plan: MDE %s, α %s, power %s for `a`'s main effect, so the fixed horizon is %s units per cell (%s in the subset) "+
		"and the anytime-valid mixture φ₀ = %s units per cell (`report.AnytimeOptions`, as the report sets it). "+
		"After every %s units (1%% of the horizon) the report's analyses are read: the Type III ANOVA (fixed horizon) and `analysis.AnytimeValid` "+
		"(sequential F per term, confidence sequence per contrast). Seed %d.",
		plain(r.Plan.SD), plain(r.Plan.MDE), plain(r.Plan.Alpha), pct(r.Plan.Power), count(float64(r.HorizonPerCell)), count(float64(r.Horizon)),
		num(r.Phi), count(float64(r.Horizon)/float64(r.Looks)), r.Seed)
	if r.Command != "" {
		p(" Reproduce this section alone with `%s` (%s).", r.Command, roundDuration(r.Runtime))
	}
	p("\n\n### A/A: %s replications, %d looks each\n\n", count(float64(r.Reps)), r.Looks)
	p("Rates per term (and per contrast for coverage), averaged over the 3 main-effect and the 4 interaction terms; ± is the Monte-Carlo standard error of a rate of α.\n\n")
	p("| terms | fixed-horizon p < α at some look | fixed-horizon p < α at the horizon only | anytime-valid p ≤ α at some look | sequence covers the truth at every look |\n")
	p("| --- | ---: | ---: | ---: | ---: |\n")
	for _, row := range []struct {
		name string
		t    TermRates
	}{{"main effects (3)", r.Main}, {"interactions (4)", r.Interactions}} {
		p("| %s | %s | %s | %s ± %s | %s |\n", row.name, pct1(row.t.FixedAnyLook), pct1(row.t.FixedHorizon), pct1(row.t.AnytimeAnyLook),
			pct1(row.t.MCError), pct1(row.t.Coverage))
	}
	p("\nSome of the 7 terms rejects at some look: fixed horizon %s, anytime-valid %s (each term is valid on its own; the family is not corrected, as in the fixed-horizon table).\n\n",
		pct1(r.AnyTermFixed), pct1(r.AnyTermAnytime))
	d, di := r.Decision, r.DecisionInteraction
	p("### A real effect of the planned size: units to DECIDED\n\n")
	p("`a`'s main effect is the MDE (%s), everything else 0; %s replications read at the same spacing for up to %d horizons, stopped at the first "+
		"look where the report's rule (`report.Decide`) decides: each planned term anytime-valid significant, or its sequence within ± its MDE. "+
		"Two plans on the same traffic: `a`'s main effect only; and also the interaction `a:b` with an MDE of %s (a difference of differences, "+
		"the same per-cell need), which is 0 in truth, so the rule must find it futile.\n\n",
		plain(d.Effect), count(float64(r.DecisionReps)), d.MaxHorizons, plain(di.InteractionMDE))
	p("| planned terms | fixed horizon (units) | `a`'s fixed-horizon power there | DECIDED within %d horizons | `a` significant | `a:b` futile | DECIDED by the horizon | units to DECIDED: median [5%%, 95%%] | mean |\n", d.MaxHorizons)
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range []struct {
		name string
		d    MonitoringDecision
	}{{"`a`", d}, {"`a`, `a:b`", di}} {
		futile := "–"
		if row.d.InteractionMDE > 0 {
			futile = pct1(row.d.Futile)
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %s [%s, %s] | %s |\n", row.name, count(float64(row.d.Horizon)), pct1(row.d.FixedPower), pct1(row.d.Decided),
			pct1(row.d.Significant), futile, pct1(row.d.ByHorizon), count(row.d.Units.P50), count(row.d.Units.P5), count(row.d.Units.P95), count(row.d.Units.Mean))
	}
	p("\nThe price of reading at will: the fixed-horizon test may be read once, at %s units; the anytime-valid rule may be read at every look and "+
		"stops at a median of %s units (%s of the horizon) for the main effect alone, %s (%s) when the null interaction must also be shown futile. "+
		"Replications not decided count at %d horizons.\n\n",
		count(float64(r.Horizon)), count(d.Units.P50), pct(d.Units.P50/float64(d.Horizon)), count(di.Units.P50), pct(di.Units.P50/float64(di.Horizon)), d.MaxHorizons)
}
