package tracing

import (
	"reflect"
	"testing"
)

// Add sums every field: each numeric field set to 1 in one and 2 in the
// other sums to 3 (a field added to AssemblyStats but not to Add fails
// here), and the malformed reasons of both are summed by reason.
func TestAssemblyStatsAddSumsEveryField(t *testing.T) {
	var a, b AssemblyStats
	va, vb := reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem()
	for i := range va.NumField() {
		switch va.Field(i).Kind() {
		case reflect.Uint64:
			va.Field(i).SetUint(1)
			vb.Field(i).SetUint(2)
		case reflect.Int:
			va.Field(i).SetInt(1)
			vb.Field(i).SetInt(2)
		}
	}
	a.Malformed = map[string]uint64{"no_trace_id": 1}
	b.Malformed = map[string]uint64{"no_trace_id": 2, "bad_span_id": 5}
	a.Add(b)
	for i := range va.NumField() {
		f := va.Type().Field(i)
		switch va.Field(i).Kind() {
		case reflect.Uint64:
			if va.Field(i).Uint() != 3 {
				t.Errorf("%s = %d after Add, want 3", f.Name, va.Field(i).Uint())
			}
		case reflect.Int:
			if va.Field(i).Int() != 3 {
				t.Errorf("%s = %d after Add, want 3", f.Name, va.Field(i).Int())
			}
		}
	}
	if a.Malformed["no_trace_id"] != 3 || a.Malformed["bad_span_id"] != 5 || len(a.Malformed) != 2 {
		t.Errorf("malformed %v, want no_trace_id 3, bad_span_id 5", a.Malformed)
	}
	var z AssemblyStats
	z.Add(b)
	if z.MalformedTotal() != 7 {
		t.Errorf("zero stats plus b: malformed total %d, want 7", z.MalformedTotal())
	}
}
