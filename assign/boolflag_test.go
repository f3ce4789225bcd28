package assign

import "testing"

func TestIsBoolean(t *testing.T) {
	for _, tc := range []struct {
		variants []string
		want     bool
	}{
		{[]string{"off", "on"}, true},
		{[]string{"on", "off"}, true},
		{[]string{"false", "true"}, true},
		{[]string{"true", "false"}, true},
		{[]string{"control", "on"}, false},
		{[]string{"on", "true"}, false},
		{[]string{"off", "false"}, false},
		{[]string{"On", "Off"}, false},
		{[]string{"off", "on", "auto"}, false},
		{[]string{"on"}, false},
		{nil, false},
	} {
		x := &Experiment{}
		for _, v := range tc.variants {
			x.Variants = append(x.Variants, Variant{Name: v})
		}
		if got := IsBoolean(x); got != tc.want {
			t.Errorf("IsBoolean(%v) = %v, want %v", tc.variants, got, tc.want)
		}
	}
}

func TestBoolValue(t *testing.T) {
	for v, want := range map[string]bool{"on": true, "true": true, "off": false, "false": false, "control": false, "": false, "ON": false} {
		if got := BoolValue(v); got != want {
			t.Errorf("BoolValue(%q) = %v, want %v", v, got, want)
		}
	}
}
