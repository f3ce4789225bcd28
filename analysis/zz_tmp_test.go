package analysis

import (
	"math"
	"path/filepath"
	"testing"
)

func TestTmpMaxErr(t *testing.T) {
	files, _ := filepath.Glob("testdata/anova/*.expected.json")
	for _, path := range files {
		ref, tab := loadRef(t, path)
		for _, tc := range []struct {
			typ  SSType
			rows []refRow
		}{{TypeI, ref.Type1}, {TypeII, ref.Type2}, {TypeIII, ref.Type3}} {
			if tc.rows == nil {
				continue
			}
			a, _ := Anova(tab, tc.typ)
			var mss, mf, mp float64
			for _, w := range tc.rows {
				g := a.Term(w.Term)
				if g == nil || !g.Estimable {
					continue
				}
				mss = math.Max(mss, math.Abs(g.SS-w.SS)/w.SS)
				if w.F != nil {
					mf = math.Max(mf, math.Abs(g.F-*w.F)/ *w.F)
					if *w.P > 0 {
						mp = math.Max(mp, math.Abs(g.P-*w.P)/ *w.P)
					}
				}
			}
			t.Logf("%s type%d: ss %.2g f %.2g p %.2g", ref.Dataset, tc.typ, mss, mf, mp)
		}
	}
}
