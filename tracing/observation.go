package tracing

import "time"

// Edge is a caller → callee dependency between two services with its call
// count: in an Observation, how many parent→child span pairs of the trace
// made the call; in a GraphSnapshot, how many calls the graph's window
// holds; from an external source (Jaeger's GetDependencies), its count for
// the period read. It is the one edge type of the tracing, subset and
// graph APIs.
type Edge struct {
	Caller string `json:"caller"`
	Callee string `json:"callee"`
	Calls  uint64 `json:"calls"`
}

// Exposure is one test's variant served on a request's path.
type Exposure struct {
	Test    string
	Variant string
	Service string // the service whose span recorded the evaluation
	Phase   int    // feature_flag.version, 0 when absent
	Reason  string // feature_flag.result.reason, lower case, "" when absent
}

// Conflict is a test that was served with more than one variant in one
// trace.
type Conflict struct {
	Test     string
	Variants []string
}

// ServiceMetrics are the metric values one service's spans give for a trace.
type ServiceMetrics struct {
	Service string
	// LatencyMS is the duration of the service's first server span (the
	// first span of the service when it has no server span).
	LatencyMS float64
	// Error is true when that span's status is error.
	Error bool
	// Attributes are the numeric attributes of the service's spans; the
	// first value seen for a key wins.
	Attributes map[string]float64
}

// Observation is what one completed trace says about one request: who made
// it, where it went, which variants it was served and what it measured.
type Observation struct {
	TraceID   string // 32 lower-case hex digits
	Unit      string // the unit id, "" when the trace carried none
	Start     time.Time
	Services  []string // sorted, unique
	Edges     []Edge   // sorted by caller, then callee
	Exposures []Exposure
	Conflicts []Conflict
	Metrics   []ServiceMetrics // sorted by service
}

// Metric returns the value of metric key on service's spans: key is
// "latency_ms", "error" (1 or 0) or "attribute:<name>". ok is false when the
// service is not on the path or the attribute is absent.
func (o *Observation) Metric(service, key string) (v float64, ok bool) {
	for i := range o.Metrics {
		m := &o.Metrics[i]
		if m.Service != service {
			continue
		}
		switch {
		case key == "latency_ms":
			return m.LatencyMS, true
		case key == "error":
			if m.Error {
				return 1, true
			}
			return 0, true
		case len(key) > len("attribute:") && key[:len("attribute:")] == "attribute:":
			v, ok = m.Attributes[key[len("attribute:"):]]
			return v, ok
		}
		return 0, false
	}
	return 0, false
}

// Consumer receives completed observations. ConsumeObservation must be safe
// for concurrent use.
type Consumer interface {
	ConsumeObservation(o *Observation)
}

// ConsumerFunc adapts a function to Consumer.
type ConsumerFunc func(o *Observation)

// ConsumeObservation calls f(o).
func (f ConsumerFunc) ConsumeObservation(o *Observation) { f(o) }
