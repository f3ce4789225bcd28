// Package openfeature is an OpenFeature provider for Go
// (github.com/open-feature/go-sdk) over abmesh's Go SDK, assign/client: a
// service evaluates abmesh's A/B tests through the vendor-neutral
// OpenFeature API, locally, from the configuration abmeshd streams to it,
// and every evaluation is recorded on the request's span exactly as the
// SDK records it, so abmeshd's trace consumer attributes the request to
// its cells as it does for SDK users.
//
//	p, err := openfeature.New("127.0.0.1:7070", "checkout")
//	...
//	err = of.SetProviderAndWait(p) // of = github.com/open-feature/go-sdk/openfeature
//	flags := of.NewDefaultClient()
//	variant, _ := flags.StringValue(ctx, "new-checkout", "control", of.NewEvaluationContext(userID, nil))
//
// # Flags
//
// The flag key is the test id; any test of the configuration can be
// evaluated, not only the service's. EvaluationContext.TargetingKey is the
// unit; the other attributes feed the test's targeting rules, converted to
// strings as abmeshd's flagd API converts them (string as is; bool
// "true"/"false"; numbers in shortest decimal form, 3 → "3", 2.5 → "2.5";
// time.Time in RFC 3339; other kinds, such as
// maps and slices, are ignored). A targeting key set as an attribute
// ("targetingKey") of another scalar kind is converted the same way.
//
//   - String flags return the variant name.
//   - Boolean flags work for tests with exactly two variants named on and
//     off, or true and false (in any order): "on" and "true" are true.
//     Any other test answers TYPE_MISMATCH with the default value and
//     records nothing, since nothing was served.
//   - Integer, float and object flags answer TYPE_MISMATCH (FLAG_NOT_FOUND
//     for an unknown key) with the default value and record nothing.
//   - An unknown key answers FLAG_NOT_FOUND with the default value.
//
// # Reasons
//
// The resolution's Reason is the feature_flag.result.reason the span event
// carries, upper-cased (client.FeatureFlagReason), so what the application
// sees and what the trace says never disagree:
//
//	abmesh reason   OpenFeature reason  value
//	HASH            SPLIT               the hashed variant (randomized: counts in analysis)
//	STICKY          CACHED              a stored hash assignment (randomized)
//	OVERRIDE        TARGETING_MATCH     an admin pinned this unit to a variant
//	WINNER          STATIC              concluded: everyone gets the winner
//	PAUSED          DISABLED            paused (or draft): the control
//	NOT_TARGETED    DEFAULT             the unit misses the targeting rules: the control
//	NOT_IN_SLICE    DEFAULT             the unit is outside the test's layer slice: the control
//	FALLBACK        ERROR + code        the default value; see below
//
// Overrides are TARGETING_MATCH, not STATIC: they are per-unit rules, and
// the unit's other tests still split. Targeting and slice misses are
// DEFAULT, not TARGETING_MATCH: the unit matched nothing and got the
// test's default variant, the control (a targeted unit that is split
// reports SPLIT). STICKY never occurs here: assign/client evaluates sticky
// tests by hash.
//
// Errors (reason ERROR, the default value, no variant):
//
//	PROVIDER_NOT_READY     no configuration has arrived from abmeshd yet
//	FLAG_NOT_FOUND         the configuration has no test with that id
//	TARGETING_KEY_MISSING  the context has no targeting key (a running test)
//	INVALID_CONTEXT        the targeting key is over assign.MaxUnitLen bytes, or
//	                       the attributes fail assign.ValidateAttributes (a running test)
//	TYPE_MISMATCH          see Flags
//
// A test that needs no unit answers without error even without a valid
// targeting key: a concluded test its winner (STATIC), a paused one its
// control (DISABLED). Every string or boolean resolution that evaluated
// the flag (all but TYPE_MISMATCH) carries the flag metadata abmeshd's
// flagd API gives: abmesh's own reason (ReasonKey "abmeshReason", e.g.
// "HASH", as the span event's abmesh.reason), the test's phase (PhaseKey
// "phase"; 0 for an unknown test) and the configuration version
// (ConfigVersionKey "configVersion"); the analysis counts a unit exactly
// when abmeshReason is HASH or STICKY.
//
// # What is recorded
//
// Every string or boolean evaluation that resolves a test (errors
// included, type mismatches excluded) adds one "feature_flag.evaluation"
// event to the span in the Go context passed to the evaluation, through
// client.Snapshot.Evaluate: the function behind the SDK's own Variant,
// with the same attributes (feature_flag.key, feature_flag.result.variant,
// feature_flag.context.id, feature_flag.provider.name "abmesh",
// feature_flag.version, feature_flag.result.reason, abmesh.reason and, for
// a fallback, error.type). Put the server span in that context (otelgrpc,
// otelhttp) and export it to abmeshd's OTLP receiver; nothing else is
// needed for the request to be counted in its cells. Unlike the SDK's
// interceptors the provider neither reads nor writes baggage: the caller
// owns the unit.
//
// # Lifecycle and events
//
// New starts watching abmeshd at once (client.New). Init waits for the
// first configuration, for at most the init timeout (WithInitTimeout, 5 s
// by default) or until the context of SetProviderWithContextAndWait ends;
// then the OpenFeature SDK emits PROVIDER_READY. If none arrives in time,
// Init fails with PROVIDER_NOT_READY (the SDK emits PROVIDER_ERROR and
// evaluations answer ERROR / PROVIDER_NOT_READY with the default value)
// and the provider emits PROVIDER_READY itself when the first
// configuration arrives. Afterwards the provider emits (EventChannel):
//
//	PROVIDER_CONFIGURATION_CHANGED  a new configuration version is in use; FlagChanges
//	                                lists the tests whose definition or overrides changed
//	                                and EventMetadata["configVersion"] the version
//	PROVIDER_STALE                  the Watch stream broke: abmeshd is unreachable and the
//	                                provider serves its last configuration
//	PROVIDER_READY                  the stream is back (followed by CONFIGURATION_CHANGED
//	                                when the configuration differs from the one before)
//
// Shutdown closes the connection to abmeshd; a provider is not reused
// after it. NewStatic serves a fixed configuration with no connection and
// no events, for tests and examples.
package openfeature
