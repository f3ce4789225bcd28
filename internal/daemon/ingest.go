package daemon

import (
	"sync/atomic"

	"github.com/abmesh/abmesh/assign"
	"github.com/abmesh/abmesh/tracing/otlpreceiver"
)

// metricKeys is the set of span attributes the experiments' metrics read
// (attribute:<key>): the only numeric attributes the trace assembler
// keeps of a trace in flight (tracing.Config.KeepMetric). It is replaced
// whenever the experiments change; a trace in flight at that moment keeps
// what the set said when its spans arrived.
type metricKeys struct {
	set atomic.Pointer[map[string]struct{}]
}

// update takes the attribute keys of eng's experiments.
func (m *metricKeys) update(eng *assign.Engine) {
	keys := map[string]struct{}{}
	for _, e := range eng.Config().Experiments {
		if e.Metric.Kind == assign.MetricAttribute && e.Metric.Attribute != "" {
			keys[e.Metric.Attribute] = struct{}{}
		}
	}
	m.set.Store(&keys)
}

// keep reports whether key is read by an experiment's metric.
func (m *metricKeys) keep(key string) bool {
	p := m.set.Load()
	if p == nil {
		return false
	}
	_, ok := (*p)[key]
	return ok
}

// DefaultMemoryLimit is abmeshd's --memory-limit: 512 MiB carries
// about 500,000 spans a second of realistic traces with the 5 s idle
// timeout (see MemoryBudget), on less memory than a tracing backend
// receiving the same spans.
const DefaultMemoryLimit = 512 << 20

// MinMemoryLimit is the smallest --memory-limit accepted.
const MinMemoryLimit = 64 << 20

// MemoryBudget is how a memory limit is shared out: the bounds of the
// trace consumer's memory that a user would otherwise compute.
type MemoryBudget struct {
	// OTLPInflightBytes bounds the OTLP requests being read and decoded:
	// an eighth of the limit, at least twice the largest message.
	OTLPInflightBytes int64
	// AssemblyBytes bounds the traces in flight as the assembler charges
	// them (tracing.Config.MaxBytes, about 104 bytes a realistic span): 55%.
	AssemblyBytes int
	// MaxSpans and MaxTraces back AssemblyBytes up for pathological
	// traffic (a span is charged at least 56 bytes, a trace 512): they do
	// not bind before it.
	MaxSpans, MaxTraces int
	// RecentTraces is how many completed trace ids are remembered to
	// recognise late spans: 5% of the limit at 64 bytes an id.
	RecentTraces int
}

// BudgetFor returns the MemoryBudget of limit bytes, for requests of at
// most maxMessage bytes.
func BudgetFor(limit int64, maxMessage int) MemoryBudget {
	asm := int(limit / 100 * 55)
	return MemoryBudget{
		OTLPInflightBytes: max(limit/8, 2*int64(maxMessage)),
		AssemblyBytes:     asm,
		MaxSpans:          asm / 56,
		MaxTraces:         asm / 512,
		RecentTraces:      int(limit / 20 / 64),
	}
}

// applyMemoryLimit sets the bounds c leaves at zero from c.MemoryLimit
// (its default when zero): set bounds override the budget.
func (c *Config) applyMemoryLimit() {
	orDefault(&c.MemoryLimit, DefaultMemoryLimit)
	orDefault(&c.OTLP.MaxMessageBytes, otlpreceiver.DefaultMaxMessageBytes)
	b := BudgetFor(c.MemoryLimit, c.OTLP.MaxMessageBytes)
	orDefault(&c.OTLP.MaxInflightBytes, b.OTLPInflightBytes)
	orDefault(&c.Assembly.MaxBytes, b.AssemblyBytes)
	orDefault(&c.Assembly.MaxSpans, b.MaxSpans)
	orDefault(&c.Assembly.MaxTraces, b.MaxTraces)
	orDefault(&c.Assembly.RecentTraces, b.RecentTraces)
}
