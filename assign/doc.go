// Package assign decides which variant of which A/B test (experiment) a
// unit gets, and holds the registry of experiments, layers and overrides.
//
// # Assignment
//
// Every experiment hashes the unit id with its own salt (its id unless
// Experiment.Salt is set), so the splits of different experiments are
// independent (Tang et al., "Overlapping Experiment Infrastructure", KDD
// 2010). The hash is fixed and shared by every SDK:
//
//	h64    = XXH64(salt + "/" + unit, seed 0)
//	h32    = h64 >> 32
//	bucket = (h32 * total) >> 32          // total = sum of the variant weights
//
// Variant i owns the buckets [w0+…+w(i-1), w0+…+wi). A unit's fraction point
// h32/2^32 does not depend on the weights, so a weight change moves exactly
// the units whose point crosses a moved range boundary (see Hash, Bucket).
// testdata/hash_vectors.json pins the function with golden vectors.
//
// A layer makes its experiments mutually exclusive: the unit's layer bucket
// LayerBucket(layer id, unit), in [0, LayerBuckets), must fall in the
// experiment's Slice, otherwise the unit gets the control with
// ReasonNotInSlice. Active experiments of a layer own disjoint slices.
//
// In order of precedence: a concluded experiment serves its winner
// (ReasonWinner); an override pins a unit (ReasonOverride); a paused one
// serves the control (ReasonPaused); a unit that misses the targeting rules
// gets the control (ReasonNotTargeted); then the slice check; then a sticky
// experiment's stored first assignment (ReasonSticky); then the hash
// (ReasonHash). Only ReasonHash and ReasonSticky count in analysis
// (Reason.Randomized).
//
// # Engine and Registry
//
// A Config (version, experiments, layers, overrides) is an immutable
// snapshot; Compile turns it into an Engine that evaluates without locks and,
// through AppendAssignments, without allocating. The Registry is the state
// machine behind abmeshd's API: it validates and applies mutations,
// persists them through a Store, bumps the version and publishes a new
// Engine (Registry.Snapshot, Registry.Subscribe) on every change. SDKs
// compile the Config they receive from Watch and evaluate locally.
//
// Errors wrap ErrInvalid (as a *FieldError naming the field), ErrNotFound,
// ErrAlreadyExists or ErrFailedPrecondition, for the server to map to gRPC
// codes.
package assign
