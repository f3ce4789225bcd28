package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestAppendEscaped: printable text (non-ASCII included) passes, every
// character a terminal would act on comes out as a Go escape, and
// escaping is idempotent.
func TestAppendEscaped(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain ascii ~!", "plain ascii ~!"},
		{"tab\tand\nnewline", "tab\tand\nnewline"},
		{"équipe 支付 a\u00a0b", "équipe 支付 a\u00a0b"},
		{"zero\u200bwidth 👩\u200d👧", `zero\u200bwidth 👩\u200d👧`},
		{"\x1b[2J\x1b]0;title\x07", `\x1b[2J\x1b]0;title\a`},
		{"cr\rdel\x7fnul\x00", `cr\rdel\x7fnul\x00`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"bidi \u202e001$ \u2066x\u2069", `bidi \u202e001$ \u2066x\u2069`},
		{"bad \xff\xc3 utf8", `bad \xff\xc3 utf8`},
	}
	for _, tt := range tests {
		got := string(appendEscaped(nil, []byte(tt.in)))
		if got != tt.want {
			t.Errorf("appendEscaped(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if again := string(appendEscaped(nil, []byte(got))); again != got {
			t.Errorf("not idempotent on %q: %q", got, again)
		}
	}
}

// TestTableEscapes: a row written to the CLI's table writer keeps its
// columns and shows escapes instead of raw control bytes.
func TestTableEscapes(t *testing.T) {
	var out bytes.Buffer
	tw := table(&out)
	fmt.Fprintln(tw, "NAME\tOWNER")
	fmt.Fprintf(tw, "%s\t%s\n", "exp", "team\x1b[31m\u202eevil")
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.ContainsAny(got, "\x1b\u202e") || !strings.Contains(got, `team\x1b[31m\u202eevil`) {
		t.Fatalf("table output %q: want escapes, no raw control characters", got)
	}
	if lines := strings.Split(strings.TrimSpace(got), "\n"); len(lines) != 2 || strings.Index(lines[0], "OWNER") != strings.Index(lines[1], "team") {
		t.Fatalf("columns not aligned:\n%s", got)
	}
}
