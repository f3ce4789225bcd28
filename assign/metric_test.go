package assign

import (
	"strings"
	"testing"
)

func TestParseMetric(t *testing.T) {
	for _, tc := range []struct {
		name string
		want Metric
		ok   bool
	}{
		{"latency_ms", Metric{Kind: MetricLatencyMS}, true},
		{"error", Metric{Kind: MetricError}, true},
		{"attribute:shop.order.value", Metric{Kind: MetricAttribute, Attribute: "shop.order.value"}, true},
		{"attribute:a:b", Metric{Kind: MetricAttribute, Attribute: "a:b"}, true},
		{"attribute: ", Metric{Kind: MetricAttribute, Attribute: " "}, true},
		{"", Metric{}, false},
		{"attribute", Metric{}, false},
		{"attribute:", Metric{}, false},
		{"latency_ms:x", Metric{}, false},
		{"error:", Metric{}, false},
		{"Latency_ms", Metric{}, false},
		{"latency", Metric{}, false},
		{"attr:x", Metric{}, false},
		{" error", Metric{}, false},
	} {
		got, err := ParseMetric(tc.name)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMetric(%q) = %+v, %v; want %+v, ok %v", tc.name, got, err, tc.want, tc.ok)
		}
		if err != nil && (!strings.HasPrefix(err.Error(), "metric ") || !strings.Contains(err.Error(), "attribute:<key>")) {
			t.Errorf("ParseMetric(%q) error %q does not name the field and the syntax", tc.name, err)
		}
		if tc.ok && got.String() != tc.name {
			t.Errorf("ParseMetric(%q).String() = %q", tc.name, got.String())
		}
	}
}

func TestMetricString(t *testing.T) {
	for m, want := range map[Metric]string{
		{Kind: MetricLatencyMS}:                                       "latency_ms",
		{Kind: MetricError, HigherIsBetter: true}:                     "error",
		{Kind: MetricAttribute, Attribute: "ad.clicked"}:              "attribute:ad.clicked",
		{Kind: MetricKind(9)}:                                         "MetricKind(9)",
		{Kind: MetricLatencyMS, Attribute: "ignored"}:                 "latency_ms",
		{Kind: MetricAttribute, Attribute: "x", HigherIsBetter: true}: "attribute:x",
	} {
		if got := m.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", m, got, want)
		}
	}
}

// FuzzMetricRoundTrip checks both directions: every valid Metric (without
// a direction) survives String and ParseMetric, and every name ParseMetric
// accepts is the String of what it returns.
func FuzzMetricRoundTrip(f *testing.F) {
	f.Add(0, "")
	f.Add(1, "")
	f.Add(2, "shop.order.value")
	f.Add(2, "a:b")
	f.Add(3, "x")
	f.Fuzz(func(t *testing.T, kind int, attr string) {
		m := Metric{Kind: MetricKind(kind), Attribute: attr}
		if m.Validate() == nil {
			got, err := ParseMetric(m.String())
			if err != nil || got != m {
				t.Fatalf("ParseMetric(%q) = %+v, %v; want %+v", m.String(), got, err, m)
			}
		}
		for _, name := range []string{attr, "attribute:" + attr} {
			if got, err := ParseMetric(name); err == nil && got.String() != name {
				t.Fatalf("ParseMetric(%q) = %+v, whose String is %q", name, got, got.String())
			}
		}
	})
}
