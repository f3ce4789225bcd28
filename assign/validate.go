package assign

import (
	"fmt"
	"math"
	"strconv"
)

// Input limits.
const (
	MaxUnitLen           = 256  // bytes in a unit id
	MaxAttributes        = 64   // attributes per evaluation
	MaxAttributeKeyLen   = 128  // bytes in an attribute key
	MaxAttributeValueLen = 1024 // bytes in an attribute value
	MaxIDLen             = 63   // bytes in an experiment, layer or variant id

	maxTextLen    = 4096 // description
	maxNameLen    = 256  // owner, service names, salt, metric attribute, interference kind
	maxRules      = 64   // targeting rules per experiment
	maxRuleValues = 1024 // values per targeting rule
)

// Plan defaults, applied by Plan.Defaults to zero fields.
const (
	DefaultAlpha = 0.05
	DefaultPower = 0.8
)

// ValidID reports whether s is a valid experiment, layer or variant id: a
// lowercase DNS label,
//
//	^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$
//
// so ids are safe in header names (x-abmesh-<id>), URLs and file names.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

func validateID(field, s string) error {
	if s == "" {
		return fieldErr(field, "required")
	}
	if !ValidID(s) {
		return fieldErr(field, "%q is not a lowercase DNS label (a-z, 0-9, '-', 1 to 63 characters, alphanumeric at both ends)", clip(s))
	}
	return nil
}

func validateLen(field, s string, max int, required bool) error {
	if required && s == "" {
		return fieldErr(field, "required")
	}
	if len(s) > max {
		return fieldErr(field, "%d bytes, over the limit of %d", len(s), max)
	}
	return nil
}

// clip shortens s for error messages.
func clip(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ValidateUnit checks a unit id: non-empty and at most MaxUnitLen bytes.
// The error is a *FieldError for field "unit_id".
func ValidateUnit(unit string) error {
	if unit == "" {
		return fieldErr("unit_id", "required")
	}
	if len(unit) > MaxUnitLen {
		return fieldErr("unit_id", "%d bytes, over the limit of %d", len(unit), MaxUnitLen)
	}
	return nil
}

// Validate checks an evaluation filter as a request carries it: Service at
// most maxNameLen bytes (the limit of an experiment's services), every
// Tests id a valid id. The error is a *FieldError for field "service" or
// "test_ids[i]". The zero Filter is valid.
func (f Filter) Validate() error {
	if len(f.Service) > maxNameLen {
		return fieldErr("service", "%d bytes, over the limit of %d", len(f.Service), maxNameLen)
	}
	for i, id := range f.Tests {
		if !ValidID(id) {
			return fieldErr("test_ids["+strconv.Itoa(i)+"]", "%q is not a valid experiment id", clip(id))
		}
	}
	return nil
}

// ValidateAttributes checks unit attributes: at most MaxAttributes entries,
// keys non-empty and at most MaxAttributeKeyLen bytes, values at most
// MaxAttributeValueLen bytes. The error is a *FieldError for field
// "attributes" or `attributes["key"]`. A nil map is valid.
func ValidateAttributes(attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return fieldErr("attributes", "%d attributes, over the limit of %d", len(attrs), MaxAttributes)
	}
	for k, v := range attrs {
		field := "attributes[" + strconv.Quote(clip(k)) + "]"
		if k == "" {
			return fieldErr(field, "empty key")
		}
		if len(k) > MaxAttributeKeyLen {
			return fieldErr(field, "key is %d bytes, over the limit of %d", len(k), MaxAttributeKeyLen)
		}
		if len(v) > MaxAttributeValueLen {
			return fieldErr(field, "value is %d bytes, over the limit of %d", len(v), MaxAttributeValueLen)
		}
	}
	return nil
}

// Defaults fills the zero fields of p with DefaultAlpha and DefaultPower.
// MDE and SD have no defaults.
func (p *Plan) Defaults() {
	if p.Alpha == 0 {
		p.Alpha = DefaultAlpha
	}
	if p.Power == 0 {
		p.Power = DefaultPower
	}
}

