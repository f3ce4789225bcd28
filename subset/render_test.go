package subset

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/graph/formats/dot"
)

// Set ABMESH_UPDATE_GOLDEN=1 to rewrite the golden files in testdata/.
var updateGolden = os.Getenv("ABMESH_UPDATE_GOLDEN") != ""

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with ABMESH_UPDATE_GOLDEN=1 to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s", name, got)
	}
}

// workedWithCap is the worked example plus tests that overflow a cap of 3
// on t2's subset and a service outside the graph.
func workedWithCap(t *testing.T) ([]Test, []Subset) {
	tests := workedTests()
	tests = append(tests,
		Test{ID: "t1", ChangeService: "Svc1", MeasureService: "Svc1", Emits: []Interference{{KindLatency, ScopeChangeDownstream}}},
		Test{ID: "tx", ChangeService: "SvcX", MeasureService: "Svc2", Emits: []Interference{{KindErrorRate, ScopeMeasure}}},
		Test{ID: "ty", ChangeService: "Svc3", MeasureService: "Svc3", Emits: []Interference{{"cache", ScopeChange}},
			Susceptible: []Interference{{KindErrorRate, ScopeChangeUpstream}}},
	)
	tests[0].Susceptible = append(tests[0].Susceptible, Interference{KindErrorRate, ScopeMeasure})
	subs, err := Compute(tests, workedGraph(t), WithCap(3))
	if err != nil {
		t.Fatal(err)
	}
	return tests, subs
}

func TestWriteDOT(t *testing.T) {
	tests, subs := workedWithCap(t)
	var b bytes.Buffer
	if err := WriteDOT(&b, workedGraph(t), subs, tests); err != nil {
		t.Fatal(err)
	}
	golden(t, "worked.dot", b.Bytes())
	if _, err := dot.ParseBytes(b.Bytes()); err != nil {
		t.Errorf("output is not valid DOT: %v", err)
	}
	if !strings.Contains(b.String(), `"SvcX" [`) {
		t.Error("service outside the graph not drawn")
	}
}

func TestWriteTable(t *testing.T) {
	_, subs := workedWithCap(t)
	var b bytes.Buffer
	if err := WriteTable(&b, subs); err != nil {
		t.Fatal(err)
	}
	golden(t, "worked.txt", b.Bytes())
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestRenderWriteError(t *testing.T) {
	_, subs := workedWithCap(t)
	if err := WriteDOT(errWriter{}, workedGraph(t), subs, nil); err == nil {
		t.Error("WriteDOT: no error from a failing writer")
	}
	if err := WriteTable(errWriter{}, subs); err == nil {
		t.Error("WriteTable: no error from a failing writer")
	}
	if err := WriteDOT(&bytes.Buffer{}, nil, nil, nil); err != nil {
		t.Errorf("WriteDOT of nothing: %v", err)
	}
}

func TestDotID(t *testing.T) {
	for in, want := range map[string]string{
		`svc`:       `"svc"`,
		`a"b`:       `"a\"b"`,
		`a\b`:       `"a\\b"`,
		"two\nrows": `"two\nrows"`,
	} {
		if got := dotID(in); got != want {
			t.Errorf("dotID(%q) = %s, want %s", in, got, want)
		}
	}
}
