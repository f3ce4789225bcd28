package daemon

import (
	"sync/atomic"

	"github.com/abmesh/abmesh/assign"
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
