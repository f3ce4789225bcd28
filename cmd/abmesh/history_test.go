package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

// historyManifest is a one-experiment manifest with the given owner.
func historyManifest(t *testing.T, owner string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "exp.yaml")
	content := `apiVersion: abmesh.io/v1
kind: Experiment
metadata: {name: checkout-btn}
spec: {owner: ` + owner + `, changeService: a, measureService: a, variants: [{name: control, weight: 1}, {name: green, weight: 1}], plan: {mde: 1}}
`
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// stableHistory replaces what changes from run to run in a history table
// (times, peer ports, column widths) with fixed text.
func stableHistory(s string) string {
	s = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).ReplaceAllString(s, "TIME")
	s = regexp.MustCompile(`@127\.0\.0\.1:\d+`).ReplaceAllString(s, "@PEER")
	return regexp.MustCompile(` {2,}`).ReplaceAllString(s, " | ")
}

// TestHistory: changes made through the CLI by named actors (an
// unchanged apply records nothing) are listed newest first with a compact
// diff; NAME, --kind and --limit select; -o json carries before and after.
func TestHistory(t *testing.T) {
	d := daemontest.Start(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := cli(t, d.Addr(), args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	run("--actor", "alice", "apply", "-f", historyManifest(t, "team-a"))
	run("--actor", "alice", "apply", "-f", historyManifest(t, "team-a"))
	run("--actor", "bob", "start", "checkout-btn")
	run("--actor", "bob", "override", "checkout-btn", "--unit", "u1", "--variant", "green")
	run("--actor=carol", "apply", "-f", historyManifest(t, "team-b"))
	got := stableHistory(run("history"))
	want := `SEQ | TIME | ACTOR | ACTION | NAME | CHANGES
4 | TIME | carol@PEER | experiment.update | checkout-btn | owner: team-a→team-b
3 | TIME | bob@PEER | override.set | checkout-btn/u1 | created
2 | TIME | bob@PEER | experiment.start | checkout-btn | phase: -→1, phases: -→…, status: DRAFT→RUNNING
1 | TIME | alice@PEER | experiment.create | checkout-btn | created
`
	if got != want {
		t.Errorf("history:\n%s\nwant\n%s", got, want)
	}
	if got := stableHistory(run("history", "checkout-btn", "--kind", "override")); !strings.Contains(got, "3 | TIME | bob@PEER | override.set") || strings.Count(got, "\n") != 2 {
		t.Errorf("history --kind override:\n%s", got)
	}
	if got := stableHistory(run("history", "--limit", "2")); !strings.HasPrefix(got, want[:strings.Index(want, "2 | ")]) || strings.Count(got, "\n") != 3 {
		t.Errorf("history --limit 2:\n%s", got)
	}
	if got := run("history", "other"); got != "no changes recorded\n" {
		t.Errorf("history of an unknown name: %q", got)
	}
	var resp struct {
		Changes []struct {
			Seq        string `json:"seq"`
			BeforeJSON string `json:"before_json"`
			AfterJSON  string `json:"after_json"`
		} `json:"changes"`
	}
	if err := json.Unmarshal([]byte(run("history", "-o", "json", "--limit", "1")), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Changes) != 1 || resp.Changes[0].Seq != "4" || !strings.Contains(resp.Changes[0].BeforeJSON, `"owner":"team-a"`) || !strings.Contains(resp.Changes[0].AfterJSON, `"owner":"team-b"`) {
		t.Errorf("history -o json: %+v", resp)
	}
	for _, bad := range [][]string{{"history", "--kind", "graph"}, {"history", "a", "b"}, {"history", "--limit", "-1"}, {"--actor", "eve\x1b", "history"}} {
		if _, err := cli(t, d.Addr(), bad...); err == nil {
			t.Errorf("%q succeeded", bad)
		}
	}
	if _, err := cli(t, d.Addr(), "history", "--kind", "graph"); err == nil || !strings.Contains(err.Error(), "kind:") {
		t.Errorf("history --kind graph: %v, want an error naming kind", err)
	}
}
