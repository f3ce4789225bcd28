// Package sim is abmesh's simulator with ground truth: simulated systems
// whose effects are known, on which the method and its alternatives are
// run and judged (abmesh evaluate, docs/evaluation.md).
//
// # Scenarios and truth
//
// A Scenario is a service graph, the A/B tests running on it as assign
// registers them — with their interference attributes, layers, targeting
// and plans — the distribution of the units' attributes, and one
// truth.Model per metric the tests measure. Shop is the shop of
// internal/tool/shop (its manifests, graph, users and truth, the same ones
// `abmesh demo` runs as a real mesh), with a real interaction between
// rec-model and ui-layout; Large places 12 tests on a 30-service
// RandomGraph so that the subset rule gives subsets of 2–3 with
// interactions inside and leaves the rest alone.
//
// A truth.Model is the outcome model of one metric (Normal or Bernoulli)
// in treatment coding:
//
//	mean = Baseline + Σ_terms Effect · Π_i 1{served(Tests[i]) = Variants[i]}
//	value = mean + SD·z            (Normal, z standard normal)
//	value = 1{Φ(z) < mean}         (Bernoulli)
//
// Evaluate and CheckHashing refuse a scenario whose truth breaks the
// method's assumption: interactions lie inside subsets (for every
// interaction term on a metric, the term's tests are all in the subset of
// every one of them that measures the metric), so the truth never has an
// interaction that the subset rule misses. Effects of tests on metrics
// outside their subsets are main effects only.
//
// # Estimands
//
// With two variants per test and sum-to-zero coding, the main effect of T
// is the Type III main effect: treatment minus control of the unweighted
// marginal means, i.e. T's simple effects averaged with equal weight over
// the levels of the other factors. In the truth above that is
//
//	Δ_T = a_T + ½·Σ_U b_TU + ¼·Σ_{U,V} c_TUV
//
// for main effects a, pairwise terms b and 3-way terms c. Because
// interactions lie inside subsets, Δ_T is the same whether it is computed
// over T's subset or over every test, and with 50/50 splits it is also
// what a two-sample comparison on orthogonal traffic estimates. A simple
// effect fixes one interacting test at one variant ("the effect of T if U
// ships"); an interaction is analysis.Contrast's difference of differences.
// Every true value is the same contrast applied to the true cell means.
//
// # Strategies
//
// Evaluate runs four strategies on the same simulated traffic: units
// "s<seed>-r<rep>-user-<i>", assigned by the real assign.Engine, with one
// noise draw per unit and metric from a per-replication PCG stream (seeded
// from the seed and the replication through SplitMix64), fed to
// every strategy until its own stop rule is met:
//
//	OneAtATime     each test alone, others at control; two-sample; Σ units
//	Orthogonal     all at once, each analysed alone; two-sample; max units
//	FullFactorial  one factorial over all tests, per-cell stop rule (2^N cells)
//	Subsets        abmesh: per-viewpoint 2^k factorials, per-cell stop rule
//
// Two-sample n per arm is analysis.SampleSizeTTest; the factorials' per-cell
// n is analysis.SampleSizeTerm for the main effect, as the report service
// computes it. Replications run on a few goroutines with per-replication
// seeds, so results do not depend on scheduling. Result reports, per
// strategy, the units until every test's decision, the bias, SD and
// interval coverage of every main effect, simple effect and non-zero
// interaction, the detection rate of the real interactions, and the false
// interaction findings.
//
// CheckHashing tests the method's first hypothesis directly: on a
// subset's factorial, hashed assignment (sequential ids user-1, user-2, …)
// against a designed balanced allocation and three broken assignments, on
// the same units and outcomes; HashingResult.Indistinguishable gives the
// verdict.
//
// # Repeat traffic
//
// EvaluateRepeat is the repeat-traffic scenario (abmesh evaluate
// --scenario repeat): units make geometric numbers of requests whose
// values share a unit draw (truth.Repeat), and the same traffic is
// analysed one row per request, as abmesh did before per-unit analysis,
// and one row per unit, aggregated by assign.Aggregate. CheckSRM measures
// the sample-ratio check on units and on requests (and the report's flag
// over a subset of three) against theory, CheckCoverage the interval
// coverage of every aggregate's unit-level analysis.Estimate on 2×2 and
// 2×2×2 designs against truth.Repeat.Factorial, and CheckDecision the
// units until the per-cell stop rule says COMPLETE when cells count
// requests and when they count units. Windows run on a worker pool
// (parallel) with per-window PCG streams, so results do not depend on
// scheduling.
//
// Report.WriteMarkdown renders everything as docs/evaluation.md.
package sim
