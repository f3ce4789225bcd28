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

// BenchmarkValidateVariants checks n variants for valid, unique names
// without the MaxVariants limit (the part that was quadratic: 100,000
// variants took 7.5 s). Time per variant stays flat as n grows tenfold.
//
//	go test ./assign/ -run '^$' -bench ValidateVariants
func BenchmarkValidateVariants(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		vs := weights(make([]uint32, n)...)
		vs[0].Weight = 1
		b.Run(fmt.Sprintf("variants=%d", n), func(b *testing.B) {
			for b.Loop() {
				if err := checkVariants(vs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/variant")
		})
	}
}

// BenchmarkConfigValidate validates a whole configuration of n
// experiments (a quarter of them in one layer, where slices are checked
// for overlap; every salt against every other). Time per experiment
// stays flat as n grows.
//
//	go test ./assign/ -run '^$' -bench ConfigValidate
func BenchmarkConfigValidate(b *testing.B) {
	for _, n := range []int{250, 1_000, 4_000} {
		cfg := benchConfig(n, true)
		b.Run(fmt.Sprintf("experiments=%d", n), func(b *testing.B) {
			for b.Loop() {
				if err := cfg.Validate(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/experiment")
		})
	}
}
