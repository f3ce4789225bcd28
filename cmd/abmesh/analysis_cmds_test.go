package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
)

const anovaRef = "../../analysis/testdata/anova"

type refRow struct {
	Term string   `json:"term"`
	DF   float64  `json:"df"`
	SS   float64  `json:"ss"`
	F    *float64 `json:"f"`
	P    *float64 `json:"p"`
}

// TestRunAnovaJSONMatchesR runs "abmesh anova -o json" on the shared R
// reference datasets for every type and compares with R.
func TestRunAnovaJSONMatchesR(t *testing.T) {
	for _, name := range []string{"toothgrowth", "warpbreaks", "unbalanced_abc"} {
		b, err := os.ReadFile(filepath.Join(anovaRef, name+".expected.json"))
		if err != nil {
			t.Fatal(err)
		}
		var ref struct {
			Response string
			Factors  []string
			Type1    []refRow `json:"type1"`
			Type2    []refRow `json:"type2"`
			Type3    []refRow `json:"type3"`
		}
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatal(err)
		}
		for typ, rows := range map[string][]refRow{"1": ref.Type1, "2": ref.Type2, "3": ref.Type3} {
			t.Run(name+"/type"+typ, func(t *testing.T) {
				var out bytes.Buffer
				err := runCmd(&out, nil, "anova", "--csv", filepath.Join(anovaRef, name+".csv"), "--response", ref.Response,
					"--factors", strings.Join(ref.Factors, ","), "--type", typ, "-o", "json")
				if err != nil {
					t.Fatal(err)
				}
				// Exactly the documented keys.
				var raw map[string]json.RawMessage
				if err := json.Unmarshal(out.Bytes(), &raw); err != nil {
					t.Fatalf("output is not JSON: %v\n%s", err, out.String())
				}
				if len(raw) != 3 || raw["type"] == nil || raw["terms"] == nil || raw["residual"] == nil {
					t.Errorf("keys: %s", out.String())
				}
				var got struct {
					Type  int `json:"type"`
					Terms []struct {
						Term        string   `json:"term"`
						DF          int      `json:"df"`
						SS          *float64 `json:"ss"`
						MS          *float64 `json:"ms"`
						F           *float64 `json:"f"`
						P           *float64 `json:"p"`
						PartialEta2 *float64 `json:"partial_eta2"`
					} `json:"terms"`
					Residual struct {
						DF int     `json:"df"`
						SS float64 `json:"ss"`
					} `json:"residual"`
				}
				if err := json.Unmarshal(out.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				if got.Type != int(typ[0]-'0') {
					t.Errorf("type = %d", got.Type)
				}
				i := 0
				for _, w := range rows {
					switch w.Term {
					case "(Intercept)":
						continue // omitted from the JSON
					case "Residuals":
						if float64(got.Residual.DF) != w.DF || !scalar.EqualWithinAbsOrRel(got.Residual.SS, w.SS, 0, 1e-8) {
							t.Errorf("residual %+v, want %+v", got.Residual, w)
						}
						continue
					}
					if i >= len(got.Terms) {
						t.Fatalf("only %d terms", len(got.Terms))
					}
					g := got.Terms[i]
					i++
					if g.Term != w.Term || float64(g.DF) != w.DF || g.SS == nil || g.F == nil || g.P == nil || g.MS == nil || g.PartialEta2 == nil {
						t.Errorf("term %d = %+v, want %+v", i, g, w)
						continue
					}
					if !scalar.EqualWithinAbsOrRel(*g.SS, w.SS, 0, 1e-8) || !scalar.EqualWithinAbsOrRel(*g.F, *w.F, 0, 1e-8) ||
						!scalar.EqualWithinAbsOrRel(*g.P, *w.P, 1e-12, 1e-6) || !scalar.EqualWithinAbsOrRel(*g.MS, w.SS/w.DF, 0, 1e-8) {
						t.Errorf("%s: ss %v f %v p %v, want %v %v %v", w.Term, *g.SS, *g.F, *g.P, w.SS, *w.F, *w.P)
					}
					if eta := w.SS / (w.SS + rows[len(rows)-1].SS); !scalar.EqualWithinAbsOrRel(*g.PartialEta2, eta, 0, 1e-8) {
						t.Errorf("%s: partial η² %v, want %v", w.Term, *g.PartialEta2, eta)
					}
				}
				if i != len(got.Terms) {
					t.Errorf("%d terms, want %d", len(got.Terms), i)
				}
			})
		}
	}
}

