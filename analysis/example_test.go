package analysis_test

import (
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/abmesh/abmesh/analysis"
)

// A 2×2 factorial (two A/B tests, "checkout" and "banner") from cell
// statistics alone: n, mean and M2 per cell, as trace consumers collect
// them. No raw rows are needed.
func ExampleAnova() {
	tab, err := analysis.NewCellTable([]analysis.Factor{
		{Name: "checkout", Levels: []string{"control", "new"}},
		{Name: "banner", Levels: []string{"control", "new"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Cells in row-major order: (control,control), (control,new), (new,control), (new,new).
	tab.Cells[tab.Index(0, 0)] = analysis.CellStats{N: 120, Mean: 10.0, M2: 119 * 4.0}
	tab.Cells[tab.Index(0, 1)] = analysis.CellStats{N: 95, Mean: 10.2, M2: 94 * 4.0}
	tab.Cells[tab.Index(1, 0)] = analysis.CellStats{N: 110, Mean: 11.1, M2: 109 * 4.0}
	tab.Cells[tab.Index(1, 1)] = analysis.CellStats{N: 101, Mean: 12.4, M2: 100 * 4.0}

	a, err := analysis.Anova(tab, analysis.TypeIII)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range a.Terms {
		fmt.Printf("%-15s df=%d SS=%7.3f F=%6.3f p=%.4f\n", t.Name, t.DF, t.SS, t.F, t.P)
	}
	fmt.Printf("residual        df=%d SS=%.1f\n", a.Residual.DF, a.Residual.SS)
	// Output:
	// checkout        df=1 SS=287.703 F=71.926 p=0.0000
	// banner          df=1 SS= 59.443 F=14.861 p=0.0001
	// checkout:banner df=1 SS= 31.967 F= 7.992 p=0.0049
	// residual        df=422 SS=1688.0
}

// Cell statistics built from raw CSV rows, then the variant-vs-control
// effects with 95% intervals.
func ExampleEstimate() {
	csv := `latency_ms,cache,retry
100,off,off
104,off,off
98,off,on
102,off,on
90,on,off
94,on,off
80,on,on
86,on,on
`
	tab, err := analysis.ReadCSV(strings.NewReader(csv), "latency_ms", []string{"cache", "retry"})
	if err != nil {
		log.Fatal(err)
	}
	e, err := analysis.Estimate(tab, 0.95)
	if err != nil {
		log.Fatal(err)
	}
	for _, ef := range e.Effects {
		fmt.Printf("%s %s vs %s: %+.2f [%+.2f, %+.2f], %+.1f%%\n", ef.Factor, ef.Variant, ef.Control,
			ef.Diff, ef.DiffCI.Lo, ef.DiffCI.Hi, 100*ef.Rel)
	}
	ab := e.Interaction("cache:retry")
	fmt.Printf("cache:retry: %+.2f [%+.2f, %+.2f]\n", ab.Estimate, ab.CI.Lo, ab.CI.Hi)
	// Output:
	// cache on vs off: -13.50 [-19.86, -7.14], -13.4%
	// retry on vs off: -5.50 [-11.86, +0.86], -5.7%
	// cache:retry: -7.00 [-19.72, +5.72]
}

// The sample sizes of R's pwr package, and the per-cell n for a main
// effect in an 8-cell (2³) factorial.
func ExampleSampleSizeTTest() {
	n, _ := analysis.SampleSizeTTest(0.2, 0.05, 0.8)
	fmt.Printf("pwr.t.test(d=0.2): n = %.2f per group\n", n)
	v, _ := analysis.SampleSizeF2(1, 0.01, 0.05, 0.8)
	fmt.Printf("pwr.f2.test(u=1, f2=0.01): v = %.2f\n", v)
	k, _ := analysis.SampleSizeANOVA(4, 0.1, 0.05, 0.8)
	fmt.Printf("pwr.anova.test(k=4, f=0.1): n = %.2f per group\n", k)
	// Detect a 1 ms difference of marginal means with a 5 ms SD.
	c, _ := analysis.SampleSizeTerm(1, 8, 1, 5, 0.05, 0.8)
	fmt.Printf("2^3 design, mde 1, sd 5: n = %.2f per cell\n", c)
	// Output:
	// pwr.t.test(d=0.2): n = 393.41 per group
	// pwr.f2.test(u=1, f2=0.01): v = 784.81
	// pwr.anova.test(k=4, f=0.1): n = 273.54 per group
	// 2^3 design, mde 1, sd 5: n = 98.35 per cell
}

// The power of an F test from its noncentrality.
func ExamplePower() {
	// 3 numerator df, 100 denominator df, λ = 10.
	fmt.Printf("power = %.4f\n", analysis.Power(3, 100, 10, 0.05))
	fmt.Printf("P(F(3,100,10) ≤ 2) = %.4f\n", analysis.NoncentralFCDF(2, 3, 100, 10))
	// Output:
	// power = 0.7428
	// P(F(3,100,10) ≤ 2) = 0.1426
}

// Two 50/50 tests: one that collected 50,000 and 51,000 units (p just
// above the 0.001 threshold) and one with 50,000 and 51,500 (a sample
// ratio mismatch).
func ExampleSRM() {
	for _, obs := range [][]int64{{50000, 51000}, {50000, 51500}} {
		r, err := analysis.SRM(obs, []float64{50, 50}, 0)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%v: χ² = %.3f, df = %d, p = %.2g, flagged = %v\n", obs, r.ChiSquare, r.DF, r.P, r.Flagged)
	}
	// Output:
	// [50000 51000]: χ² = 9.901, df = 1, p = 0.0017, flagged = false
	// [50000 51500]: χ² = 22.167, df = 1, p = 2.5e-06, flagged = true
}

// An ANOVA table for people.
func ExampleWriteAnova() {
	f, err := os.Open("testdata/anova/warpbreaks.csv")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	tab, err := analysis.ReadCSV(f, "breaks", []string{"wool", "tension"})
	if err != nil {
		log.Fatal(err)
	}
	a, err := analysis.Anova(tab, analysis.TypeII)
	if err != nil {
		log.Fatal(err)
	}
	if err := analysis.WriteAnova(os.Stdout, a); err != nil {
		log.Fatal(err)
	}
	// Output:
	// Type II ANOVA, N = 54
	//           Term  Df   Sum Sq  Mean Sq  F value    Pr(>F)     η²p
	//           wool   1  450.667  450.667   3.7653    0.0582  0.0727
	//        tension   2  2034.26  1017.13    8.498  0.000693  0.2615
	//   wool:tension   2  1002.78  501.389   4.1891     0.021  0.1486
	//      Residuals  48  5745.11   119.69
}
