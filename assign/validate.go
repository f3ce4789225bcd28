package assign

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Input limits.
const (
	MaxUnitLen           = 256  // bytes in a unit id
	MaxAttributes        = 64   // attributes per evaluation
	MaxAttributeKeyLen   = 128  // bytes in an attribute key
	MaxAttributeValueLen = 1024 // bytes in an attribute value
	MaxIDLen             = 63   // bytes in an experiment, layer or variant id

	// MaxVariants bounds an experiment's variants (the control included).
	MaxVariants = 100
	// MaxInterference bounds an experiment's emits entries, and its
	// susceptible entries.
	MaxInterference = 64
	// MaxPlannedInteractions bounds an experiment's plan.interactions.
	MaxPlannedInteractions = 32
	// MaxRules bounds an experiment's targeting rules.
	MaxRules = 64
	// MaxConfigBytes bounds a whole configuration as Config.EncodedSize
	// counts it (its encoding in the Watch stream's ConfigSnapshot), so
	// that every configuration the Registry accepts fits in one Watch
	// message of ConfigMessageLimit bytes with room to spare.
	MaxConfigBytes = 2 << 20
	// ConfigMessageLimit is the gRPC message size limit both ends of the
	// Watch stream set explicitly: abmeshd's MaxSendMsgSize and the SDK's
	// MaxCallRecvMsgSize. It is gRPC's default receive limit, so that any
	// client with default options (the CLI listing experiments) also
	// receives a configuration of MaxConfigBytes.
	ConfigMessageLimit = 4 << 20

	maxTextLen    = 4096 // description
	maxNameLen    = 256  // owner, service names, salt, metric attribute, interference kind
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

// validateLen checks a one-line text field: required when required, at
// most max bytes, and checkText with no control character allowed.
func validateLen(field, s string, max int, required bool) error {
	if required && s == "" {
		return fieldErr(field, "required")
	}
	if len(s) > max {
		return fieldErr(field, "%d bytes, over the limit of %d", len(s), max)
	}
	return checkText(field, s, false)
}

// validateDescription checks a free-text description: at most maxTextLen
// bytes, and checkText allowing newlines and tabs.
func validateDescription(field, s string) error {
	if len(s) > maxTextLen {
		return fieldErr(field, "%d bytes, over the limit of %d", len(s), maxTextLen)
	}
	return checkText(field, s, true)
}

// checkText refuses what a terminal or a page would act on rather than
// show: invalid UTF-8, control characters (Unicode category Cc, C0, DEL
// and C1; tab and newline are allowed when multiline), the bidirectional
// formatting characters (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066
// to U+2069), which reorder what a reader sees, and the line and
// paragraph separators U+2028 and U+2029. The error names field, the
// character and its byte offset.
func checkText(field, s string, multiline bool) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			return checkRunes(field, s, i, multiline)
		}
	}
	return nil
}

// checkRunes is checkText's slow path, from byte start on.
func checkRunes(field, s string, start int, multiline bool) error {
	for i := start; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			return fieldErr(field, "not valid UTF-8 at byte %d", i)
		case multiline && (r == '\n' || r == '\t'):
		case unicode.Is(unicode.Cc, r):
			return fieldErr(field, "control character %s at byte %d", strconv.QuoteRune(r), i)
		case unsafeRune(r):
			return fieldErr(field, "formatting character %s at byte %d (bidirectional controls and line separators are refused)", strconv.QuoteRuneToASCII(r), i)
		}
		i += n
	}
	return nil
}

