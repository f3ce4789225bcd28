package flagd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abmesh/abmesh/internal/edge/flagd"
	"github.com/abmesh/abmesh/internal/edge/protoconv"
	"github.com/abmesh/abmesh/internal/testkit/daemontest"
	pb "github.com/abmesh/abmesh/proto/abmesh/v1"
)

// jsProviderDir is the npm project holding OpenFeature's server SDK and
// flagd provider: $ABMESH_FLAGD_JS (.ci/run installs it best effort).
// Without it, or without node, the test skips.
func jsProviderDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("ABMESH_FLAGD_JS")
	if dir == "" {
		t.Skip("ABMESH_FLAGD_JS is not set: no OpenFeature JS flagd provider to test with (.ci/run installs one)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@openfeature", "flagd-provider")); err != nil {
		t.Skipf("no @openfeature/flagd-provider in %s: %v", dir, err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed")
	}
	return dir
}

// jsDetails is an OpenFeature evaluation detail as the script prints it.
type jsDetails struct {
	Value     any    `json:"value"`
	Variant   string `json:"variant"`
	Reason    string `json:"reason"`
	ErrorCode string `json:"errorCode"`
}

// jsLine is one line of the script's output.
type jsLine struct {
	Event string   `json:"event"`
	Flags []string `json:"flags"`
	Error string   `json:"error"`
	Case  string   `json:"case"`
	jsDetails
	Unit     string    `json:"unit"`
	Checkout jsDetails `json:"checkout"`
	Banner   jsDetails `json:"banner"`
	Pricing  jsDetails `json:"pricing"`
}

// TestJavaScriptProvider: a Node program using only OpenFeature's server
// SDK and its flagd provider (RPC mode, default LRU cache) evaluates the
// fixture's tests on a real abmeshd for 300 units and gets Assign's
// variants, with flagd's reasons; an unknown key is FLAG_NOT_FOUND, a
// number or a boolean of a three-variant test TYPE_MISMATCH, a missing
// targetingKey an error; a concluded test's STATIC winner is cached and
// the cache entry is dropped when the test is deleted.
func TestJavaScriptProvider(t *testing.T) {
	dir := jsProviderDir(t)
	d := daemontest.Start(t)
	fixture(t, d.Registry())
	assignClient := pb.NewAssignmentServiceClient(daemontest.Dial(t, d.Addr()))
	host, port, _ := strings.Cut(d.Addr(), ":")
	const units = 300
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("testdata", "provider.cjs"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"),
		"ABMESH_HOST="+host, "ABMESH_PORT="+port, "ABMESH_UNITS="+strconv.Itoa(units))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cmd.Wait(); err != nil {
			t.Errorf("node: %v\n%s", err, stderr.String())
		}
	}()
	cases := map[string]jsDetails{}
	evaluated, checked := false, 0
	for sc := bufio.NewScanner(stdout); sc.Scan(); {
		var l jsLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("script line %q: %v", sc.Text(), err)
		}
		switch {
		case l.Event == "failed":
			t.Fatalf("script failed: %s\n%s", l.Error, stderr.String())
		case l.Event == "evaluated":
			evaluated = true
			if err := d.Registry().Delete(context.Background(), winner); err != nil {
				t.Fatal(err)
			}
		case l.Unit != "":
			checkJSUnit(t, assignClient, l)
			checked++
		case l.Case != "":
			cases[l.Case] = l.jsDetails
		}
	}
	if !evaluated || checked != units {
		t.Fatalf("the script evaluated %d units (finished: %v)\n%s", checked, evaluated, stderr.String())
	}
	t.Logf("single evaluations: %+v", cases)
	checkJSCases(t, cases)
}

// checkJSUnit compares one unit's OpenFeature evaluations with Assign's.
func checkJSUnit(t *testing.T, c pb.AssignmentServiceClient, l jsLine) {
	t.Helper()
	i, _ := strconv.Atoi(strings.TrimPrefix(l.Unit, "u-"))
	resp, err := c.Assign(context.Background(), &pb.AssignRequest{UnitId: l.Unit,
		Attributes: attrsOf([]string{"de", "us", "fr"}[i%3], strconv.Itoa(i%5), i%2 == 0)})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.GetAssignments() {
		var got jsDetails
		switch a.GetTestId() {
		case checkout:
			got = l.Checkout
		case banner:
			got = l.Banner
			if got.Value != (a.GetVariant() == "on") {
				t.Errorf("%s banner: value %v for variant %q", l.Unit, got.Value, a.GetVariant())
			}
		case pricing:
			got = l.Pricing
		default:
			continue
		}
		want := flagd.Reason(protoconv.ReasonFromProto(a.GetReason()))
		if got.Variant != a.GetVariant() || got.Reason != want || got.ErrorCode != "" {
			t.Errorf("%s %s: OpenFeature %+v, Assign %q (reason %s)", l.Unit, a.GetTestId(), got, a.GetVariant(), want)
		}
		if a.GetTestId() != banner && got.Value != a.GetVariant() {
			t.Errorf("%s %s: value %v, want the variant %q", l.Unit, a.GetTestId(), got.Value, a.GetVariant())
		}
	}
}

// checkJSCases checks the script's single evaluations.
func checkJSCases(t *testing.T, cases map[string]jsDetails) {
	t.Helper()
	want := map[string]string{ // case → "value reason errorCode"
		"winner":              "treatment STATIC ",
		"winner again":        "treatment CACHED ",
		"unknown":             "default ERROR FLAG_NOT_FOUND",
		"number":              "7 ERROR TYPE_MISMATCH",
		"boolean of checkout": "true ERROR TYPE_MISMATCH",
		"no targetingKey":     "default ERROR ",
		"winner deleted":      "default ERROR FLAG_NOT_FOUND",
	}
	for name, w := range want {
		got, ok := cases[name]
		if !ok {
			t.Errorf("%s: not evaluated", name)
			continue
		}
		g := fmt.Sprintf("%v %s %s", got.Value, got.Reason, got.ErrorCode)
		if name == "no targetingKey" {
			if !strings.HasPrefix(g, w) || got.ErrorCode == "" {
				t.Errorf("%s: %q, want the default value with an error", name, g)
			}
			continue
		}
		if g != w {
			t.Errorf("%s: %q, want %q", name, g, w)
		}
	}
}
