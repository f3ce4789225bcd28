package sim
import ("testing";"fmt";"context";"time")
func TestScratch(t *testing.T){
  for _, sc := range []*Scenario{Shop(), must(Large(1))} {
  if err := sc.Validate(); err != nil { t.Fatal(err) }
  subs, _ := sc.Subsets()
  for _, s := range subs { fmt.Println(s.Viewpoint, s.Tests()) }
  st := time.Now()
  res, err := Evaluate(context.Background(), sc, Options{Reps: 20, Seed: 1})
  if err != nil { t.Fatal(err) }
  fmt.Println(sc.Name, time.Since(st))
  for _, s := range res.Strategies {
    fmt.Printf("%-32s cells=%d n=%d planned=%.0f units=%.0f [%0.f,%0.f] fin=%d nulls=%.1f ff=%.2f\n", s.Label, s.Cells, s.PerCellN, s.PlannedUnits, s.Units.Mean, s.Units.P5, s.Units.P95, s.Finished, s.InteractionTests, s.FalseFindings)
    for qi, q := range res.Quantities {
      e := s.Estimates[qi]
      fmt.Printf("   %-12s %-45s truth=%7.3f n=%3d mean=%7.3f bias=%7.3f sd=%6.3f cov=%.2f rej=%.2f\n", q.Kind, q.Name()+"@"+q.Test, q.Truth, e.Reps, e.Mean, e.Bias, e.SD, e.Coverage, e.Rejected)
    }
  }
  }
}
func must(s *Scenario, err error) *Scenario { if err != nil { panic(err) }; return s }
