package otlpload

import (
	"fmt"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/abmesh/abmesh/subset"
	"github.com/abmesh/abmesh/tracing"
)

// sevenTests is a HashAssigner for seven two-variant tests that all
// change and measure "checkout": every observation through checkout is
// counted in seven viewpoint windows.
type sevenTests struct{}

func (sevenTests) HashVariant(test, unit string) (string, bool) {
	if xxhash.Sum64String(test+"/"+unit)&1 == 0 {
		return "control", true
	}
	return "treatment", true
}

// unitsCounter returns a CellCounter over seven running tests on
// checkout and a consumer that serves each observation the seven tests'
// hash variants (replacing the generator's two flags) and counts it.
func unitsCounter(b *testing.B) (*subset.Windows, tracing.Consumer) {
	b.Helper()
	g, err := subset.NewGraph([]tracing.Edge{{Caller: "frontend", Callee: "checkout", Calls: 1}})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	var tests []subset.Test
	all := []subset.Interference{{Kind: subset.KindLatency, Scope: subset.ScopeAll}}
	for i := range 7 {
		tests = append(tests, subset.Test{ID: fmt.Sprint("t", i), ChangeService: "checkout", MeasureService: "checkout",
			Metric: "latency_ms", Variants: []string{"control", "treatment"}, Phase: 1, PhaseStart: start, Running: true,
			Emits: all, Susceptible: all})
	}
	ws := subset.NewWindows()
	s := subset.NewSubsetter(ws, subset.WithCap(8))
	s.SetGraph(g)
	if err := s.SetTests(tests); err != nil {
		b.Fatal(err)
	}
	c := subset.NewCellCounter(ws, sevenTests{})
	return ws, tracing.ConsumerFunc(func(o *tracing.Observation) {
		o.Exposures = o.Exposures[:0]
		for _, t := range tests {
			v, _ := sevenTests{}.HashVariant(t.ID, o.Unit)
			o.Exposures = append(o.Exposures, tracing.Exposure{Test: t.ID, Variant: v, Service: "checkout", Phase: 1, Reason: "hash"})
		}
		c.ConsumeObservation(o)
	})
}

// BenchmarkReceiverPathUnits is BenchmarkReceiverPath (the same loop)
// with the cells behind it: every completed trace is counted into seven viewpoint
// windows that already hold a million distinct units (the generator's
// unit ids, counted once each before the timer starts).
func BenchmarkReceiverPathUnits(b *testing.B) {
	const units = 1_000_000
	cfg := Config{Endpoint: "x", Duration: time.Second, Units: units}
	cfg.setDefaults()
	ws, consume := unitsCounter(b)
	for i := range units {
		consume.ConsumeObservation(&tracing.Observation{Unit: fmt.Sprintf("user-%010d", i+1),
			Metrics: []tracing.ServiceMetrics{{Service: "checkout", LatencyMS: 1}}})
	}
	g := newGenerator(cfg, 500, 0)
	asm, err := tracing.NewAssembler(tracing.Config{TickInterval: -1}, consume)
	if err != nil {
		b.Fatal(err)
	}
	defer asm.Close()
	spans := receiveLoop(b, g, asm)
	b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
	w, _ := ws.Current("t0")
	var n int64
	for _, c := range w.Cells {
		n += c.Stats.N
	}
	if q := w.Quality; n != units || q.Excluded() != 0 {
		b.Fatalf("t0: %d units, quality %+v; want %d units, none excluded", n, q, units)
	}
}
