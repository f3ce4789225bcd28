package protoconv

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/assign"
)

// TestAuditEntryToProto: each kind's stored domain JSON comes out as the
// API message's JSON with .proto field names and enum names; a missing
// side stays empty; an unknown kind or undecodable side is an error.
func TestAuditEntryToProto(t *testing.T) {
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		e             assign.AuditEntry
		before, after string
	}{
		{assign.AuditEntry{Kind: assign.AuditLayer, After: raw(assign.Layer{ID: "l1", Description: "d"})},
			"", `{"id":"l1","description":"d"}`},
		{assign.AuditEntry{Kind: assign.AuditOverride, Before: raw(assign.Override{Experiment: "x", Unit: "u", Variant: "v"})},
			`{"experiment_id":"x","unit_id":"u","variant":"v"}`, ""},
		{assign.AuditEntry{Kind: assign.AuditExperiment, Before: raw(assign.Experiment{ID: "x", Status: assign.StatusPaused}),
			After: raw(assign.Experiment{ID: "x", Status: assign.StatusConcluded, Winner: "v"})}, `"status":"EXPERIMENT_STATUS_PAUSED"`, `"winner":"v"`},
	} {
		c.e.Seq, c.e.Version, c.e.Time, c.e.Actor = 7, 9, at, assign.Actor{Kind: assign.ActorDeclared, Name: "al", Peer: "p"}
		p, err := AuditEntryToProto(&c.e)
		if err != nil {
			t.Fatalf("%s: %v", c.e.Kind, err)
		}
		if p.GetSeq() != 7 || p.GetConfigVersion() != 9 || !p.GetTime().AsTime().Equal(at) || p.GetActor().GetName() != "al" || p.GetActor().GetPeer() != "p" {
			t.Errorf("%s: %v", c.e.Kind, p)
		}
		for side, pair := range map[string][2]string{"before": {p.GetBeforeJson(), c.before}, "after": {p.GetAfterJson(), c.after}} {
			got, want := pair[0], pair[1]
			if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
				t.Errorf("%s %s = %s, want %s", c.e.Kind, side, got, want)
			}
		}
	}
	if _, err := AuditEntryToProto(&assign.AuditEntry{Kind: "graph", After: json.RawMessage(`{}`)}); err == nil {
		t.Error("unknown kind converted")
	}
	if _, err := AuditEntryToProto(&assign.AuditEntry{Kind: assign.AuditLayer, Before: json.RawMessage(`{"ID":1}`)}); err == nil {
		t.Error("undecodable side converted")
	}
}
