package client

import (
	"context"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc/metadata"
)

// DefaultBaggageKey is the W3C baggage member that carries the unit id
// from service to service.
const DefaultBaggageKey = "abmesh.unit"

// UnitHeader is the gRPC metadata header that also carries the unit id:
// the client interceptors set it, and the server interceptors read it when
// the request's baggage has no unit (a caller without OpenTelemetry, or a
// service whose propagator lacks baggage). Baggage wins when both are set.
//
// It shares the "x-abmesh-" prefix of the mesh routing headers
// (assign.HeaderName), so a test with id "unit" would collide with it; the
// client interceptors never emit a routing header for such a test.
const UnitHeader = "x-abmesh-unit"

// Propagator returns the composite W3C TraceContext + Baggage propagator.
// The unit travels in baggage, and otelgrpc uses the global propagator,
// which is a no-op until set, so a service installs this one at start:
//
//	otel.SetTextMapPropagator(client.Propagator())
//
// or passes it to otelgrpc.WithPropagators on both its server and client
// handlers. Without the Baggage part the unit does not reach the next
// service through baggage (only through UnitHeader, where the client
// interceptor is installed).
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// WithUnit returns a copy of ctx whose W3C baggage carries unit under
// DefaultBaggageKey, replacing an existing member. The propagator
// percent-encodes the value on the wire as the W3C Baggage spec requires
// (a unit may hold any UTF-8, including ',', ';', '=' and spaces), and
// decodes it on extraction, so UnitFromContext in the next service returns
// unit unchanged. An empty unit or one that is not valid UTF-8 (baggage
// values must be) leaves ctx unchanged. The unit is not validated
// otherwise: a unit that assign.ValidateUnit rejects (over 256 bytes)
// propagates but gets the fallback where it is evaluated.
func WithUnit(ctx context.Context, unit string) context.Context {
	return withUnit(ctx, DefaultBaggageKey, unit)
}

// UnitFromContext returns the unit in ctx's baggage under
// DefaultBaggageKey, and whether there is a non-empty one. It reads only
// baggage: in a server, baggage is in ctx once otelgrpc's stats handler
// has extracted it with a propagator that includes propagation.Baggage
// (see Propagator).
func UnitFromContext(ctx context.Context) (string, bool) {
	return unitFromBaggage(ctx, DefaultBaggageKey)
}

func withUnit(ctx context.Context, key, unit string) context.Context {
	if unit == "" {
		return ctx
	}
	m, err := baggage.NewMemberRaw(key, unit)
	if err != nil {
		return ctx
	}
	b, err := baggage.FromContext(ctx).SetMember(m)
	if err != nil {
		return ctx
	}
	return baggage.ContextWithBaggage(ctx, b)
}

func unitFromBaggage(ctx context.Context, key string) (string, bool) {
	v := baggage.FromContext(ctx).Member(key).Value()
	return v, v != ""
}

// unitFromMetadata returns the first UnitHeader of the incoming metadata.
func unitFromMetadata(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, UnitHeader); len(v) > 0 {
		return v[0]
	}
	return ""
}

// headerSafe reports whether s may be sent as a gRPC ASCII header value
// (printable ASCII); grpc-go fails the call otherwise.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
