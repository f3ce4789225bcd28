// Package manifest reads abmesh manifests: YAML documents in a
// Kubernetes-like shape, several per file separated by "---".
//
//	apiVersion: abmesh.io/v1
//	kind: Experiment            # or Layer
//	metadata:
//	  name: rec-model
//	spec:
//	  owner: team-reco
//	  changeService: recommendation
//	  measureService: frontend
//	  metric: {name: "attribute:shop.order.value", direction: higher, aggregate: sum}
//	  variants: [{name: control, weight: 50}, {name: ml-v2, weight: 50}]
//	  interference:
//	    emits: [{kind: latency, scope: change_downstream}]
//	    susceptible: [{kind: user_experience, scope: measure}]
//	  plan: {alpha: 0.05, power: 0.8, mde: 2.5, sd: 20,
//	         interactions: [{with: search-ranker, mde: 4}]}
//
// Parsing is strict: unknown fields (keys match case-sensitively; a
// Layer's spec takes only description), wrong types and invalid values are
// errors that name the file, the document (its 1-based position among the
// "---"-separated chunks, empty ones included) and the field; YAML syntax
// errors give the file's line. A file with any invalid document yields no
// documents at all.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/abmesh/abmesh/assign"
)

// APIVersion is the only manifest apiVersion understood.
const APIVersion = "abmesh.io/v1"

// Set is the content of one or more manifest files: layers first, then
// experiments, each in file order.
type Set struct {
	Layers      []assign.Layer
	Experiments []assign.Experiment
}

// Error is a problem in one document of one file.
type Error struct {
	File     string
	Document int    // 1-based index of the document in the file
	Field    string // dotted path in the document, "" when the whole document
	Msg      string
}

// Error returns "file: document N: field: message".
func (e *Error) Error() string {
	loc := fmt.Sprintf("%s: document %d", e.File, e.Document)
	if e.Field != "" {
		loc += ": " + e.Field
	}
	return loc + ": " + e.Msg
}

type document struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   metadata `json:"metadata"`
	Spec       *spec    `json:"spec"`
}

type metadata struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type spec struct {
	// Experiment fields.
	Owner          string        `json:"owner,omitempty"`
	Description    string        `json:"description,omitempty"`
	ChangeService  string        `json:"changeService,omitempty"`
	MeasureService string        `json:"measureService,omitempty"`
	Metric         *metric       `json:"metric,omitempty"`
	Variants       []variant     `json:"variants,omitempty"`
	Layer          string        `json:"layer,omitempty"`
	Slice          *slice        `json:"slice,omitempty"`
	Targeting      []rule        `json:"targeting,omitempty"`
	Sticky         bool          `json:"sticky,omitempty"`
	Salt           string        `json:"salt,omitempty"`
	Interference   *interference `json:"interference,omitempty"`
	Plan           *plan         `json:"plan,omitempty"`
}

type metric struct {
	Name      string `json:"name"`
	Direction string `json:"direction,omitempty"`
	Aggregate string `json:"aggregate,omitempty"` // mean (default), sum, any, count or ratio
}

type variant struct {
	Name   string `json:"name"`
	Weight *int64 `json:"weight"`
}

type slice struct {
	Start int64 `json:"start"`
	End   int64 `json:"end"`
}

type rule struct {
	Attribute string   `json:"attribute"`
	Op        string   `json:"op"`
	Values    []string `json:"values"`
}

type interference struct {
	Emits       []kindScope `json:"emits,omitempty"`
	Susceptible []kindScope `json:"susceptible,omitempty"`
}

type kindScope struct {
	Kind  string `json:"kind"`
	Scope string `json:"scope"`
}

type plan struct {
	Alpha        float64              `json:"alpha,omitempty"`
	Power        float64              `json:"power,omitempty"`
	MDE          float64              `json:"mde,omitempty"`
	SD           float64              `json:"sd,omitempty"`
	Interactions []plannedInteraction `json:"interactions,omitempty"`
}

// plannedInteraction is one entry of plan.interactions: the other test
// and the minimum detectable difference of differences.
type plannedInteraction struct {
	With string  `json:"with"`
	MDE  float64 `json:"mde"`
}

// Merge appends o's layers and experiments to s.
func (s *Set) Merge(o *Set) {
	s.Layers = append(s.Layers, o.Layers...)
	s.Experiments = append(s.Experiments, o.Experiments...)
}

// ReadFile parses every document of the named file.
func ReadFile(name string) (*Set, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return Parse(name, b)
}

