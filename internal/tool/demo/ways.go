package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	of "github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
	aof "github.com/abmesh/abmesh/assign/openfeature"
	"github.com/abmesh/abmesh/internal/daemon"
)

// Way is how a service of the mesh gets the variants of the tests it
// changes. Every way records the same feature_flag.evaluation span event,
// so the trace consumer attributes them alike.
type Way int

const (
	// WaySDK: the abmesh SDK's server interceptor evaluates the service's
	// tests (assign/client).
	WaySDK Way = iota
	// WayOpenFeature: the service evaluates its tests through the
	// OpenFeature API with abmesh's provider (assign/openfeature).
	WayOpenFeature
	// WayEdge: the edge in front of the mesh calls abmeshd's forward-auth
	// endpoint, as a proxy does (nginx auth_request, Envoy ext_authz), and
	// copies its x-abmesh-<test> headers onto the request; the service
	// takes its variants from them and records them
	// (client.RecordEvaluation).
	WayEdge
	numWays
)

var wayNames = [numWays]string{WaySDK: "sdk", WayOpenFeature: "openfeature", WayEdge: "edge"}

// String returns sdk, openfeature or edge.
func (w Way) String() string {
	if w >= 0 && w < numWays {
		return wayNames[w]
	}
	return fmt.Sprintf("Way(%d)", int(w))
}

// DefaultWays is the demo's choice of ways by service: the frontend, the
// service behind the edge, takes its tests' variants from forward-auth's
// headers; the ad service evaluates through OpenFeature; every other
// service uses the SDK.
func DefaultWays() map[string]Way {
	return map[string]Way{"frontend": WayEdge, "ad": WayOpenFeature}
}

// edgeUnitHeader is the trusted header that carries the user id to the
// forward-auth endpoint, as a proxy in front of a logged-in shop sets it
// (abmeshd's --edge-unit-header): the demo's users have ids of their own,
// not minted cookies.
const edgeUnitHeader = "x-shop-user"

// edgeCaller calls abmeshd's forward-auth endpoint once per request, as a
// proxy does, for the service behind the edge.
type edgeCaller struct {
	url     string // the endpoint, with ?service=<service>
	token   string // abmeshd's client role, sent as a proxy does; "" for none
	http    *http.Client
	failed  atomic.Int64
	service string
}

func newEdgeCaller(addr, service string, conns int, token string) *edgeCaller {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conns
	return &edgeCaller{url: "http://" + addr + "/auth?service=" + service, service: service, token: token, http: &http.Client{Transport: tr}}
}

