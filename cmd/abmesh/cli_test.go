package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/abmesh/abmesh/internal/testkit/daemontest"
)

func cli(t *testing.T, server string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"--server", server}, args...), &out, &errOut)
	return out.String(), err
}

// runCmd runs "abmesh NAME ARGS..." as main does, writing its standard
// output to stdout and its standard error to stderr (nil: discarded).
func runCmd(stdout, stderr io.Writer, name string, args ...string) error {
	if stderr == nil {
		stderr = io.Discard
	}
	return run(context.Background(), append(strings.Fields(name), args...), stdout, stderr)
}

func TestApplyGetStartAssign(t *testing.T) {
	d := daemontest.Start(t)
	out, err := cli(t, d.Addr(), "apply", "-f", "../../internal/tool/shop/experiments.yaml", "-f", "../../internal/tool/shop/layers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "layer/checkout-flow created") || !strings.Contains(out, "experiment/rec-model created") {
		t.Fatalf("apply output:\n%s", out)
	}
	// Applying the same files again changes nothing, not even the version.
	version := d.Registry().Version()
	if out, err = cli(t, d.Addr(), "apply", "-f", "../../internal/tool/shop/layers.yaml", "-f", "../../internal/tool/shop/experiments.yaml"); err != nil || !strings.Contains(out, "experiment/rec-model unchanged") {
		t.Fatalf("re-apply: %v\n%s", err, out)
	}
	if v := d.Registry().Version(); v != version {
		t.Errorf("an unchanged apply moved the config version from %d to %d", version, v)
	}
	// A changed manifest updates in place.
	changed := filepath.Join(t.TempDir(), "changed.yaml")
	b, err := os.ReadFile("../../internal/tool/shop/experiments.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(changed, []byte(strings.Replace(string(b), "{name: ml-v2, weight: 50}", "{name: ml-v2, weight: 30}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err = cli(t, d.Addr(), "apply", "-f", changed); err != nil || !strings.Contains(out, "experiment/rec-model configured") || !strings.Contains(out, "experiment/ui-layout unchanged") {
		t.Fatalf("apply of a change: %v\n%s", err, out)
	}
	for _, id := range []string{"rec-model", "ui-layout", "pay-button", "ship-promo"} {
		if out, err := cli(t, d.Addr(), "start", id); err != nil || !strings.Contains(out, "running (phase 1)") {
			t.Fatalf("start %s: %v %s", id, err, out)
		}
	}
	out, err = cli(t, d.Addr(), "get", "experiments", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Experiments []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"experiments"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("get -o json is not JSON: %v\n%s", err, out)
	}
	if len(list.Experiments) != 7 {
		t.Fatalf("got %d experiments", len(list.Experiments))
	}
	out, err = cli(t, d.Addr(), "assign", "--unit", "user-7", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var as struct {
		Assignments []struct {
			TestID  string `json:"test_id"`
			Variant string `json:"variant"`
			Reason  string `json:"reason"`
		} `json:"assignments"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(out), &as); err != nil {
		t.Fatal(err)
	}
	inLayer := 0
	for _, a := range as.Assignments {
		if as.Headers["x-abmesh-"+a.TestID] != a.Variant {
			t.Errorf("header of %s = %q, want %q", a.TestID, as.Headers["x-abmesh-"+a.TestID], a.Variant)
		}
		if (a.TestID == "pay-button" || a.TestID == "ship-promo") && a.Reason == "ASSIGNMENT_REASON_HASH" {
			inLayer++
		}
	}
	if len(as.Assignments) != 4 || inLayer != 1 {
		t.Errorf("assignments %+v: want 4 running tests, exactly one layer test hashed", as.Assignments)
	}
	if _, err = cli(t, d.Addr(), "override", "rec-model", "--unit", "user-7", "--variant", "ml-v2"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ args, want []string }{
		{[]string{"get", "layers"}, []string{"NAME", "checkout-flow"}},
		{[]string{"get", "experiment", "rec-model"}, []string{"STATUS", "rec-model", "RUNNING"}},
		{[]string{"get", "exp", "rec-model", "-o", "json"}, []string{`"id": "rec-model"`}},
		{[]string{"get", "overrides", "rec-model", "-o", "json"}, []string{`"unit_id": "user-7"`}},
	} {
		out, err := cli(t, d.Addr(), tc.args...)
		for _, w := range tc.want {
			if err != nil || !strings.Contains(out, w) {
				t.Errorf("%q: %v, output lacks %q:\n%s", tc.args, err, w, out)
			}
		}
	}
	// Every experiment's overrides (no name).
	if out, err = cli(t, d.Addr(), "get", "overrides"); err != nil || !strings.Contains(out, "user-7") {
		t.Errorf("get overrides: %v\n%s", err, out)
	}
	out, err = cli(t, d.Addr(), "assign", "--unit", "user-7", "--test", "rec-model")
	if err != nil || !strings.Contains(out, "ml-v2") || !strings.Contains(out, "override") {
		t.Errorf("after override: %v\n%s", err, out)
	}
	if out, err = cli(t, d.Addr(), "conclude", "ui-layout", "--winner", "two-column"); err != nil || !strings.Contains(out, "winner two-column") {
		t.Errorf("conclude: %v %s", err, out)
	}
	if _, err = cli(t, d.Addr(), "report", "nope"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("report of unknown test: %v", err)
	}
	if out, err = cli(t, d.Addr(), "report", "rec-model"); err != nil || !strings.Contains(out, "REPORT rec-model") {
		t.Errorf("report: %v\n%s", err, out)
	}
	if out, err = cli(t, d.Addr(), "status"); err != nil || !strings.Contains(out, "spans.received") {
		t.Errorf("status: %v\n%s", err, out)
	}
	if out, err = cli(t, d.Addr(), "subsets", "-o", "dot"); err != nil || !strings.HasPrefix(out, "digraph") {
		t.Errorf("subsets -o dot: %v\n%s", err, out)
	}
}

func TestApplyRejectsWholeFile(t *testing.T) {
	d := daemontest.Start(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	content := `apiVersion: abmesh.io/v1
kind: Experiment
metadata: {name: good-one}
spec: {changeService: a, measureService: a, variants: [{name: c, weight: 1}, {name: t, weight: 1}], plan: {mde: 1}}
---
apiVersion: abmesh.io/v1
kind: Experiment
metadata: {name: bad-one}
spec: {changeService: a, measureService: a, variants: [{name: c, weight: -1}, {name: t, weight: 1}], plan: {mde: 1}}
`
	if err := os.WriteFile(bad, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := cli(t, d.Addr(), "apply", "-f", bad)
	if err == nil {
		t.Fatal("apply of an invalid file succeeded")
	}
	for _, want := range []string{"nothing applied", "bad.yaml", "document 2", "spec.variants[0].weight"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if len(d.Registry().Experiments()) != 0 {
		t.Errorf("something was applied from an invalid file")
	}
}

func TestUnknownCommandAndServerDown(t *testing.T) {
	if _, err := cli(t, "127.0.0.1:1", "frobnicate"); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}
	if _, err := cli(t, "127.0.0.1:1", "get", "experiments"); err == nil || !strings.Contains(err.Error(), "unavailable") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("server down: %v", err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, io.Discard); err != nil || !strings.Contains(out.String(), "demo") {
		t.Errorf("help: %v\n%s", err, out.String())
	}
}

// TestRPCErrorWording: gRPC codes read as words, and a code the server's
// message already starts with is not repeated.
func TestRPCErrorWording(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.NotFound, `experiment "x": not found`), `not found: experiment "x": not found`},
		{status.Error(codes.InvalidArgument, "unit_id: required"), "invalid argument: unit_id: required"},
		{status.Error(codes.FailedPrecondition, `failed precondition: layer "l" is used`), `failed precondition: layer "l" is used`},
		{status.Error(codes.AlreadyExists, "x"), "already exists: x"},
	} {
		if got := rpcError(tc.err).Error(); got != tc.want {
			t.Errorf("rpcError(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestCommandLineMistakes: stray arguments are refused, not ignored, and
// usage and flag errors go to stderr, never into the output.
func TestCommandLineMistakes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "extra"}, `status: unexpected argument "extra"`},
		{[]string{"apply", "-f", "a.yaml", "b.yaml"}, `apply: unexpected argument "b.yaml"`},
		{[]string{"graph", "-o", "dot", "x"}, `graph: unexpected argument "x"`},
		{[]string{"subsets", "-o", "svg"}, `invalid value "svg" for flag -o: want table, json or dot`},
		{[]string{"start"}, "start: want exactly one experiment name"},
		{[]string{"anova", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"demo", "--replicas", "3"}, "demo: --replicas 3 needs --store postgres://"},
		{[]string{"demo", "--replicas", "3", "--store", "/var/lib/abmesh"}, "demo: --replicas 3 needs --store postgres://"},
		{[]string{"demo", "--store", "postgres://u@h/db"}, "demo: --store needs --replicas N"},
		{[]string{"demo", "--replicas", "17", "--store", "postgres://u@h/db"}, "demo: --replicas 17: want 1 to 16"},
		{[]string{"demo", "--replicas", "-1", "--store", "postgres://u@h/db"}, "demo: --replicas -1: want 1 to 16"},
		{[]string{"demo", "--routes", "routes.txt"}, "demo: --routes needs --replicas N"},
		{[]string{"demo", "--replicas", "2", "--store", "postgres://u@h/db", "--jaeger-otlp", "j:4317", "--jaeger-query", "j:16685"}, "demo: --replicas cannot go with --jaeger-otlp"},
	} {
		var out, errOut bytes.Buffer
		err := runCmd(&out, &errOut, "--server", append([]string{"127.0.0.1:1"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.args, err, tc.want)
		}
		if out.Len() > 0 {
			t.Errorf("%q wrote to stdout: %q", tc.args, out.String())
		}
	}
	var errOut bytes.Buffer
	_ = runCmd(io.Discard, &errOut, "power", "--nope")
	if !strings.HasPrefix(errOut.String(), "flag provided but not defined: -nope\nUsage: abmesh power --u U") {
		t.Errorf("power --nope: stderr %q", errOut.String())
	}
}

// TestCallDeadline: a CLI call without a deadline gets rpcTimeout; one
// with a deadline keeps it.
func TestCallDeadline(t *testing.T) {
	var got time.Time
	invoke := func(ctx context.Context, _ string, _, _ any, _ *grpc.ClientConn, _ ...grpc.CallOption) error {
		got, _ = ctx.Deadline()
		return nil
	}
	start := time.Now()
	_ = callDeadline(context.Background(), "/m", nil, nil, nil, invoke)
	if d := got.Sub(start); d < rpcTimeout-time.Second || d > rpcTimeout+time.Second {
		t.Errorf("deadline in %v, want about %v", d, rpcTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	want, _ := ctx.Deadline()
	_ = callDeadline(ctx, "/m", nil, nil, nil, invoke)
	if !got.Equal(want) {
		t.Errorf("deadline %v, want the caller's %v", got, want)
	}
}
