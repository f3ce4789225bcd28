package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/abmesh/abmesh/tracing"
)

const tracesTestdata = "../../tracing/testdata"

func TestTracesInspectJSON(t *testing.T) {
	for _, tc := range []struct {
		file   string
		traces []tracesTraceJSON
	}{
		{
			file: "jaeger_ui_export.json",
			traces: []tracesTraceJSON{
				{
					TraceID:  "4bf92f3577b34da6a3ce929d0e0e4736",
					Unit:     "user-7",
					Services: []string{"checkout", "frontend", "payment"},
					Edges:    []tracing.Edge{{Caller: "checkout", Callee: "payment", Calls: 1}, {Caller: "frontend", Callee: "checkout", Calls: 1}},
					Exposures: []tracesExposureJSON{
						{"fast-checkout", "control", "checkout"}, {"new-home", "treatment", "frontend"},
					},
					Conflicts: []tracesConflictJSON{},
					Metrics: []tracesServiceMetric{
						{"checkout", 100, false, map[string]float64{"shop.order.value": 42.5}},
						{"frontend", 120, false, map[string]float64{"http.status_code": 200}},
						{"payment", 58, true, map[string]float64{}},
					},
				},
				{
					TraceID:   "000000000000000000f067aa0ba902b7",
					Unit:      "user-9",
					Services:  []string{"checkout", "frontend"},
					Edges:     []tracing.Edge{{Caller: "frontend", Callee: "checkout", Calls: 1}},
					Exposures: []tracesExposureJSON{{"new-home", "control", "frontend"}, {"new-home", "treatment", "checkout"}},
					Conflicts: []tracesConflictJSON{{"new-home", []string{"control", "treatment"}}},
					Metrics: []tracesServiceMetric{
						{"checkout", 20, false, map[string]float64{}},
						{"frontend", 30, false, map[string]float64{}},
					},
				},
			},
		},
		{
			file: "otlp_traces.json",
			traces: []tracesTraceJSON{
				{
					TraceID:   "5b8efff798038103d269b633813fc60c",
					Unit:      "user-3",
					Services:  []string{"frontend", "recommendations"},
					Edges:     []tracing.Edge{{Caller: "frontend", Callee: "recommendations", Calls: 1}},
					Exposures: []tracesExposureJSON{{"new-home", "treatment", "frontend"}, {"ranker-v2", "v2", "recommendations"}},
					Conflicts: []tracesConflictJSON{},
					Metrics: []tracesServiceMetric{
						{"frontend", 80, false, map[string]float64{"http.status_code": 200}},
						{"recommendations", 55, false, map[string]float64{"recs.cache_hit": 1, "recs.count": 12}},
					},
				},
				{
					TraceID:   "71699b6fe85982c7c8995ea3d9c95df2",
					Unit:      "user-4",
					Services:  []string{"frontend"},
					Edges:     []tracing.Edge{},
					Exposures: []tracesExposureJSON{{"new-home", "control", "frontend"}},
					Conflicts: []tracesConflictJSON{},
					Metrics:   []tracesServiceMetric{{"frontend", 40, true, map[string]float64{"http.status_code": 500}}},
				},
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var out bytes.Buffer
			if err := runCmd(&out, nil, "traces inspect", filepath.Join(tracesTestdata, tc.file), "-o", "json"); err != nil {
				t.Fatal(err)
			}
			// The exact top-level shape: only "traces".
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(out.Bytes(), &raw); err != nil || len(raw) != 1 || raw["traces"] == nil {
				t.Fatalf("output is not {\"traces\":[…]}: %v\n%s", err, out.String())
			}
			var got tracesInspectJSON
			dec := json.NewDecoder(&out)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Traces, tc.traces) {
				t.Errorf("got\n%+v\nwant\n%+v", got.Traces, tc.traces)
			}
		})
	}
}

func TestTracesInspectText(t *testing.T) {
	var out bytes.Buffer
	if err := runCmd(&out, nil, "traces inspect", "-o", "table", filepath.Join(tracesTestdata, "jaeger_ui_export.json")); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"trace 4bf92f3577b34da6a3ce929d0e0e4736\n",
		"  unit       user-7\n",
		"  calls      checkout → payment, frontend → checkout\n",
		"fast-checkout  control",
		"  conflict   new-home served control and treatment\n",
		"payment   58.000      1",
		"(jaeger-ui): 2 traces, 8 spans read, 7 accepted, 1 rejected (invalid_span_id=1)\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestTracesInspectErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{\"data\": [\n  {\"spans\": [}\n]}"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknown := filepath.Join(dir, "unknown.json")
	if err := os.WriteFile(unknown, []byte(`{"spans":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "want exactly one FILE"},
		{[]string{"a", "b"}, "want exactly one FILE"},
		{[]string{bad, "-o", "yaml"}, `invalid value "yaml" for flag -o: want table, json or text`},
		{[]string{bad}, bad + ":2:14: invalid character '}'"},
		{[]string{unknown}, "unknown trace format"},
		{[]string{filepath.Join(dir, "missing.json")}, "no such file"},
	} {
		var out bytes.Buffer
		err := runCmd(&out, nil, "traces inspect", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}
