package daemon

import (
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

// memoryCheck is how often abmeshd looks whether it has gone quiet.
const memoryCheck = 10 * time.Second

// memoryReturner gives the heap's free memory back to the operating
// system once abmeshd goes quiet. Under load the garbage collector runs
// often and the runtime returns memory in the background; when a load
// stops, nothing allocates, no collection runs, and the memory of the
// traces and requests just released stays resident until the runtime's
// two-minute forced collection and its slow scavenger. So when a check
// finds that no collection ran since the last one, it runs
// debug.FreeOSMemory (a collection and a full scavenge) — once per quiet
// period: a busy abmeshd never pays for it, an idle one pays once (two
// collections of what is left: the live data of an idle abmeshd).
type memoryReturner struct {
	cycles   uint64 // collections counted at the last check
	returned bool   // FreeOSMemory ran since collections last advanced
	sample   []rtmetrics.Sample
}

func newMemoryReturner() *memoryReturner {
	m := &memoryReturner{sample: []rtmetrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}}
	m.cycles = m.gcCycles()
	return m
}

// check runs FreeOSMemory when no collection ran since the last check
// and it has not run since collections last advanced; it reports
// whether it ran.
func (m *memoryReturner) check() bool {
	c := m.gcCycles()
	if c != m.cycles {
		m.cycles, m.returned = c, false
		return false
	}
	if m.returned {
		return false
	}
	// Two collections: the first moves pooled buffers (sync.Pool, gRPC's
	// buffer pools) to the pools' victim caches, the second frees them.
	runtime.GC()
	debug.FreeOSMemory()
	m.cycles, m.returned = m.gcCycles(), true
	return true
}

func (m *memoryReturner) gcCycles() uint64 {
	rtmetrics.Read(m.sample)
	return m.sample[0].Value.Uint64()
}
