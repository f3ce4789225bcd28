package files

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/abmesh/abmesh/tracing"
)

func TestReadFileFormats(t *testing.T) {
	for _, tc := range []struct {
		path      string
		format    Format
		spans     int
		malformed int
	}{
		{"../testdata/jaeger_ui_export.json", FormatJaegerUI, 7, 1},
		{"../testdata/otlp_traces.json", FormatOTLPJSON, 4, 0},
	} {
		var b tracing.Batch
		f, err := ReadFile(tc.path, &b)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if f != tc.format || len(b.Spans) != tc.spans || b.Malformed.Total() != tc.malformed {
			t.Errorf("%s: format %s, %d spans, %d malformed; want %s, %d, %d",
				tc.path, f, len(b.Spans), b.Malformed.Total(), tc.format, tc.spans, tc.malformed)
		}
	}
	var b tracing.Batch
	if _, err := ReadFile("no/such/file.json", &b); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestDecodeJSONLinesAndMixed(t *testing.T) {
	otlp, err := os.ReadFile("../testdata/otlp_traces.json")
	if err != nil {
		t.Fatal(err)
	}
	one := strings.Join(strings.Fields(string(otlp)), "")
	data := one + "\n" + one + "\n" + `{"data":[]}` + "\n"
	var b tracing.Batch
	f, err := Decode("x.jsonl", []byte(data), &b)
	if err != nil || f != FormatOTLPJSON || len(b.Spans) != 8 {
		t.Errorf("JSON lines: %v, %s, %d spans", err, f, len(b.Spans))
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"syntax", "{\"data\": [\n  {\"spans\": [}\n]}", "bad.json:2:14: invalid character '}'"},
		{"syntax in second document", "{\"data\":[]}\n{\"data\":[}", "bad.json:2:10: invalid character '}'"},
		{"truncated", "{\"resourceSpans\": [", "bad.json:1:20: unexpected EOF"},
		{"type", "{\"data\":[]}\n{\"data\": [{\"spans\": 5}]}", "bad.json:2:21: json: cannot unmarshal number"},
		{"otlp type", "{\"resourceSpans\":[{\"scopeSpans\":{}}]}", "bad.json:1:33: json: cannot unmarshal object"},
		{"unknown", "\n\n  {\"foo\": 1}", "bad.json:3:3: unknown trace format"},
		{"not an object", "[1,2]", "bad.json:1:1: unknown trace format"},
		{"empty", "  ", "bad.json:1:1: no JSON document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b tracing.Batch
			_, err := Decode("bad.json", []byte(tc.in), &b)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %q, want prefix %q", err, tc.want)
			}
		})
	}
}

// FuzzDecode feeds arbitrary bytes to the file reader, seeded with the
// test data files and mutations of them: it must never panic, errors must
// be *Error with a position inside the input, and spans must be counted.
func FuzzDecode(f *testing.F) {
	for _, p := range []string{"../testdata/jaeger_ui_export.json", "../testdata/otlp_traces.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte(`{"data":[{"spans":[{"traceID":"1","spanID":"1","startTime":-5,"duration":1e300}]}]}`))
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"AAAA","startTimeUnixNano":"1e99","kind":"SPAN_KIND_X"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b tracing.Batch
		_, err := Decode("fuzz.json", data, &b)
		if err != nil {
			var fe *Error
			if !errors.As(err, &fe) || fe.Offset < 0 || fe.Offset > int64(len(data)) || fe.Line < 1 {
				t.Fatalf("bad error %#v", err)
			}
			return
		}
		// Whatever was read must go through assembly without a panic and
		// with balanced counters.
		a, err := tracing.NewAssembler(tracing.Config{TickInterval: -1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Add(&b); err != nil && !errors.Is(err, tracing.ErrFull) {
			t.Fatal(err)
		}
		a.Close()
		c := a.Stats()
		if c.SpansReceived != c.SpansAccepted+c.SpansLate+c.MalformedTotal() {
			t.Fatalf("counters do not balance: %+v", c)
		}
	})
}

func TestFormatString(t *testing.T) {
	if FormatJaegerUI.String() != "jaeger-ui" || FormatOTLPJSON.String() != "otlp-json" || Format(9).String() != "unknown" {
		t.Error("Format.String")
	}
}
