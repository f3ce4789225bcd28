package sim
import ("testing";"fmt";"github.com/abmesh/abmesh/analysis")
func TestScratch(t *testing.T){
  nt,_ := analysis.SampleSizeTTest(0.3,0.05,0.8); fmt.Println("ttest d=.3", nt)
  for _, c := range []int{2,4,8,16,32,64,128,256,1024,4096} {
    n,err := analysis.SampleSizeTerm(1,c,6,20,0.05,0.8); fmt.Println(c, n, float64(c)*n, err)
  }
  for _, c := range []int{2,4,8,128,4096} {
    n,err := analysis.SampleSizeTerm(1,c,1,3,0.05,0.8); fmt.Println("lat",c, n, float64(c)*n, err)
  }
}
