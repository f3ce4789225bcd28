package jaeger

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/abmesh/abmesh/tracing"
	model "github.com/jaegertracing/jaeger-idl/model/v1"
)

// DecodeUIJSON reads a Jaeger UI JSON export — {"data":[{"traceID",
// "spans":[{traceID, spanID, operationName, references:[{refType,
// traceID, spanID}], startTime (µs), duration (µs), tags:[{key, type,
// value}], logs:[{timestamp (µs), fields:[…]}], processID}], "processes":
// {"p1":{"serviceName", tags}}}]} — and converts its spans as Convert does,
// appending them to b. Ids are hex, shorter ids left-padded (64-bit trace
// ids); a span may embed its "process" instead of a processID; the older
// top-level parentSpanID is read when there are no references.
//
// Spans whose ids cannot be parsed are counted in b.Malformed. The error
// is non-nil only when data is not JSON or not of this shape; it is then a
// *json.SyntaxError or *json.UnmarshalTypeError (whose Offset locates the
// problem in data), and b is unchanged.
func DecodeUIJSON(data []byte, b *tracing.Batch) error {
	var doc uiDocument
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	spans := make([]model.Span, 0, 64)
	for ti := range doc.Data {
		tr := &doc.Data[ti]
		procs := make(map[string]*model.Process, len(tr.Processes))
		for id, p := range tr.Processes {
			procs[id] = p.model()
		}
		for si := range tr.Spans {
			us := &tr.Spans[si]
			where := fmt.Sprintf("trace %d span %d: ", ti, si)
			ms, reason, detail, ok := us.model(procs)
			if !ok {
				b.Reject(reason, where+detail)
				continue
			}
			spans = append(spans, ms)
		}
	}
	Convert(spans, b)
	return nil
}

type uiDocument struct {
	Data []uiTrace `json:"data"`
}

type uiTrace struct {
	TraceID   string               `json:"traceID"`
	Spans     []uiSpan             `json:"spans"`
	Processes map[string]uiProcess `json:"processes"`
}

type uiSpan struct {
	TraceID       string       `json:"traceID"`
	SpanID        string       `json:"spanID"`
	ParentSpanID  string       `json:"parentSpanID"`
	OperationName string       `json:"operationName"`
	References    []uiRef      `json:"references"`
	StartTime     uiNumber     `json:"startTime"`
	Duration      uiNumber     `json:"duration"`
	Tags          []uiKeyValue `json:"tags"`
	Logs          []uiLog      `json:"logs"`
	ProcessID     string       `json:"processID"`
	Process       *uiProcess   `json:"process"`
}

type uiRef struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

type uiLog struct {
	Timestamp uiNumber     `json:"timestamp"`
	Fields    []uiKeyValue `json:"fields"`
}

type uiProcess struct {
	ServiceName string       `json:"serviceName"`
	Tags        []uiKeyValue `json:"tags"`
}

type uiKeyValue struct {
	Key   string          `json:"key"`
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// uiNumber is a JSON number or a string holding one.
type uiNumber struct{ text string }

func (n *uiNumber) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		return json.Unmarshal(data, &n.text)
	}
	n.text = string(data)
	return nil
}

