// Package subset finds, for every running A/B test (the viewpoint), the
// other tests that can really interfere with it — its subset — and counts
// traced requests into the factorial cells of each subset.
//
// # Subsets
//
// A Test declares where its change is (ChangeService), where its metric is
// measured (MeasureService), and the kinds of interference it Emits and is
// Susceptible to, each over a Scope of the service dependency Graph
// (change, measure, change_to_measure, change/measure_downstream,
// change/measure_upstream, all). Compute resolves each scope to a set of
// services and puts U in T's subset when some kind is both emitted by U and
// one T is susceptible to, and the two regions share a service:
//
//	U ∈ S(T)  ⇔  ∃ e ∈ U.Emits, s ∈ T.Susceptible:
//	             e.Kind = s.Kind ∧ region(e.Scope, U) ∩ region(s.Scope, T) ≠ ∅
//
// Each member carries its Reasons (kind, both scopes, the shared
// services). Past the cap (DefaultCap, including the viewpoint) the members
// with the most call volume through their shared services are kept and the
// rest are reported as interference not modelled.
//
// Tests of one layer never join each other's subsets (they share no unit).
// Two or more of them in a third test's subset are one factor (Member.Layer;
// a layer WindowMember): its levels are their "test/variant" pairs plus
// OutsideLevel, a unit's level is that of the layer test whose slice holds
// it, and each test's variants are estimated against that test's control
// (WindowMember.Reference).
//
// # Windows and cells
//
// Three types split the work. A Subsetter holds the tests and the graph
// (admitting traced edges through a hysteresis gate, ObserveEdges) and
// recomputes the subsets on every change; it hands each running
// viewpoint's View to a Windows. Windows keeps the per-viewpoint analysis
// windows: a window lives as long as its view (members and their phases)
// does and counts only requests from when all its members were running.
// A CellCounter is the tracing.Consumer that adds each observation's
// metric into the cell of every viewpoint served on its path, indexed by
// the variants of the subset's members (served on the path, or given by
// the unit's hash), and counts what it excludes per viewpoint (Quality).
// Windows are exported as JSON-serializable WindowCells and persisted
// through a Store by Flush and Restore. Replicas that share a store count
// into one set of windows: one Windows, driven by its Subsetter, gives its
// Plan, and the others Adopt it (their Subsetters have no sink and take
// the leader's edges with SetAdmitted).
//
// # Rendering
//
// WriteDOT draws the graph with each subset's services coloured;
// WriteTable lists subsets and reasons as text.
package subset
