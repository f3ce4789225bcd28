// Package flagd serves OpenFeature's flagd evaluation API
// (flagd.evaluation.v1.Service) over abmesh's assignment engine, so that a
// service using OpenFeature with a flagd provider in RPC mode evaluates
// abmesh tests with no abmesh code. docs/flagd.md is the user's guide.
//
// The mapping:
//
//	flag key                     → test (experiment) id
//	context "targetingKey"       → unit (required; checked as Assign checks unit_id)
//	other context fields         → targeting attributes: strings as they are, booleans
//	                               "true"/"false", numbers in shortest decimal form
//	                               (3 → "3", 2.5 → "2.5"); null, lists and structs are
//	                               not attributes
//	value                        → the variant's name (ResolveString); ResolveBoolean only
//	                               for two-variant tests named on/off or true/false
//	variant                      → the variant's name
//	reason                       → see Reason
//	metadata                     → abmeshReason, phase, configVersion
//
// Every evaluation is the assign.Engine's, exactly as Assign's: the same
// unit gets the same variant of the same test through either API.
//
// Errors follow flagd's gRPC mapping, which the providers turn into
// OpenFeature error codes: an unknown flag key is NotFound "Flag not
// found" (FLAG_NOT_FOUND); a type the test cannot have is InvalidArgument
// "Type mismatch error…" (TYPE_MISMATCH); a missing or bad targetingKey
// or attribute is InvalidArgument naming the field (flagd's wire has no
// code for TARGETING_KEY_MISSING or INVALID_CONTEXT, so providers report
// it as TYPE_MISMATCH with this message).
package flagd
