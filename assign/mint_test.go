package assign

import (
	"errors"
	"strings"
	"testing"
)

func TestMintUnit(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		u := MintUnit()
		if !Minted(u) {
			t.Fatalf("MintUnit() = %q, not Minted", u)
		}
		if err := ValidateUnit(u); err != nil {
			t.Fatalf("MintUnit() = %q: %v", u, err)
		}
		if seen[u] {
			t.Fatalf("MintUnit() repeated %q", u)
		}
		seen[u] = true
	}
}

func TestMinted(t *testing.T) {
	hex32 := strings.Repeat("0123456789abcdef", 2)
	for _, tt := range []struct {
		unit string
		want bool
	}{
		{"u-" + hex32, true},
		{"u-" + hex32[:31], false},             // short
		{"u-" + hex32 + "0", false},            // long
		{"u-" + strings.ToUpper(hex32), false}, // uppercase hex is not minted
		{"v-" + hex32, false},
		{"u-" + hex32[:31] + "g", false},
		{"user-42", false},
		{"", false},
	} {
		if got := Minted(tt.unit); got != tt.want {
			t.Errorf("Minted(%q) = %v, want %v", tt.unit, got, tt.want)
		}
	}
}

// A minted id is never a trusted claim: SetOverride refuses it, and
// Compile ignores an override of one that a store may still hold.
func TestMintedNeverOverridden(t *testing.T) {
	ctx := t.Context()
	r, err := NewRegistry(ctx, &MemStore{})
	if err != nil {
		t.Fatal(err)
	}
	x := testExp("exp", weights(1, 0, 0)...) // hash gives control
	if _, err := r.Create(ctx, &x); err != nil {
		t.Fatal(err)
	}
	minted := MintUnit()
	err = r.SetOverride(ctx, Override{"exp", minted, "v2"})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetOverride(minted) = %v, want ErrInvalid", err)
	}
	checkFieldErr(t, err, "unit_id")
	if err := r.SetOverride(ctx, Override{"exp", "user-1", "v2"}); err != nil {
		t.Fatalf("SetOverride(user-1) = %v", err)
	}

	cfg := Config{Experiments: []Experiment{x}, Overrides: []Override{{"exp", minted, "v2"}, {"exp", "user-1", "v2"}}}
	e := mustCompile(t, cfg)
	if got := mustEval(t, e, "exp", minted, nil); got.Reason != ReasonHash || got.Variant != "control" {
		t.Errorf("minted unit with a stored override = %+v, want the hash's control", got)
	}
	if got := mustEval(t, e, "exp", "user-1", nil); got.Reason != ReasonOverride || got.Variant != "v2" {
		t.Errorf("user-1 = %+v, want the override v2", got)
	}
}
