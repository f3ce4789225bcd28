package flagd

import (
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/abmesh/abmesh/assign"
)

// flagd's reason strings (OpenFeature's resolution reasons).
const (
	ReasonStatic         = "STATIC"
	ReasonSplit          = "SPLIT"
	ReasonTargetingMatch = "TARGETING_MATCH"
	ReasonDefault        = "DEFAULT"
	ReasonDisabled       = "DISABLED"
	ReasonError          = "ERROR"
)

// Reason maps an abmesh assignment reason to flagd's:
//
//	HASH, STICKY                         → SPLIT: the unit's hash picked the variant
//	OVERRIDE                             → TARGETING_MATCH: a rule pins this unit
//	WINNER                               → STATIC: a concluded test gives everyone its winner
//	PAUSED (paused or draft test)        → DISABLED: control while the test is off
//	NOT_TARGETED, NOT_IN_SLICE, FALLBACK → DEFAULT: control, the unit is not in the test
//
// ERROR is never in a response body: an evaluation error is a gRPC error
// status, and providers set ERROR themselves. STATIC is the only reason
// flagd providers cache (by flag key, until a configuration_change names
// the key), and a winner is the same for every context, so the cache is
// right.
func Reason(r assign.Reason) string {
	switch r {
	case assign.ReasonHash, assign.ReasonSticky:
		return ReasonSplit
	case assign.ReasonOverride:
		return ReasonTargetingMatch
	case assign.ReasonWinner:
		return ReasonStatic
	case assign.ReasonPaused:
		return ReasonDisabled
	}
	return ReasonDefault
}

// metadata is an evaluation's flag metadata: abmesh's own reason (which
// tells a randomized assignment, HASH or STICKY, from the others), the
// test's phase and the configuration version that evaluated it.
func metadata(a assign.Assignment, version uint64) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		"abmeshReason":  structpb.NewStringValue(a.Reason.String()),
		"phase":         structpb.NewNumberValue(float64(a.Phase)),
		"configVersion": structpb.NewNumberValue(float64(version)),
	}}
}
