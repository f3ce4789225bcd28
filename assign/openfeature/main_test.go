package openfeature_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.uber.org/goleak"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/assign/client"
	abmeshof "github.com/abmesh/abmesh/assign/openfeature"
	"github.com/abmesh/abmesh/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fastBackoff keeps reconnection tests short.
var fastBackoff = client.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2, Jitter: 0.2}

// newProvider starts a provider on abmeshd at target for service "shop"
// with fast reconnection and silent logs; it is shut down when t ends.
func newProvider(t *testing.T, target string, opts ...abmeshof.Option) *abmeshof.Provider {
	t.Helper()
	opts = append([]abmeshof.Option{abmeshof.WithClientOptions(
		client.WithBackoff(fastBackoff), client.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))}, opts...)
	p, err := abmeshof.New(target, "shop", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	return p
}

// install makes p the OpenFeature default provider, waiting for it, and
// resets the OpenFeature API when t ends.
func install(t *testing.T, p of.FeatureProvider) *of.Client {
	t.Helper()
	t.Cleanup(of.Shutdown)
	if err := of.SetProviderAndWait(p); err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	return of.NewDefaultClient()
}

// exp returns a valid experiment changed and measured on service "shop".
func exp(id string, variants ...string) *assign.Experiment {
	if len(variants) == 0 {
		variants = []string{"control", "treatment"}
	}
	x := &assign.Experiment{ID: id, Owner: "team", ChangeService: "shop", MeasureService: "shop", Plan: assign.Plan{MDE: 1}}
	for _, v := range variants {
		x.Variants = append(x.Variants, assign.Variant{Name: v, Weight: 1})
	}
	return x
}

// eventually is testkit.Eventually.
func eventually(t *testing.T, what string, cond func() bool) { testkit.Eventually(t, what, cond) }

// recorder is an in-memory span exporter behind a tracer provider.
type recorder struct {
	exp *tracetest.InMemoryExporter
	tp  *sdktrace.TracerProvider
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{exp: tracetest.NewInMemoryExporter()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(r.exp), sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("shop"))))
	t.Cleanup(func() { r.tp.Shutdown(context.Background()) })
	return r
}

// events runs f with a context holding a fresh recording span and returns
// the attributes of the flag evaluation events f recorded on it.
func (r *recorder) events(f func(ctx context.Context)) []map[string]string {
	r.exp.Reset()
	ctx, span := r.tp.Tracer("test").Start(context.Background(), "handle")
	f(ctx)
	span.End()
	var out []map[string]string
	for _, e := range r.exp.GetSpans()[0].Events {
		if e.Name == client.EventName {
			out = append(out, attrMap(e.Attributes))
		}
	}
	return out
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}
