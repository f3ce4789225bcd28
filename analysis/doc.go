// Package analysis is abmesh's statistics: the factorial analysis of one
// subset's cells, from sufficient statistics alone.
//
// A subset of k A/B tests is a full factorial design with one factor per
// test and one cell per combination of variants. Trace consumers count each
// request into its cell as CellStats (n, mean, M2, updated by Welford and
// merged by Chan's rule, so any number of consumers can add into the same
// cells); a CellTable holds the cells of one design. Everything else here
// is a plain function of a CellTable:
//
//   - Anova: the factorial ANOVA with every interaction, Types I, II and III
//     (sum-to-zero coding by default), matching R's anova() and
//     car::Anova(type = 2 | 3) with contr.sum. The weighted cell-means
//     regression has the same fit as the raw rows and its residual SS is
//     Σ M2, so no raw row is ever needed. Empty cells make terms
//     "not estimable" with a reason instead of failing.
//   - Estimate: cell means, least-squares (unweighted) marginal means, each
//     variant against its control (absolute with a t interval, relative
//     with Fieller's interval) and interaction contrasts of two-level
//     factors, all on the pooled within-cell variance.
//   - Power, NoncentralFCDF and the SampleSize… functions: power and sample
//     size from the noncentral F (the t test as F with one numerator df),
//     matching R's pwr package, and SampleSizeTerm for the per-cell n of one
//     term of a factorial design.
//   - AnytimeValid: anytime-valid p-values of every term and confidence
//     sequences of every effect and interaction contrast (Lindon et al.'s
//     sequential F- and t-tests; a robust z version for binary and ratio
//     metrics), valid whenever they are read; MixturePhi tunes the mixture
//     to the plan's horizon.
//   - SRM: the chi-square sample-ratio-mismatch check.
//   - WriteAnova, WriteEstimates and InteractionPlot: aligned text tables
//     and an SVG interaction plot for people.
//
// ReadCSV and RowBuilder build a CellTable from raw rows (the CLI and the
// tests share them). Factor levels keep their order, and the first level of
// each factor is its control.
//
// The results of Anova, Estimate and SRM never contain NaN: what cannot be
// computed (an empty cell, no
// residual degrees of freedom) is reported by flags and a Note string, with
// the numbers it concerns set to zero (and p-values to 1), so a careless
// comparison p < α is false and the structs encode as JSON. Errors wrap the
// sentinel errors ErrInvalidDesign, ErrInvalidInput, ErrNoData and
// ErrNoConvergence; test them with errors.Is.
//
// The reference numbers in testdata/ come from R (anova, car 3.1, pwr 1.3,
// sandwich) and mpmath; testdata/gen holds the scripts that made the ones
// not given to the project, and `make reference` reruns the R ones.
// testdata/unitlevel holds request-level data with repeated units and R's
// results on its unit-level rows for each per-unit aggregate (mean, sum,
// any, count) and on the ratio (gen/unitlevel.R).
package analysis
