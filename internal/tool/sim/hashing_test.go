package sim

import (
	"strings"
	"testing"
)

// The method's first hypothesis: hashed traffic is indistinguishable from
// a designed factorial allocation, and the check has the power to tell a
// broken assignment apart.
func TestHashingHypothesis(t *testing.T) {
	for _, tt := range []struct {
		sc        *Scenario
		viewpoint string
	}{
		{Shop(), "rec-model"},
		{mustLarge(t), "hero-banner"},
		{mustLarge(t), "inventory-batch"},
	} {
		h, err := CheckHashing(tt.sc, HashingOptions{Viewpoint: tt.viewpoint, Reps: 300, Seed: 4})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Indistinguishable(Hashed); err != nil {
			t.Errorf("%s/%s: %v", tt.sc.Name, tt.viewpoint, err)
		}
		if err := h.Indistinguishable(Designed); err != nil {
			t.Errorf("%s/%s: designed vs itself: %v", tt.sc.Name, tt.viewpoint, err)
		}
		for _, broken := range []Allocation{SharedSalt, WeakHash, HalfSharedSalt} {
			err := h.Indistinguishable(broken)
			if err == nil {
				t.Errorf("%s/%s: the %s allocation passes as indistinguishable", tt.sc.Name, tt.viewpoint, broken)
				continue
			}
			if !strings.Contains(err.Error(), "cell counts are not uniform") {
				t.Errorf("%s/%s: %s: %v", tt.sc.Name, tt.viewpoint, broken, err)
			}
		}
		// Perfectly correlated splits leave cells empty: nothing estimable.
		for _, broken := range []Allocation{SharedSalt, WeakHash} {
			for _, term := range h.Result(broken).Terms {
				if term.Reps != 0 {
					t.Errorf("%s: %s estimable in %d replications", broken, term.Term, term.Reps)
				}
			}
		}
		// Half-shared salts still estimate without bias, less precisely.
		half, designed := h.Result(HalfSharedSalt), h.Result(Designed)
		for i, term := range half.Terms {
			if term.Reps != h.Reps || term.SD <= designed.Terms[i].SD {
				t.Errorf("half-shared-salt %s: %d replications, SD %v vs designed %v", term.Term, term.Reps, term.SD, designed.Terms[i].SD)
			}
		}
	}
}

// A subtle broken split: a 60/40 split where 50/50 is expected is caught
// by the cell counts even though estimates stay unbiased.
func TestHashingDetectsSampleRatioMismatch(t *testing.T) {
	sc := Shop()
	for i := range sc.Experiments {
		if sc.Experiments[i].ID == "ui-layout" {
			sc.Experiments[i].Variants[0].Weight = 60
			sc.Experiments[i].Variants[1].Weight = 40
			sc.Experiments[i].Phases[0].Weights = []uint32{60, 40}
		}
	}
	h, err := CheckHashing(sc, HashingOptions{Viewpoint: "ui-layout", Reps: 200, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Indistinguishable(Hashed)
	if err == nil || !strings.Contains(err.Error(), "cell counts") {
		t.Errorf("a 60/40 split against equal cells: %v", err)
	}
}

func TestCheckHashingErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  HashingOptions
		want string
	}{
		{"unknown viewpoint", HashingOptions{Viewpoint: "nope"}, "unknown viewpoint"},
		{"layered member", HashingOptions{Viewpoint: "pay-button"}, "layer or targeting"},
		{"targeted member", HashingOptions{Viewpoint: "currency-rounding"}, "layer or targeting"},
		{"units not a multiple of the cells", HashingOptions{Viewpoint: "rec-model", Units: 100}, "multiple of 8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckHashing(Shop(), tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestTermMasks(t *testing.T) {
	got := termMasks(3)
	want := []uint64{1, 2, 4, 3, 5, 6, 7} // a, b, c, a:b, a:c, b:c, a:b:c
	if len(got) != len(want) {
		t.Fatalf("termMasks(3) = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("termMasks(3) = %v, want %v", got, want)
		}
	}
}