// headers asks the endpoint for unit's variants and returns them as
// outgoing gRPC metadata pairs: x-abmesh-<test>: <variant>… and
// x-abmesh-unit. A refusal (400) or a failure is an error: the demo counts
// the request as failed rather than failing open, so that a broken edge
// shows.
func (e *edgeCaller) headers(ctx context.Context, unit string) ([]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(edgeUnitHeader, unit)
	if e.token != "" {
		req.Header.Set(daemon.EdgeTokenHeader, e.token)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.failed.Add(1)
		return nil, fmt.Errorf("forward-auth: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		e.failed.Add(1)
		return nil, fmt.Errorf("forward-auth: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var kv []string
	for k, vs := range resp.Header {
		if k = strings.ToLower(k); strings.HasPrefix(k, assign.HeaderPrefix) && len(vs) > 0 {
			kv = append(kv, k, vs[0])
		}
	}
	return kv, nil
}

func (e *edgeCaller) close() { e.http.CloseIdleConnections() }

// serviceTests returns the tests the service changes that can be served
// (not drafts) in the configuration eng, in its order.
func serviceTests(eng *assign.Engine, service string) []*assign.Experiment {
	if eng == nil {
		return nil
	}
	var out []*assign.Experiment
	cfg := eng.Config()
	for i := range cfg.Experiments {
		if x := &cfg.Experiments[i]; x.ChangeService == service && x.Status != assign.StatusDraft {
			out = append(out, x)
		}
	}
	return out
}

// fromEdge returns the variants of the service's tests for the request in
// ctx: from the edge's headers in ctx's incoming metadata where the edge's
// variant is randomized (edgeServable), recorded on ctx's span as the SDK
// records an evaluation (client.RecordEvaluation) with the test's phase
// from the service's configuration; the others through the SDK's
// evaluation (client.Snapshot.Evaluate, which records too), each counted
// in n.evals under its way.
func (n *node) fromEdge(ctx context.Context, unit string) []assign.Assignment {
	md, _ := metadata.FromIncomingContext(ctx)
	span := trace.SpanFromContext(ctx)
	snap := n.sdk.Snapshot()
	eng := snap.Engine()
	var out []assign.Assignment
	for _, x := range serviceTests(eng, n.name) {
		vs := md.Get(assign.HeaderName(x.ID))
		if len(vs) == 0 || !edgeServable(eng, x, unit) {
			a, _ := snap.Evaluate(ctx, x.ID, unit, unitAttributes(ctx))
			n.evals[WaySDK].Add(1)
			out = append(out, a)
			continue
		}
		a := assign.Assignment{Test: x.ID, Variant: vs[0], Phase: x.Phase, Reason: assign.ReasonHash}
		if x.Sticky {
			a.Reason = assign.ReasonSticky
		}
		client.RecordEvaluation(span, unit, a)
		n.evals[WayEdge].Add(1)
		out = append(out, a)
	}
	return out
}

// edgeServable reports whether forward-auth's variant of x for unit was
// randomized, so that it is recorded with reason HASH (STICKY for a
// sticky test): the edge's headers carry variants, not reasons, and
// forward-auth serves running tests only, so that holds for a running test
// without targeting or a layer slice in which unit has no override.
func edgeServable(eng *assign.Engine, x *assign.Experiment, unit string) bool {
	if x.Status != assign.StatusRunning || len(x.Targeting) > 0 || x.Layer != "" {
		return false
	}
	for _, o := range eng.Config().Overrides {
		if o.Experiment == x.ID && o.Unit == unit {
			return false
		}
	}
	return true
}

// startOpenFeature gives n an OpenFeature client over abmesh's provider
// for abmeshd at target, in an OpenFeature API instance of its own (not
// the process-wide one), and n.sdk the provider's client.Client, for the
// unit and the configuration.
func (n *node) startOpenFeature(ctx context.Context, target string, opts ...client.Option) error {
	p, err := aof.New(target, n.name, aof.WithClientOptions(opts...))
	if err != nil {
		return err
	}
	api := isolated.NewAPI()
	n.closers = append(n.closers, func() error { return api.Shutdown(context.Background()) })
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		return err
	}
	n.sdk, n.flags = p.Client(), api.NewClient()
	return nil
}

// viaOpenFeature evaluates the service's tests through the OpenFeature
// client, as string flags with the unit as targeting key and the unit's
// attributes; the provider records each evaluation on ctx's span.
func (n *node) viaOpenFeature(ctx context.Context, unit string) []assign.Assignment {
	attrs := map[string]any{}
	for k, v := range unitAttributes(ctx) {
		attrs[k] = v
	}
	ec := of.NewEvaluationContext(unit, attrs)
	var out []assign.Assignment
	for _, x := range serviceTests(n.sdk.Engine(), n.name) {
		d, err := n.flags.StringValueDetails(ctx, x.ID, x.Variants[0].Name, ec)
		if err != nil || d.Variant == "" {
			continue
		}
		n.evals[WayOpenFeature].Add(1)
		out = append(out, assign.Assignment{Test: x.ID, Variant: d.Value, Phase: x.Phase})
	}
	return out
}

// testWays returns the way each test of eng is served: its change
// service's way in ways (WaySDK when not named).
func testWays(eng *assign.Engine, ways map[string]Way) map[string]Way {
	out := map[string]Way{}
	cfg := eng.Config()
	for i := range cfg.Experiments {
		x := &cfg.Experiments[i]
		out[x.ID] = ways[x.ChangeService]
	}
	return out
}
