package analysis

import "testing"

func TestTmpPwr(t *testing.T) {
	v, err := SampleSizeF2(1, 0.01, 0.05, 0.8)
	t.Log(v, err)
	n, err := SampleSizeANOVA(4, 0.1, 0.05, 0.8)
	t.Log(n, err)
	n, err = SampleSizeTTest(0.2, 0.05, 0.8)
	t.Log(n, err)
	t.Log(NoncentralFCDF(2.5, 3, 30, 20), NoncentralFCDF(8, 7, 400, 150))
}
