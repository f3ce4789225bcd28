package demo

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"
)

// TestDemoEndToEnd runs the whole demo briefly — abmeshd, the ten-service
// mesh over real gRPC and OTLP, the shop's experiments, simulated users —
// and checks the outcome against the configured ground truth.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end demo skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var progress io.Writer = io.Discard
	if testing.Verbose() {
		progress = os.Stderr
	}
	res, err := Run(ctx, Config{
		// Latency is real time: on a loaded 2-core machine its spread, and
		// so the users catalog-cache needs, grows; the budget allows it.
		Duration: 150 * time.Second, Warmup: 2 * time.Second, Seed: 3,
		DataDir: t.TempDir(), Progress: progress,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		WriteSummary(os.Stderr, res)
	}

	if !res.Complete {
		t.Errorf("not every report reached COMPLETE within the budget")
	}
	if res.Errors != 0 {
		t.Errorf("%d user requests failed", res.Errors)
	}
	if !res.Authenticated {
		t.Error("abmeshd ran without authentication: the demo's SDKs, exporters and edge must hold tokens")
	}
	checkSubsets(t, res)
	checkTruth(t, res)
	checkUnits(t, res)
	checkSpans(t, res)
	checkServedWays(t, res)
}

// checkServedWays: all three ways of getting a variant served evaluations —
// the SDK, OpenFeature and the edge's forward-auth headers —, each one
// reached abmeshd as a feature-flag event on an acknowledged span, and the
// reports of the tests each served counted units with no served variant
// the consumer disagreed with (a variant not the hash's, another phase, a
// fallback, two variants in one request).
func checkServedWays(t *testing.T, res *Result) {
	t.Helper()
	for w := range numWays {
		if res.Evaluations[w] == 0 {
			t.Errorf("no evaluation served by %s", w)
		}
		var tests []string
		for id, tw := range res.Ways {
			if tw == w {
				tests = append(tests, id)
			}
		}
		if len(tests) == 0 {
			t.Errorf("no test served by %s", w)
		}
		var events int64
		for _, id := range tests {
			events += res.FlagEvents[id]
		}
		if events != res.Evaluations[w] {
			t.Errorf("%s served %d evaluations of %v; abmeshd acknowledged spans with %d evaluation events of them", w, res.Evaluations[w], tests, events)
		}
		for _, id := range tests {
			r := res.Reports[id]
			if r == nil {
				t.Errorf("%s (%s): no report", id, w)
				continue
			}
			q := r.Window.Quality
			if r.Table.N() == 0 || q.Mismatch+q.StalePhase+q.Fallback+q.Conflict != 0 {
				t.Errorf("%s (%s): %d units; mismatch %d, stale phase %d, fallback %d, conflict %d", id, w, r.Table.N(),
					q.Mismatch, q.StalePhase, q.Fallback, q.Conflict)
			}
		}
	}
}

// checkSubsets: the interacting pair is together, the lone test alone.
func checkSubsets(t *testing.T, res *Result) {
	t.Helper()
	members := func(id string) []string {
		r := res.Reports[id]
		if r == nil {
			t.Fatalf("no report for %s", id)
		}
		var out []string
		for _, m := range r.Window.Members {
			out = append(out, m.Test)
		}
		return out
	}
	if m := members("rec-model"); !slices.Contains(m, "ui-layout") {
		t.Errorf("rec-model's subset %v lacks ui-layout", m)
	}
	if m := members("ui-layout"); !slices.Contains(m, "rec-model") {
		t.Errorf("ui-layout's subset %v lacks rec-model", m)
	}
	if m := members("ad-ranker"); len(m) != 1 {
		t.Errorf("ad-ranker's subset is %v, want it alone", m)
	}
}

// checkTruth: every viewpoint's true main effect lies in its interval
// (latency is real time on a shared machine: its truth, the sleep
// difference, gets a 0.5 ms allowance for scheduling overhead), and the
// real interaction is detected in both viewpoints that model it.
func checkTruth(t *testing.T, res *Result) {
	t.Helper()
	seen := map[string]bool{}
	for _, row := range res.Rows {
		if row.Variant == "" || row.Term != row.Report {
			continue
		}
		seen[row.Report] = true
		slack := 0.0
		if res.Reports[row.Report].Metric == "latency_ms" {
			slack = 0.5
		}
		if row.Truth < row.Lo-slack || row.Truth > row.Hi+slack {
			t.Errorf("%s=%s: truth %.3f outside [%.3f, %.3f] (estimate %.3f)", row.Term, row.Variant, row.Truth, row.Lo, row.Hi, row.Estimate)
		}
	}
	if len(seen) != len(res.Reports) {
		t.Errorf("main effects checked for %d of %d reports", len(seen), len(res.Reports))
	}

	detected := 0
	for _, row := range res.Rows {
		if (row.Term == "rec-model:ui-layout" || row.Term == "ui-layout:rec-model") && row.Significant && row.Covered {
			detected++
		}
	}
	if detected != 2 {
		t.Errorf("the rec-model × ui-layout interaction was detected (and covered) in %d reports, want 2", detected)
	}
}

// checkUnits: users make sessions, and every report analyses users: each
// counts fewer users than requests, and no sample-ratio check fires.
func checkUnits(t *testing.T, res *Result) {
	t.Helper()
	if res.Users == 0 || float64(res.Requests) < 2*float64(res.Users) {
		t.Errorf("%d users made %d requests; want sessions of about 4", res.Users, res.Requests)
	}
	for id, r := range res.Reports {
		units, requests := r.Table.N(), windowRequests(r.Window)
		if units == 0 || float64(requests) < 1.3*float64(units) {
			t.Errorf("%s: %d units over %d requests; want the units of repeat traffic", id, units, requests)
		}
		if r.SRMFlagged {
			t.Errorf("%s: sample ratio mismatch flagged on a correct split", id)
		}
	}
}

// checkSpans: no acknowledged span was lost, the consumer's counts add
// up, and every user request (and warm-up one) became an observation.
func checkSpans(t *testing.T, res *Result) {
	t.Helper()
	c := res.Counters
	if res.SpansFailed != 0 {
		t.Errorf("%d spans failed to export", res.SpansFailed)
	}
	if res.SpansAcked == 0 || uint64(res.SpansAcked) > c.SpansReceived {
		t.Errorf("spans acknowledged %d, received %d", res.SpansAcked, c.SpansReceived)
	}
	if c.SpansReceived != c.SpansAccepted+c.SpansLate+c.MalformedTotal() {
		t.Errorf("received %d ≠ accepted %d + late %d + malformed %d", c.SpansReceived, c.SpansAccepted, c.SpansLate, c.MalformedTotal())
	}
	if c.TracesInFlight != 0 || c.SpansRejectedFull != 0 {
		t.Errorf("in flight %d, rejected full %d", c.TracesInFlight, c.SpansRejectedFull)
	}
	if c.ObservationsEmitted < uint64(res.Requests) {
		t.Errorf("observations %d < requests %d", c.ObservationsEmitted, res.Requests)
	}
}