// Validate checks p as is (call Defaults first): Alpha and Power in (0, 1),
// MDE finite and > 0, SD finite and >= 0. Errors name "plan.<field>".
func (p *Plan) Validate() error {
	switch {
	case !(p.Alpha > 0 && p.Alpha < 1):
		return fieldErr("plan.alpha", "%v is not in (0, 1)", p.Alpha)
	case !(p.Power > 0 && p.Power < 1):
		return fieldErr("plan.power", "%v is not in (0, 1)", p.Power)
	case !(p.MDE > 0) || math.IsInf(p.MDE, 0):
		return fieldErr("plan.mde", "%v: the minimum detectable effect must be a positive number", p.MDE)
	case !(p.SD >= 0) || math.IsInf(p.SD, 0):
		return fieldErr("plan.sd", "%v: the standard deviation must be a non-negative number (0 = unknown)", p.SD)
	}
	return nil
}

// Validate checks the metric: a known Kind, Attribute set exactly when
// Kind is MetricAttribute, and a known Aggregate. Errors name
// "metric.<field>".
func (m *Metric) Validate() error {
	if m.Aggregate < AggregateMean || int(m.Aggregate) >= len(aggregateNames) {
		return fieldErr("metric.aggregate", "unknown aggregate %d (want mean, sum, any, count or ratio)", int(m.Aggregate))
	}
	switch m.Kind {
	case MetricLatencyMS, MetricError:
		if m.Attribute != "" {
			return fieldErr("metric.attribute", "must be empty unless metric.kind is attribute (kind is %s)", m.Kind)
		}
	case MetricAttribute:
		if err := validateLen("metric.attribute", m.Attribute, maxNameLen, true); err != nil {
			return err
		}
	default:
		return fieldErr("metric.kind", "unknown kind %d", int(m.Kind))
	}
	return nil
}

// Validate checks i: Kind non-empty (custom kinds are allowed), Scope one of
// Scopes. Errors name "kind" or "scope".
func (i *Interference) Validate() error {
	if err := validateLen("kind", i.Kind, maxNameLen, true); err != nil {
		return err
	}
	if !ValidScope(i.Scope) {
		return fieldErr("scope", "%q is not one of %v", clip(i.Scope), Scopes)
	}
	return nil
}

// Validate checks r: a non-empty attribute of at most MaxAttributeKeyLen
// bytes, a known operator, exactly one value for OpEq and at least one for
// OpIn and OpNotIn, values of at most MaxAttributeValueLen bytes. Errors
// name "attribute", "op" or "values[i]".
func (r *Rule) Validate() error {
	if err := validateLen("attribute", r.Attribute, MaxAttributeKeyLen, true); err != nil {
		return err
	}
	switch r.Op {
	case OpEq:
		if len(r.Values) != 1 {
			return fieldErr("values", "op eq takes exactly one value, got %d", len(r.Values))
		}
	case OpIn, OpNotIn:
		if len(r.Values) == 0 {
			return fieldErr("values", "op %s takes at least one value", r.Op)
		}
	default:
		return fieldErr("op", "unknown operator %d", int(r.Op))
	}
	if len(r.Values) > maxRuleValues {
		return fieldErr("values", "%d values, over the limit of %d", len(r.Values), maxRuleValues)
	}
	for j, v := range r.Values {
		if len(v) > MaxAttributeValueLen {
			return fieldErr(fmt.Sprintf("values[%d]", j), "%d bytes, over the limit of %d", len(v), MaxAttributeValueLen)
		}
	}
	return nil
}

// Validate checks the slice of a layered experiment: Start < End <=
// LayerBuckets. Errors name "slice.start" or "slice.end".
func (s Slice) Validate() error {
	if s.End > LayerBuckets {
		return fieldErr("slice.end", "%d is over the layer's %d buckets", s.End, LayerBuckets)
	}
	if s.Start >= s.End {
		return fieldErr("slice.start", "slice [%d, %d) is empty: start must be below end", s.Start, s.End)
	}
	return nil
}

// Overlaps reports whether s and o share a bucket.
func (s Slice) Overlaps(o Slice) bool { return s.Start < o.End && o.Start < s.End }

// Contains reports whether bucket b is in [Start, End).
func (s Slice) Contains(b uint32) bool { return b >= s.Start && b < s.End }

