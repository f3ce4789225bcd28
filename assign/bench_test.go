package assign

import (
	"fmt"
	"testing"
)

// benchConfig returns n running experiments with 2 variants each. With
// mixed set, every 4th is layered, every 4th (offset 1) targeted.
func benchConfig(n int, mixed bool) Config {
	var cfg Config
	if mixed {
		cfg.Layers = []Layer{{ID: "layer"}}
	}
	for i := range n {
		x := testExp(fmt.Sprintf("exp-%03d", i))
		x.ChangeService = fmt.Sprintf("svc-%d", i%10)
		if mixed {
			switch i % 4 {
			case 0:
				x.Layer, x.Slice = "layer", Slice{uint32(i), uint32(i + 1)}
			case 1:
				x.Targeting = []Rule{{"grade", OpIn, []string{"vip", "gold"}}}
			}
		}
		cfg.Experiments = append(cfg.Experiments, x)
	}
	return cfg
}

// BenchmarkAppendAssignments evaluates one unit against 1, 10 and 100
// running experiments with a reused slice. ns/test is the time per
// experiment.
//
//	go test ./assign/ -run '^$' -bench AppendAssignments -benchmem
func BenchmarkAppendAssignments(b *testing.B) {
	attrs := map[string]string{"grade": "vip", "country": "de"}
	for _, mixed := range []bool{false, true} {
		for _, n := range []int{1, 10, 100} {
			name := fmt.Sprintf("tests=%d", n)
			if mixed {
				name += "/mixed"
			}
			b.Run(name, func(b *testing.B) {
				e := mustCompile(b, benchConfig(n, mixed))
				buf := make([]Assignment, 0, n)
				units := make([]string, 1024)
				for i := range units {
					units[i] = unitID(i + 1_000_000)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					buf = e.AppendAssignments(buf[:0], units[i&1023], attrs, Filter{})
					i++
				}
				if len(buf) != n {
					b.Fatalf("%d assignments", len(buf))
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/test")
			})
		}
	}
}

// BenchmarkEvaluate is the validating, allocating API (one result slice
// per call), for comparison.
func BenchmarkEvaluate(b *testing.B) {
	e := mustCompile(b, benchConfig(10, false))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Evaluate("user-123456", nil, Filter{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServiceFilter evaluates the 10 of 100 experiments one service
// changes.
func BenchmarkServiceFilter(b *testing.B) {
	e := mustCompile(b, benchConfig(100, false))
	buf := make([]Assignment, 0, 100)
	b.ReportAllocs()
	for b.Loop() {
		buf = e.AppendAssignments(buf[:0], "user-123456", nil, Filter{Service: "svc-3"})
	}
	if len(buf) != 10 {
		b.Fatalf("%d assignments", len(buf))
	}
}

func BenchmarkSticky(b *testing.B) {
	x := testExp("exp")
	x.Sticky = true
	e := mustCompile(b, Config{Experiments: []Experiment{x}}, WithSticky(&MemSticky{}))
	buf := make([]Assignment, 0, 1)
	e.AppendAssignments(buf, "user-123456", nil, Filter{})
	b.ReportAllocs()
	for b.Loop() {
		buf = e.AppendAssignments(buf[:0], "user-123456", nil, Filter{})
	}
}

func BenchmarkHash(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = HashBucket("checkout-v2", "user-123456", 100)
	}
}

func BenchmarkCompile100(b *testing.B) {
	cfg := benchConfig(100, true)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