func TestRunAnovaText(t *testing.T) {
	var out bytes.Buffer
	err := runCmd(&out, nil, "anova", "--csv", filepath.Join(anovaRef, "warpbreaks.csv"), "--response", "breaks", "--factors", "wool, tension", "--estimates")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Type III ANOVA (contr.sum), N = 54", "wool:tension", "Residuals", "Effects", "Cell means"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data.csv")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunAnovaErrors(t *testing.T) {
	good := "y,a,b\n1,x,p\n2,y,q\n3,x,q\n4,y,p\n5,x,p\n"
	for _, tc := range []struct {
		name string
		csv  string
		args []string
		want []string
	}{
		{"missing column", good, []string{"--response", "y", "--factors", "a,c"}, []string{`column "c" not in CSV header`}},
		{"missing response", good, []string{"--response", "z", "--factors", "a"}, []string{`column "z"`}},
		{"non-numeric", "y,a\n1,x\n2,y\nfast,x\n", []string{"--response", "y", "--factors", "a"}, []string{"line 4", `column "y"`, `"fast"`}},
		{"one level", "y,a,b\n1,x,p\n2,x,q\n3,x,q\n", []string{"--response", "y", "--factors", "a,b"}, []string{`factor "a" has only one level ("x")`}},
		{"empty file", "", []string{"--response", "y", "--factors", "a"}, []string{"empty CSV"}},
		{"header only", "y,a\n", []string{"--response", "y", "--factors", "a"}, []string{"no data rows"}},
		{"bad type", good, []string{"--response", "y", "--factors", "a", "--type", "4"}, []string{"--type 4"}},
		{"bad output", good, []string{"--response", "y", "--factors", "a", "-o", "xml"}, []string{`invalid value "xml" for flag -o: want text or json`}},
		{"no factors", good, []string{"--response", "y"}, []string{"--factors is required"}},
		{"no response", good, []string{"--factors", "a"}, []string{"--response is required"}},
		{"stray argument", good, []string{"--response", "y", "--factors", "a", "extra"}, []string{`unexpected argument "extra"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--csv", writeTemp(t, tc.csv)}, tc.args...)
			var out bytes.Buffer
			err := runCmd(&out, nil, "anova", args...)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q, want %q", err, w)
				}
			}
		})
	}
	if err := runCmd(&bytes.Buffer{}, nil, "anova", "--response", "y", "--factors", "a"); err == nil || !strings.Contains(err.Error(), "--csv is required") {
		t.Errorf("no --csv: %v", err)
	}
	if err := runCmd(&bytes.Buffer{}, nil, "anova", "--csv", "/nonexistent/x.csv", "--response", "y", "--factors", "a"); err == nil {
		t.Error("missing file: no error")
	}
}

// TestRunAnovaEmptyCellJSON: not-estimable terms have null numbers and a
// note; the JSON still encodes.
func TestRunAnovaEmptyCellJSON(t *testing.T) {
	p := writeTemp(t, "y,a,b\n1,x,p\n2,x,p\n3,x,q\n5,x,q\n4,y,p\n7,y,p\n")
	var out bytes.Buffer
	if err := runCmd(&out, nil, "anova", "--csv", p, "--response", "y", "--factors", "a,b", "--type", "1", "-o", "json"); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Terms []map[string]any `json:"terms"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	ab := got.Terms[2]
	if ab["term"] != "a:b" || ab["ss"] != nil || ab["f"] != nil || !strings.Contains(ab["note"].(string), "cell a=y,b=q is empty") {
		t.Errorf("a:b = %v", ab)
	}
	if a := got.Terms[0]; a["f"] == nil || a["note"] != nil {
		t.Errorf("a = %v", a)
	}
}

func TestRunPower(t *testing.T) {
	for _, tc := range []struct {
		args []string
		key  string
		want float64
		ceil float64
		text string
	}{
		{[]string{"--u", "1", "--f2", "0.01"}, "v", 784.81, 787, "v = 784.81"},
		{[]string{"--k", "4", "--f", "0.1"}, "n", 273.54, 274, "n = 273.54 per group"},
		{[]string{"--d", "0.2"}, "n", 393.41, 394, "n = 393.41 per group"},
		{[]string{"--d", "0.2", "--alpha", "0.05", "--power", "0.8"}, "n", 393.41, 394, "collect 394"},
		{[]string{"--u", "1", "--cells", "2", "--mde", "0.2", "--sd", "1"}, "n", 393.41, 394, "per cell"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			if err := runCmd(&out, nil, "power", append(tc.args, "-o", "json")...); err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			v, _ := got[tc.key].(float64)
			if !scalar.EqualWithinAbsOrRel(v, tc.want, 1e-2, 0) || got["n_required"] != tc.ceil || got["alpha"] != 0.05 || got["power"] != 0.8 {
				t.Errorf("json = %s", out.String())
			}
			out.Reset()
			if err := runCmd(&out, nil, "power", tc.args...); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), tc.text) {
				t.Errorf("text lacks %q:\n%s", tc.text, out.String())
			}
		})
	}
}

func TestRunPowerErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give exactly one of"},
		{[]string{"--u", "1"}, "give exactly one of"},
		{[]string{"--u", "1", "--f2", "0.1", "--d", "0.2"}, "give exactly one of"},
		{[]string{"--k", "4"}, "give exactly one of"},
		{[]string{"--d", "0.2", "--power", "1.5"}, "power = 1.5"},
		{[]string{"--d", "0"}, "d = 0"},
		{[]string{"--k", "1", "--f", "0.1"}, "k = 1"},
		{[]string{"--d", "0.2", "-o", "yaml"}, `invalid value "yaml" for flag -o: want text or json`},
		{[]string{"--d", "0.2", "x"}, `unexpected argument "x"`},
	} {
		err := runCmd(&bytes.Buffer{}, nil, "power", tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
	if err := runCmd(&bytes.Buffer{}, nil, "power", "--nope"); err == nil {
		t.Error("unknown flag: no error")
	}
}
