package assign

// IsBoolean reports whether x can be read as a boolean feature flag, as
// OpenFeature's boolean evaluation and flagd's ResolveBoolean read it:
// exactly two variants, named "on" and "off" or "true" and "false", in
// either order. Other tests have named variants only (a type mismatch for
// a boolean flag).
func IsBoolean(x *Experiment) bool {
	if len(x.Variants) != 2 {
		return false
	}
	a, b := x.Variants[0].Name, x.Variants[1].Name
	if a > b {
		a, b = b, a
	}
	return (a == "off" && b == "on") || (a == "false" && b == "true")
}

// BoolValue is the value of variant of a test IsBoolean accepts: true
// for "on" and "true", false for anything else.
func BoolValue(variant string) bool { return variant == "on" || variant == "true" }