// micros returns the value as integer microseconds; ok is false when it is
// not a finite number.
func (n uiNumber) micros() (int64, bool) {
	if v, err := strconv.ParseInt(n.text, 10, 64); err == nil {
		return v, true
	}
	f, err := strconv.ParseFloat(n.text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 9e18 {
		return 0, false
	}
	return int64(f), true
}

// microsTime converts microseconds since the epoch, staying inside the
// range time.Time handles in UnixNano (larger values are rejected later as
// a future start).
func microsTime(us int64) time.Time {
	const maxMicros = math.MaxInt64 / 1000
	us = min(max(us, -maxMicros), maxMicros)
	return time.UnixMicro(us).UTC()
}

func (p uiProcess) model() *model.Process {
	return &model.Process{ServiceName: p.ServiceName, Tags: keyValues(p.Tags)}
}

func (s *uiSpan) model(procs map[string]*model.Process) (model.Span, tracing.Reason, string, bool) {
	var ms model.Span
	tid, ok := parseTraceID(s.TraceID)
	if !ok {
		return ms, tracing.ReasonInvalidTraceID, fmt.Sprintf("traceID %q is not up to 32 hex digits", clip(s.TraceID)), false
	}
	sid, ok := parseSpanID(s.SpanID)
	if !ok {
		return ms, tracing.ReasonInvalidSpanID, fmt.Sprintf("spanID %q is not up to 16 hex digits", clip(s.SpanID)), false
	}
	ms.TraceID, ms.SpanID, ms.OperationName = tid, sid, s.OperationName
	for _, r := range s.References {
		rt, ok := parseTraceID(r.TraceID)
		if !ok {
			rt = tid // UI exports sometimes omit the reference's trace id
		}
		rs, ok := parseSpanID(r.SpanID)
		if !ok {
			return ms, tracing.ReasonInvalidParentID, fmt.Sprintf("reference spanID %q is not up to 16 hex digits", clip(r.SpanID)), false
		}
		ref := model.SpanRef{TraceID: rt, SpanID: rs, RefType: model.SpanRefType_CHILD_OF}
		if strings.EqualFold(r.RefType, "FOLLOWS_FROM") {
			ref.RefType = model.SpanRefType_FOLLOWS_FROM
		}
		ms.References = append(ms.References, ref)
	}
	if len(ms.References) == 0 && s.ParentSpanID != "" && strings.Trim(s.ParentSpanID, "0") != "" {
		ps, ok := parseSpanID(s.ParentSpanID)
		if !ok {
			return ms, tracing.ReasonInvalidParentID, fmt.Sprintf("parentSpanID %q is not up to 16 hex digits", clip(s.ParentSpanID)), false
		}
		ms.References = []model.SpanRef{{TraceID: tid, SpanID: ps}}
	}
	if start, ok := s.StartTime.micros(); ok && start > 0 {
		ms.StartTime = microsTime(start)
		if d, ok := s.Duration.micros(); ok {
			const maxMicros = math.MaxInt64 / 1000
			ms.Duration = time.Duration(min(max(d, -maxMicros), maxMicros)) * time.Microsecond
		}
	}
	ms.Tags = keyValues(s.Tags)
	for _, l := range s.Logs {
		ts, _ := l.Timestamp.micros()
		ms.Logs = append(ms.Logs, model.Log{Timestamp: microsTime(ts), Fields: keyValues(l.Fields)})
	}
	switch {
	case s.Process != nil:
		ms.Process = s.Process.model()
	case procs[s.ProcessID] != nil:
		ms.Process = procs[s.ProcessID]
	}
	return ms, 0, "", true
}

// keyValues converts tags, skipping values that do not match their type.
func keyValues(kvs []uiKeyValue) []model.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]model.KeyValue, 0, len(kvs))
	for _, kv := range kvs {
		m := model.KeyValue{Key: kv.Key}
		ok := false
		switch strings.ToLower(kv.Type) {
		case "string", "":
			m.VType = model.ValueType_STRING
			ok = json.Unmarshal(kv.Value, &m.VStr) == nil
		case "bool":
			m.VType = model.ValueType_BOOL
			if ok = json.Unmarshal(kv.Value, &m.VBool) == nil; !ok {
				var s string
				if json.Unmarshal(kv.Value, &s) == nil {
					m.VBool, ok = strings.EqualFold(s, "true"), true
				}
			}
		case "int64":
			m.VType = model.ValueType_INT64
			var n uiNumber
			if n.UnmarshalJSON(kv.Value) == nil {
				m.VInt64, ok = n.micros() // any integer, not only microseconds
			}
		case "float64":
			m.VType = model.ValueType_FLOAT64
			var n uiNumber
			if n.UnmarshalJSON(kv.Value) == nil {
				v, err := strconv.ParseFloat(n.text, 64)
				m.VFloat64, ok = v, err == nil
			}
		case "binary":
			m.VType = model.ValueType_BINARY
			var s string
			if json.Unmarshal(kv.Value, &s) == nil {
				var err error
				m.VBinary, err = base64.StdEncoding.DecodeString(s)
				ok = err == nil
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func parseTraceID(s string) (model.TraceID, bool) {
	id, ok := tracing.ParseTraceID(s)
	if !ok {
		return model.TraceID{}, false
	}
	return model.TraceID{High: beUint64(id[:8]), Low: beUint64(id[8:])}, true
}

func parseSpanID(s string) (model.SpanID, bool) {
	id, ok := tracing.ParseSpanID(s)
	if !ok {
		return 0, false
	}
	return model.SpanID(beUint64(id[:])), true
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
