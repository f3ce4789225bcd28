package tracing

import (
	"encoding/hex"
	"strings"
	"time"
)

// TraceID is a W3C / OpenTelemetry trace id. The zero value is invalid.
type TraceID [16]byte

// String returns the id as 32 lower-case hex digits.
func (t TraceID) String() string { return hex.EncodeToString(t[:]) }

// IsZero reports whether t is all zero bytes (an invalid trace id).
func (t TraceID) IsZero() bool { return t == TraceID{} }

// SpanID is a W3C / OpenTelemetry span id. The zero value means "no span"
// (for a parent id: the span is a root).
type SpanID [8]byte

// String returns the id as 16 lower-case hex digits.
func (s SpanID) String() string { return hex.EncodeToString(s[:]) }

// IsZero reports whether s is all zero bytes.
func (s SpanID) IsZero() bool { return s == SpanID{} }

// ParseTraceID parses up to 32 hex digits (upper or lower case); shorter
// strings are left-padded with zeros, as Jaeger writes 64-bit trace ids.
// ok is false for empty, over-long or non-hex input.
func ParseTraceID(s string) (id TraceID, ok bool) {
	return id, parseHexID(id[:], s)
}

// ParseSpanID parses up to 16 hex digits, left-padding shorter input with
// zeros. ok is false for empty, over-long or non-hex input.
func ParseSpanID(s string) (id SpanID, ok bool) {
	return id, parseHexID(id[:], s)
}

func parseHexID(dst []byte, s string) bool {
	if len(s) == 0 || len(s) > 2*len(dst) {
		return false
	}
	var buf [32]byte
	pad := 2*len(dst) - len(s)
	for i := 0; i < pad; i++ {
		buf[i] = '0'
	}
	copy(buf[pad:], s)
	_, err := hex.Decode(dst, buf[:2*len(dst)])
	return err == nil
}

// SpanKind is the role of a span in a call, as in OpenTelemetry.
type SpanKind uint8

// Span kinds.
const (
	KindUnspecified SpanKind = iota
	KindInternal
	KindServer
	KindClient
	KindProducer
	KindConsumer
)

var kindNames = [...]string{"unspecified", "internal", "server", "client", "producer", "consumer"}

// String returns the lower-case kind name ("server", "client", ...).
func (k SpanKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unspecified"
}

// ParseSpanKind maps a kind name as Jaeger writes it in the span.kind tag
// ("server", "client", "producer", "consumer", "internal"; any case) to a
// SpanKind. Anything else is KindUnspecified.
func ParseSpanKind(s string) SpanKind {
	for i, n := range kindNames {
		if strings.EqualFold(s, n) {
			return SpanKind(i)
		}
	}
	return KindUnspecified
}

// AttrType is the type of an attribute value.
type AttrType uint8

// Attribute value types. Int, Float and Bool values are numeric: their
// value is in Attr.Num (a Bool is 1 or 0).
const (
	AttrString AttrType = iota
	AttrInt
	AttrFloat
	AttrBool
)

// Attr is one span or event attribute. For AttrString the value is Str;
// for the numeric types it is Num.
type Attr struct {
	Key  string
	Type AttrType
	Str  string
	Num  float64
}

// StringAttr returns a string attribute.
func StringAttr(key, v string) Attr { return Attr{Key: key, Type: AttrString, Str: v} }

// IntAttr returns an integer attribute (held as float64; integers beyond
// 2^53 lose precision).
func IntAttr(key string, v int64) Attr { return Attr{Key: key, Type: AttrInt, Num: float64(v)} }

// FloatAttr returns a floating-point attribute.
func FloatAttr(key string, v float64) Attr { return Attr{Key: key, Type: AttrFloat, Num: v} }

// BoolAttr returns a boolean attribute (Num 1 for true, 0 for false).
func BoolAttr(key string, v bool) Attr {
	a := Attr{Key: key, Type: AttrBool}
	if v {
		a.Num = 1
	}
	return a
}

// IsNumeric reports whether the value is numeric (int, float or bool).
func (a Attr) IsNumeric() bool { return a.Type != AttrString }

// Event is a timestamped annotation on a span (an OpenTelemetry span event,
// a Jaeger log whose `event` field is the name).
type Event struct {
	Name  string
	Time  time.Time
	Attrs []Attr
}

// Span is one span of a distributed trace in abmesh's own model, whatever
// format it came in. Converters fill it; the Assembler owns it once added.
type Span struct {
	TraceID  TraceID
	SpanID   SpanID
	ParentID SpanID // zero for a root span
	Service  string // the resource's service.name / Jaeger process serviceName
	Name     string // operation name
	Kind     SpanKind
	Start    time.Time
	End      time.Time
	Error    bool // status is error
	Attrs    []Attr
	Events   []Event
}

// Duration returns End - Start.
func (s *Span) Duration() time.Duration { return s.End.Sub(s.Start) }

// Attr returns the first attribute named key.
func (s *Span) Attr(key string) (Attr, bool) { return findAttr(s.Attrs, key) }

func findAttr(attrs []Attr, key string) (Attr, bool) {
	for i := range attrs {
		if attrs[i].Key == key {
			return attrs[i], true
		}
	}
	return Attr{}, false
}

// Attribute keys and event names the consumer reads.
const (
	// UnitAttribute is the span attribute carrying the unit id; it is also
	// the W3C baggage key, which the OpenTelemetry baggage-copy span
	// processor turns into a span attribute of the same name.
	UnitAttribute = "abmesh.unit"
	// BaggageUnitAttribute is the unit attribute as baggage processors that
	// prefix baggage keys write it.
	BaggageUnitAttribute = "baggage.abmesh.unit"

	// EventFlagEvaluation is the current OpenTelemetry feature-flag event.
	EventFlagEvaluation = "feature_flag.evaluation"
	// EventFlagLegacy is the older OpenTelemetry feature-flag event.
	EventFlagLegacy = "feature_flag"

	AttrFlagKey          = "feature_flag.key"
	AttrFlagVariant      = "feature_flag.result.variant"
	AttrFlagVariantOld   = "feature_flag.variant"
	AttrFlagContextID    = "feature_flag.context.id"
	AttrFlagProvider     = "feature_flag.provider.name"
	AttrFlagProviderOld  = "feature_flag.provider_name"
	AttrFlagVersion      = "feature_flag.version"
	AttrFlagResultReason = "feature_flag.result.reason"
	// AttrAbmeshReason is the abmesh SDK's own reason on a feature-flag
	// event ("HASH", "OVERRIDE", "NOT_IN_SLICE", …). It is more precise
	// than the OpenTelemetry reason (which maps several abmesh reasons to
	// "default") and takes precedence over it.
	AttrAbmeshReason = "abmesh.reason"
)

// KeepAttr reports whether converters keep an attribute: every numeric
// (int, float, bool) attribute, and string attributes whose key starts with
// "abmesh.", "feature_flag." or "baggage." — the only ones the consumer
// reads. Other string attributes (URLs, SQL, user agents) are not kept, to
// bound memory.
func KeepAttr(key string, numeric bool) bool {
	if numeric {
		return true
	}
	return strings.HasPrefix(key, "abmesh.") || strings.HasPrefix(key, "feature_flag.") ||
		strings.HasPrefix(key, "baggage.")
}

// KeepEvent reports whether converters keep a span event: only
// feature-flag events (names starting with "feature_flag").
func KeepEvent(name string) bool { return strings.HasPrefix(name, EventFlagLegacy) }
