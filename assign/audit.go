package assign

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Actor is who made an admin change. With authentication on (abmeshd
// --auth-file) Name is the authenticated identity: the bearer token's name
// or the client certificate's common name (Kind ActorToken or
// ActorCertificate). Without it the actor is self-declared: Name is
// whatever the caller put in the x-abmesh-actor metadata (the CLI's
// --actor, by default the OS user name). Peer, the caller's network
// address, is observed either way.
type Actor struct {
	// Kind says how Name was established: ActorToken, ActorCertificate,
	// ActorDeclared, ActorAnonymous or ActorSystem.
	Kind string `json:"kind"`
	// Name is the actor's name; empty for an anonymous caller.
	Name string `json:"name,omitempty"`
	// Peer is the caller's network address, when the change came over the
	// network.
	Peer string `json:"peer,omitempty"`
}

// Kinds of Actor.
const (
	ActorToken       = "token"       // Name is an authenticated bearer token's name
	ActorCertificate = "certificate" // Name is a verified client certificate's common name
	ActorDeclared    = "declared"    // Name is the caller's own, unverified claim
	ActorAnonymous   = "anonymous"   // the caller said nothing about itself
	ActorSystem      = "system"      // a change made in-process, not over an API
)

// String renders the actor as "name@peer", "(anonymous)@peer" or
// "(system)".
func (a Actor) String() string {
	name := a.Name
	if name == "" {
		name = "(" + a.Kind + ")"
	}
	if a.Peer == "" {
		return name
	}
	return name + "@" + a.Peer
}

type actorKey struct{}

// WithActor returns a context whose admin changes the Registry records as
// made by a. A change made with a context that carries no actor is
// recorded as made by Actor{Kind: ActorSystem}.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor ctx carries (WithActor), or the system actor.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Kind: ActorSystem}
}

// Audit kinds: what an AuditEntry's Name names.
const (
	AuditExperiment = "experiment"
	AuditLayer      = "layer"
	AuditOverride   = "override"
)

// AuditKinds lists the kinds of AuditEntry.
var AuditKinds = []string{AuditExperiment, AuditLayer, AuditOverride}

// AuditEntry is one admin change of the audit log, stored in the same
// transaction as the change itself (Change.Audit), so the log holds
// exactly the changes that took effect.
type AuditEntry struct {
	// Seq numbers the entries of a store from 1, in commit order; the
	// store assigns it.
	Seq uint64 `json:"seq"`
	// Version is the configuration version the change produced.
	Version uint64    `json:"version"`
	Time    time.Time `json:"time"`
	Actor   Actor     `json:"actor"`
	// Action is Kind and verb: "experiment.create", "experiment.update",
	// "experiment.delete", "experiment.start", "experiment.pause",
	// "experiment.conclude", "layer.create", "layer.update",
	// "layer.delete", "override.set", "override.delete".
	Action string `json:"action"`
	// Kind is one of AuditKinds.
	Kind string `json:"kind"`
	// Name is the experiment or layer id; for an override,
	// "experiment/unit".
	Name string `json:"name"`
	// Before and After are the JSON of the domain object (Experiment,
	// Layer, Override) before and after the change; Before is nil for a
	// create, After for a delete. Overrides that an experiment's update
	// or delete removes with it are not listed separately.
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// AuditQuery selects entries of the audit log, newest first.
type AuditQuery struct {
	// Name, when set, keeps the entries of that experiment or layer: Name
	// equal to it, or, for overrides, starting with it and "/".
	Name string
	// Kind, when set, keeps the entries of that kind (AuditKinds).
	Kind string
	// Before, when not 0, keeps the entries with Seq < Before (paging).
	Before uint64
	// Limit is the most entries returned; 0 means no limit.
	Limit int
}

// Match reports whether e passes the Name and Kind filters of q.
func (q *AuditQuery) Match(e *AuditEntry) bool {
	if q.Kind != "" && e.Kind != q.Kind {
		return false
	}
	return q.Name == "" || e.Name == q.Name || strings.HasPrefix(e.Name, q.Name+"/")
}

// Changes returns the audit log entries q selects, newest first.
func (r *Registry) Changes(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	out, err := r.store.Changes(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return out, nil
}

// auditEntry builds the entry of an admin change of kind on name, made by
// ctx's actor at t. before and after are domain objects or nil. Seq and
// Version are set later (store and commit).
func auditEntry(ctx context.Context, t time.Time, verb, kind, name string, before, after any) *AuditEntry {
	return &AuditEntry{
		Time:   t,
		Actor:  ActorFrom(ctx),
		Action: kind + "." + verb,
		Kind:   kind,
		Name:   name,
		Before: mustJSON(before),
		After:  mustJSON(after),
	}
}

// mustJSON is the JSON of a domain object, nil for nil. The domain types
// always marshal.
func mustJSON(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("assign: marshal %T: %v", v, err))
	}
	return b
}

// sameJSON reports whether a and b marshal to the same JSON: an update to
// b of a changes nothing.
func sameJSON(a, b any) bool { return bytes.Equal(mustJSON(a), mustJSON(b)) }

// overrideName is the audit Name of an override.
func overrideName(o Override) string { return o.Experiment + "/" + o.Unit }