// Parse parses every document of one file's content; name is used in
// errors. All errors of the file are joined; on any error the Set is nil.
func Parse(name string, content []byte) (*Set, error) {
	set := &Set{}
	var errs []error
	seen := map[string]int{}
	docs, starts := splitDocuments(content)
	for i, raw := range docs {
		n := i + 1
		if len(bytes.TrimSpace(stripComments(raw))) == 0 {
			continue
		}
		fail := func(field, msg string) { errs = append(errs, &Error{File: name, Document: n, Field: field, Msg: msg}) }
		var tree any
		if err := yaml.Unmarshal(raw, &tree); err != nil {
			fail("", fileLines(cleanYAMLError(err), starts[i]))
			continue
		}
		if field := unknownField(tree); field != "" {
			fail(field, "unknown field")
			continue
		}
		var d document
		if err := yaml.UnmarshalStrict(raw, &d); err != nil {
			var te *json.UnmarshalTypeError
			switch {
			case errors.As(err, &te) && te.Field != "":
				fail(te.Field, fmt.Sprintf("got %s, want %s", te.Value, te.Type))
			case errors.As(err, &te):
				fail("", fmt.Sprintf("got %s, want a mapping of apiVersion, kind, metadata and spec", te.Value))
			default:
				fail("", fileLines(cleanYAMLError(err), starts[i]))
			}
			continue
		}
		if d.APIVersion != APIVersion {
			fail("apiVersion", fmt.Sprintf("got %q, want %q", d.APIVersion, APIVersion))
			continue
		}
		if d.Spec == nil {
			d.Spec = &spec{}
		}
		key := d.Kind + "/" + d.Metadata.Name
		if prev, dup := seen[key]; dup {
			fail("metadata.name", fmt.Sprintf("%s %q is also defined in document %d", d.Kind, d.Metadata.Name, prev))
			continue
		}
		seen[key] = n
		switch d.Kind {
		case "Layer":
			l := assign.Layer{ID: d.Metadata.Name, Description: d.Spec.Description}
			if err := l.Validate(); err != nil {
				fail(fieldOf(err, "metadata.name"), msgOf(err))
				continue
			}
			set.Layers = append(set.Layers, l)
		case "Experiment":
			e, field, err := d.experiment()
			if err != nil {
				fail(field, err.Error())
				continue
			}
			e.Defaults()
			if err := e.Validate(); err != nil {
				fail(fieldOf(err, ""), msgOf(err))
				continue
			}
			set.Experiments = append(set.Experiments, e)
		default:
			fail("kind", fmt.Sprintf("got %q, want Experiment or Layer", d.Kind))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// specField maps a domain field path (as assign's validation names it) to
// the manifest's field path.
var specField = map[string]string{
	"id":              "metadata.name",
	"change_service":  "spec.changeService",
	"measure_service": "spec.measureService",
	"emits":           "spec.interference.emits",
	"susceptible":     "spec.interference.susceptible",
	"plan.mde":        "spec.plan.mde",
}

func fieldOf(err error, def string) string {
	var fe *assign.FieldError
	if !errors.As(err, &fe) {
		return def
	}
	f := fe.Field
	for from, to := range specField {
		if f == from || strings.HasPrefix(f, from+"[") || strings.HasPrefix(f, from+".") {
			return to + strings.TrimPrefix(f, from)
		}
	}
	return "spec." + f
}

func msgOf(err error) string {
	var fe *assign.FieldError
	if errors.As(err, &fe) {
		return fe.Msg
	}
	return err.Error()
}

func (d *document) experiment() (assign.Experiment, string, error) {
	s := d.Spec
	e := assign.Experiment{
		ID:             d.Metadata.Name,
		Owner:          s.Owner,
		Description:    s.Description,
		ChangeService:  s.ChangeService,
		MeasureService: s.MeasureService,
		Layer:          s.Layer,
		Sticky:         s.Sticky,
		Salt:           s.Salt,
	}
	if s.Metric != nil {
		var m assign.Metric // an unset name is the zero Metric, latency_ms
		if s.Metric.Name != "" {
			var err error
			if m, err = assign.ParseMetric(s.Metric.Name); err != nil {
				return e, "spec.metric.name", err
			}
		}
		switch strings.ToLower(s.Metric.Direction) {
		case "higher", "higher_is_better", "up":
			m.HigherIsBetter = true
		case "", "lower", "lower_is_better", "down":
		default:
			return e, "spec.metric.direction", fmt.Errorf("got %q, want higher or lower", s.Metric.Direction)
		}
		agg, ok := assign.ParseAggregate(strings.ToLower(s.Metric.Aggregate))
		if !ok {
			return e, "spec.metric.aggregate", fmt.Errorf("got %q, want mean, sum, any, count or ratio", s.Metric.Aggregate)
		}
		m.Aggregate = agg
		e.Metric = m
	}
	for i, v := range s.Variants {
		if v.Weight == nil {
			return e, fmt.Sprintf("spec.variants[%d].weight", i), errors.New("is required")
		}
		if *v.Weight < 0 {
			return e, fmt.Sprintf("spec.variants[%d].weight", i), fmt.Errorf("%d is negative", *v.Weight)
		}
		if *v.Weight > 1<<32-1 {
			return e, fmt.Sprintf("spec.variants[%d].weight", i), fmt.Errorf("%d overflows 32 bits", *v.Weight)
		}
		e.Variants = append(e.Variants, assign.Variant{Name: v.Name, Weight: uint32(*v.Weight)})
	}
	if s.Slice != nil {
		if s.Slice.Start < 0 || s.Slice.End > assign.LayerBuckets || s.Slice.Start >= s.Slice.End {
			return e, "spec.slice", fmt.Errorf("[%d, %d) is not a range within [0, %d)", s.Slice.Start, s.Slice.End, assign.LayerBuckets)
		}
		e.Slice = assign.Slice{Start: uint32(s.Slice.Start), End: uint32(s.Slice.End)}
	}
	for i, r := range s.Targeting {
		var op assign.Op
		switch strings.ToLower(r.Op) {
		case "eq", "==":
			op = assign.OpEq
		case "in":
			op = assign.OpIn
		case "not_in", "notin":
			op = assign.OpNotIn
		default:
			return e, fmt.Sprintf("spec.targeting[%d].op", i), fmt.Errorf("got %q, want eq, in or not_in", r.Op)
		}
		e.Targeting = append(e.Targeting, assign.Rule{Attribute: r.Attribute, Op: op, Values: r.Values})
	}
	if in := s.Interference; in != nil {
		for _, x := range in.Emits {
			e.Emits = append(e.Emits, assign.Interference{Kind: x.Kind, Scope: x.Scope})
		}
		for _, x := range in.Susceptible {
			e.Susceptible = append(e.Susceptible, assign.Interference{Kind: x.Kind, Scope: x.Scope})
		}
	}
	if p := s.Plan; p != nil {
		e.Plan = assign.Plan{Alpha: p.Alpha, Power: p.Power, MDE: p.MDE, SD: p.SD}
		for _, x := range p.Interactions {
			e.Plan.Interactions = append(e.Plan.Interactions, assign.PlannedInteraction{With: x.With, MDE: x.MDE})
		}
	}
	return e, "", nil
}

// splitDocuments splits YAML content on lines that are exactly "---"
// (trailing blanks and a CR allowed). starts[i] is the file line (1-based)
// of the first line of docs[i].
func splitDocuments(content []byte) (docs [][]byte, starts []int) {
	var cur bytes.Buffer
	start, line := 1, 0
	for l := range bytes.Lines(content) {
		line++
		if string(bytes.TrimRight(l, " \t\r\n")) == "---" {
			docs, starts = append(docs, bytes.Clone(cur.Bytes())), append(starts, start)
			cur.Reset()
			start = line + 1
			continue
		}
		cur.Write(l)
	}
	return append(docs, cur.Bytes()), append(starts, start)
}

var yamlLine = regexp.MustCompile(`\bline (\d+)`)

// fileLines rewrites the "line N" of a YAML error, which counts from the
// document's first line, into the file's line numbers.
func fileLines(msg string, start int) string {
	return yamlLine.ReplaceAllStringFunc(msg, func(m string) string {
		n, err := strconv.Atoi(strings.TrimPrefix(m, "line "))
		if err != nil {
			return m
		}
		return "line " + strconv.Itoa(n+start-1)
	})
}

// unknownField returns the dotted path of the first key (in sorted order)
// of a decoded document that the manifest schema does not know, or "".
// Keys match exactly: encoding/json alone would accept "Kind" or
// "APIVERSION" for "kind" and "apiVersion". A Layer's spec takes only
// description.
func unknownField(tree any) string {
	t := reflect.TypeFor[document]()
	if m, ok := tree.(map[string]any); ok && m["kind"] == "Layer" {
		t = reflect.TypeFor[layerDocument]()
	}
	return unknownIn(tree, t, "")
}

type layerDocument struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Metadata   metadata  `json:"metadata"`
	Spec       layerSpec `json:"spec"`
}

type layerSpec struct {
	Description string `json:"description,omitempty"`
}

func unknownIn(v any, t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return "" // a map (labels) or a type error, left to the decoder
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			fields[name] = t.Field(i).Type
		}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			ft, ok := fields[k]
			if !ok {
				return join(k)
			}
			if p := unknownIn(x[k], ft, join(k)); p != "" {
				return p
			}
		}
	case []any:
		if t.Kind() == reflect.Slice {
			for i, e := range x {
				if p := unknownIn(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

func stripComments(b []byte) []byte {
	var out bytes.Buffer
	for _, line := range strings.Split(string(b), "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error unmarshaling JSON: while decoding JSON: ")
	s = strings.TrimPrefix(s, "error converting YAML to JSON: ")
	return s
}