// unsafeRune reports whether r is a control character (Cc), a
// bidirectional formatting character or a line or paragraph separator.
func unsafeRune(r rune) bool {
	switch {
	case unicode.Is(unicode.Cc, r):
		return true
	case r == 0x061C, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// clip shortens s for error messages.
func clip(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ValidateUnit checks a unit id: non-empty, at most MaxUnitLen bytes,
// valid UTF-8 without control or bidirectional formatting characters
// (see checkText). The error is a *FieldError for field "unit_id".
func ValidateUnit(unit string) error {
	return validateLen("unit_id", unit, MaxUnitLen, true)
}

// Validate checks an evaluation filter as a request carries it: Service at
// most maxNameLen bytes (the limit of an experiment's services) without
// control characters, every Tests id a valid id. The error is a
// *FieldError for field "service" or "test_ids[i]". The zero Filter is
// valid.
func (f Filter) Validate() error {
	if err := validateLen("service", f.Service, maxNameLen, false); err != nil {
		return err
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
// MDE finite and > 0, SD finite and >= 0, at most MaxPlannedInteractions
// interactions, each naming a valid id once with a finite MDE > 0 (that
// the id is an experiment is checked by the Registry). Errors name
// "plan.<field>", e.g. "plan.interactions[0].with".
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
	case len(p.Interactions) > MaxPlannedInteractions:
		return fieldErr("plan.interactions", "%d entries, over the limit of %d", len(p.Interactions), MaxPlannedInteractions)
	}
	seen := make(map[string]int, len(p.Interactions))
	for i, x := range p.Interactions {
		f := "plan.interactions[" + strconv.Itoa(i) + "]"
		if err := validateID(f+".with", x.With); err != nil {
			return err
		}
		if j, dup := seen[x.With]; dup {
			return fieldErr(f+".with", "duplicate of plan.interactions[%d].with %q", j, x.With)
		}
		seen[x.With] = i
		if !(x.MDE > 0) || math.IsInf(x.MDE, 0) {
			return fieldErr(f+".mde", "%v: the minimum detectable interaction must be a positive number", x.MDE)
		}
	}
	return nil
}

// plannedTests checks that every test e's plan.interactions names is an
// experiment of others other than e itself. Only the Registry's create
// and update check it: a stored configuration whose named test was
// deleted since stays valid (the report warns instead).
func plannedTests(e *Experiment, others []*Experiment) error {
	if len(e.Plan.Interactions) == 0 {
		return nil
	}
	ids := make(map[string]bool, len(others))
	for _, o := range others {
		ids[o.ID] = true
	}
	for i, x := range e.Plan.Interactions {
		f := "plan.interactions[" + strconv.Itoa(i) + "].with"
		if x.With == e.ID {
			return fieldErr(f, "%q is the experiment itself: name another test", x.With)
		}
		if !ids[x.With] {
			return fieldErr(f, "experiment %q not found", x.With)
		}
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
// OpIn and OpNotIn, values of at most MaxAttributeValueLen bytes; no
// control characters (see checkText). Errors name "attribute", "op" or
// "values[i]".
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
		if err := validateLen(fmt.Sprintf("values[%d]", j), v, MaxAttributeValueLen, false); err != nil {
			return err
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
	if err := validateDescription("description", e.Description); err != nil {
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
	if len(e.Targeting) > MaxRules {
		return fieldErr("targeting", "%d rules, over the limit of %d", len(e.Targeting), MaxRules)
	}
	for i := range e.Targeting {
		if err := e.Targeting[i].Validate(); err != nil {
			return prefixField(fmt.Sprintf("targeting[%d]", i), err)
		}
	}
	if err := validateLen("salt", e.Salt, maxNameLen, false); err != nil {
		return err
	}
	if err := validateInterference("emits", e.Emits); err != nil {
		return err
	}
	if err := validateInterference("susceptible", e.Susceptible); err != nil {
		return err
	}
	if err := e.Plan.Validate(); err != nil {
		return err
	}
	return e.validateLifecycle()
}

// validateInterference checks the entries of list (emits or
// susceptible): at most MaxInterference, each Interference.Validate.
func validateInterference(list string, in []Interference) error {
	if len(in) > MaxInterference {
		return fieldErr(list, "%d entries, over the limit of %d", len(in), MaxInterference)
	}
	for i := range in {
		if err := in[i].Validate(); err != nil {
			return prefixField(list+"["+strconv.Itoa(i)+"]", err)
		}
	}
	return nil
}

// validateVariants checks the variants: 2 to MaxVariants, valid unique
// names, weights summing to 1..math.MaxUint32. It takes time linear in
// len(vs) (duplicates are found with a map, not by comparing pairs).
func validateVariants(vs []Variant) error {
	if len(vs) < 2 {
		return fieldErr("variants", "%d variants: an experiment needs at least 2 (the first is the control)", len(vs))
	}
	if len(vs) > MaxVariants {
		return fieldErr("variants", "%d variants, over the limit of %d", len(vs), MaxVariants)
	}
	return checkVariants(vs)
}

// checkVariants is validateVariants without the count limits.
func checkVariants(vs []Variant) error {
	seen := make(map[string]int, len(vs))
	var sum uint64
	for i, v := range vs {
		if !ValidID(v.Name) { // the field name is built only for an error
			return validateID(fmt.Sprintf("variants[%d].name", i), v.Name)
		}
		if j, dup := seen[v.Name]; dup {
			return fieldErr(fmt.Sprintf("variants[%d].name", i), "duplicate of variants[%d].name %q", j, v.Name)
		}
		seen[v.Name] = i
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
	return validateDescription("description", l.Description)
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
// Errors are *FieldError with e's own field names. It takes time linear in
// len(others); Config.Validate checks all experiments at once with
// conflictIndex instead.
func conflicts(e *Experiment, others []*Experiment, layers map[string]bool) error {
	var same *Experiment
	salt := e.EffectiveSalt()
	for _, o := range others {
		if o.ID != e.ID && o.EffectiveSalt() == salt {
			same = o
			break
		}
	}
	if err := conflictsWith(e, layers, same, overlapping(e, others)); err != nil {
		return err
	}
	return plannedTests(e, others)
}

// conflictsWith is conflicts given the other experiment with e's salt
// (sameSalt) and an active one whose slice overlaps e's (overlap), either
// nil when there is none.
func conflictsWith(e *Experiment, layers map[string]bool, sameSalt, overlap *Experiment) error {
	if e.Layer != "" && !layers[e.Layer] {
		return fieldErr("layer", "layer %q not found", e.Layer)
	}
	salt := e.EffectiveSalt()
	if layers[salt] {
		return fieldErr("salt", "salt %q is a layer id: the experiment's split would correlate with the layer's slices", salt)
	}
	if sameSalt != nil {
		return fieldErr("salt", "salt %q is also experiment %q's salt: the two splits would be identical", salt, sameSalt.ID)
	}
	if o := overlap; o != nil {
		return fieldErr("slice", "[%d, %d) overlaps the slice [%d, %d) of %s experiment %q in layer %q",
			e.Slice.Start, e.Slice.End, o.Slice.Start, o.Slice.End, o.Status, o.ID, e.Layer)
	}
	return nil
}

// conflictIndex holds, for every experiment of a configuration (ids
// unique), the first other experiment with the same salt and an active
// experiment of its layer whose slice overlaps its own. Building it takes
// O(n log n) time for n experiments, where checking each against all
// others would take O(n²).
type conflictIndex struct {
	sameSalt, overlap map[*Experiment]*Experiment
}

func newConflictIndex(exps []*Experiment) conflictIndex {
	idx := conflictIndex{sameSalt: map[*Experiment]*Experiment{}, overlap: map[*Experiment]*Experiment{}}
	bySalt := make(map[string][]*Experiment, len(exps))
	byLayer := map[string][]*Experiment{}
	for _, e := range exps {
		if s := bySalt[e.EffectiveSalt()]; len(s) < 2 {
			bySalt[e.EffectiveSalt()] = append(s, e)
		}
		if e.Layer != "" && e.active() {
			byLayer[e.Layer] = append(byLayer[e.Layer], e)
		}
	}
	for _, e := range exps {
		if s := bySalt[e.EffectiveSalt()]; len(s) == 2 {
			idx.sameSalt[e] = s[0]
			if s[0] == e {
				idx.sameSalt[e] = s[1]
			}
		}
	}
	for _, active := range byLayer {
		idx.sweep(active)
	}
	return idx
}

// sweep finds overlapping slices among the active experiments of one
// layer: sorted by start, an experiment overlaps an earlier one exactly
// when the largest end before it is past its start, and a later one
// exactly when the next start is before its end.
func (idx conflictIndex) sweep(active []*Experiment) {
	slices.SortStableFunc(active, func(a, b *Experiment) int { return cmp.Compare(a.Slice.Start, b.Slice.Start) })
	var widest *Experiment // the earlier experiment with the largest end
	for i, e := range active {
		switch {
		case widest != nil && widest.Slice.End > e.Slice.Start:
			idx.overlap[e] = widest
		case i+1 < len(active) && active[i+1].Slice.Start < e.Slice.End:
			idx.overlap[e] = active[i+1]
		}
		if widest == nil || e.Slice.End > widest.Slice.End {
			widest = e
		}
	}
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