// EffectiveSalt returns the salt the experiment hashes with: Salt, or ID
// when Salt is empty.
func (e *Experiment) EffectiveSalt() string {
	if e.Salt != "" {
		return e.Salt
	}
	return e.ID
}

// Defaults fills defaulted zero fields: the plan's alpha and power (see
// Plan.Defaults). The Registry calls it before Validate on every create
// and update.
func (e *Experiment) Defaults() { e.Plan.Defaults() }

// Validate checks the experiment on its own (checks that need the other
// experiments and layers are done by Config.Validate and the Registry). It
// returns the first problem as a *FieldError (wrapping ErrInvalid) whose
// Field names the field in snake_case, e.g. "variants[1].weight":
//
//   - id, and every variant name: ValidID;
//   - change_service and measure_service: required;
//   - variants: at least 2, unique names, weights not all zero, their sum
//     at most math.MaxUint32;
//   - layer: a valid id when set, and then slice within the layer's
//     buckets; slice zero when layer is empty;
//   - targeting, metric, plan, emits, susceptible: see Rule.Validate,
//     Metric.Validate, Plan.Validate, Interference.Validate;
//   - lifecycle: status known; winner a variant exactly when concluded;
//     phase 0 for drafts, >= 1 otherwise, and len(phases) == phase with
//     phases numbered 1, 2, ...
//
// Validate does not apply defaults: call Defaults first.
func (e *Experiment) Validate() error {
	if err := validateID("id", e.ID); err != nil {
		return err
	}
	if err := validateLen("owner", e.Owner, maxNameLen, false); err != nil {
		return err
	}
	if err := validateLen("description", e.Description, maxTextLen, false); err != nil {
		return err
	}
	if err := validateLen("change_service", e.ChangeService, maxNameLen, true); err != nil {
		return err
	}
	if err := validateLen("measure_service", e.MeasureService, maxNameLen, true); err != nil {
		return err
	}
	if err := e.Metric.Validate(); err != nil {
		return err
	}
	if err := validateVariants(e.Variants); err != nil {
		return err
	}
	if e.Layer != "" {
		if err := validateID("layer", e.Layer); err != nil {
			return err
		}
		if err := e.Slice.Validate(); err != nil {
			return err
		}
	} else if e.Slice != (Slice{}) {
		return fieldErr("slice", "set but layer is empty")
	}
	if len(e.Targeting) > maxRules {
		return fieldErr("targeting", "%d rules, over the limit of %d", len(e.Targeting), maxRules)
	}
	for i := range e.Targeting {
		if err := e.Targeting[i].Validate(); err != nil {
			return prefixField(fmt.Sprintf("targeting[%d]", i), err)
		}
	}
	if err := validateLen("salt", e.Salt, maxNameLen, false); err != nil {
		return err
	}
	for i := range e.Emits {
		if err := e.Emits[i].Validate(); err != nil {
			return prefixField(fmt.Sprintf("emits[%d]", i), err)
		}
	}
	for i := range e.Susceptible {
		if err := e.Susceptible[i].Validate(); err != nil {
			return prefixField(fmt.Sprintf("susceptible[%d]", i), err)
		}
	}
	if err := e.Plan.Validate(); err != nil {
		return err
	}
	return e.validateLifecycle()
}

func validateVariants(vs []Variant) error {
	if len(vs) < 2 {
		return fieldErr("variants", "%d variants: an experiment needs at least 2 (the first is the control)", len(vs))
	}
	var sum uint64
	for i, v := range vs {
		if err := validateID(fmt.Sprintf("variants[%d].name", i), v.Name); err != nil {
			return err
		}
		for j := range i {
			if vs[j].Name == v.Name {
				return fieldErr(fmt.Sprintf("variants[%d].name", i), "duplicate of variants[%d].name %q", j, v.Name)
			}
		}
		sum += uint64(v.Weight)
		if sum > math.MaxUint32 {
			return fieldErr(fmt.Sprintf("variants[%d].weight", i), "weights sum past %d", uint64(math.MaxUint32))
		}
	}
	if sum == 0 {
		return fieldErr("variants", "all weights are zero")
	}
	return nil
}

func (e *Experiment) validateLifecycle() error {
	switch e.Status {
	case StatusDraft, StatusRunning, StatusPaused, StatusConcluded:
	default:
		return fieldErr("status", "unknown status %d", int(e.Status))
	}
	if e.Status == StatusConcluded {
		if e.Winner == "" {
			return fieldErr("winner", "required for a concluded experiment")
		}
		if e.variantIndex(e.Winner) < 0 {
			return fieldErr("winner", "%q is not a variant", clip(e.Winner))
		}
	} else if e.Winner != "" {
		return fieldErr("winner", "set but status is %s", e.Status)
	}
	switch {
	case e.Status == StatusDraft && e.Phase != 0:
		return fieldErr("phase", "%d for a draft: must be 0", e.Phase)
	case e.Status != StatusDraft && e.Phase < 1:
		return fieldErr("phase", "%d for a %s experiment: must be at least 1", e.Phase, e.Status)
	case len(e.Phases) != e.Phase:
		return fieldErr("phases", "%d phases but phase is %d", len(e.Phases), e.Phase)
	}
	for i, p := range e.Phases {
		if p.Number != i+1 {
			return fieldErr(fmt.Sprintf("phases[%d].number", i), "%d, want %d", p.Number, i+1)
		}
	}
	return nil
}

// variantIndex returns the index of the variant named name, or -1.
func (e *Experiment) variantIndex(name string) int {
	for i, v := range e.Variants {
		if v.Name == name {
			return i
		}
	}
	return -1
}

// Validate checks the layer: ID a valid id, Description at most 4096
// bytes. Errors are *FieldError naming "id" or "description".
func (l *Layer) Validate() error {
	if err := validateID("id", l.ID); err != nil {
		return err
	}
	return validateLen("description", l.Description, maxTextLen, false)
}

// Validate checks the override on its own: experiment a valid id, unit a
// valid unit id (field "unit_id"), variant a valid id. Whether the
// experiment and variant exist is checked against a Config or Registry.
func (o *Override) Validate() error {
	if err := validateID("experiment", o.Experiment); err != nil {
		return err
	}
	if err := ValidateUnit(o.Unit); err != nil {
		return err
	}
	return validateID("variant", o.Variant)
}

// active reports whether an experiment holds its layer slice: running or
// paused. Drafts may overlap each other; concluded experiments serve the
// winner to everyone and release their slice.
func (e *Experiment) active() bool {
	return e.Status == StatusRunning || e.Status == StatusPaused
}

// conflicts checks e against the other experiments and the layers of a
// configuration: e's layer exists, e's salt is no other experiment's salt
// and no layer id (equal salts would correlate assignments), and an active
// e's slice overlaps no other active experiment's slice in its layer.
// Errors are *FieldError with e's own field names.
func conflicts(e *Experiment, others []*Experiment, layers map[string]bool) error {
	if e.Layer != "" && !layers[e.Layer] {
		return fieldErr("layer", "layer %q not found", e.Layer)
	}
	salt := e.EffectiveSalt()
	if layers[salt] {
		return fieldErr("salt", "salt %q is a layer id: the experiment's split would correlate with the layer's slices", salt)
	}
	for _, o := range others {
		if o.ID == e.ID {
			continue
		}
		if o.EffectiveSalt() == salt {
			return fieldErr("salt", "salt %q is also experiment %q's salt: the two splits would be identical", salt, o.ID)
		}
	}
	if o := overlapping(e, others); o != nil {
		return fieldErr("slice", "[%d, %d) overlaps the slice [%d, %d) of %s experiment %q in layer %q",
			e.Slice.Start, e.Slice.End, o.Slice.Start, o.Slice.End, o.Status, o.ID, e.Layer)
	}
	return nil
}

// overlapping returns an active experiment of others in e's layer whose
// slice overlaps e's, or nil. It returns nil when e is not active or not
// layered.
func overlapping(e *Experiment, others []*Experiment) *Experiment {
	if e.Layer == "" || !e.active() {
		return nil
	}
	for _, o := range others {
		if o.ID != e.ID && o.Layer == e.Layer && o.active() && o.Slice.Overlaps(e.Slice) {
			return o
		}
	}
	return nil
}
