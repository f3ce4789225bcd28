package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

// cliDoc renders docs/cli.md from the command table and each command's
// own -h, so the document cannot drift from the flags.
func cliDoc(t *testing.T) []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, "# abmesh CLI reference")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "Generated from the commands' usage (`ABMESH_UPDATE_GOLDEN=1 go test ./cmd/abmesh -run TestCLIDocs`).")
	fmt.Fprintf(&b, "Every command that talks to abmeshd takes `--server HOST:PORT` (default `%s`, or `$ABMESH_SERVER`);\n", defaultServer)
	fmt.Fprintln(&b, "read commands take `-o json` for scripts. Before the command, `--token TOKEN` (or `$ABMESH_TOKEN`) is the bearer token")
	fmt.Fprintln(&b, "for abmeshd's `--auth-file`; `--tls-ca FILE` (`system`: the system's roots) talks TLS and verifies abmeshd's certificate;")
	fmt.Fprintln(&b, "`--tls-client-cert FILE --tls-client-key FILE` present a client certificate (mTLS). `--actor NAME` (or `$ABMESH_ACTOR`,")
	fmt.Fprintln(&b, "default the OS user name) is who abmeshd's audit log (`abmesh history`) records for admin changes when abmeshd does not")
	fmt.Fprintln(&b, "authenticate callers; with authentication on it records the authenticated identity (docs/operations.md, Security).")
	for _, g := range commandGroups {
		fmt.Fprintf(&b, "\n## %s\n", g.title)
		for _, c := range g.commands {
			var out, errOut bytes.Buffer
			err := run(context.Background(), append(strings.Fields(c.name), "-h"), &out, &errOut)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("abmesh %s -h: err = %v, want flag.ErrHelp", c.name, err)
			}
			if want := fmt.Sprintf("Usage: abmesh %s %s\n", c.name, c.usage); !strings.HasPrefix(errOut.String(), want) {
				t.Errorf("abmesh %s -h starts\n%q\nwant\n%q", c.name, errOut.String(), want)
			}
			if out.Len() > 0 {
				t.Errorf("abmesh %s -h wrote to stdout: %q", c.name, out.String())
			}
			fmt.Fprintf(&b, "\n### abmesh %s\n\n%s.\n\n```\n%s```\n", c.name, upperFirst(c.summary), errOut.String())
		}
	}
	return b.Bytes()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func TestCLIDocs(t *testing.T) {
	got := cliDoc(t)
	const path = "../../docs/cli.md"
	if os.Getenv("ABMESH_UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/cli.md is out of date: run ABMESH_UPDATE_GOLDEN=1 go test ./cmd/abmesh -run TestCLIDocs")
	}
}

// TestHelpListsEveryCommand: "abmesh help" shows each command of the
// table, and each name finds its own command.
func TestHelpListsEveryCommand(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range commands() {
		if !strings.Contains(out.String(), "\n  "+c.name+" ") || !strings.Contains(out.String(), "abmesh "+c.name+" "+c.usage+"\n") {
			t.Errorf("help lacks %q with its usage:\n%s", c.name, out.String())
		}
		if found, _ := lookup(strings.Fields(c.name)); found != c {
			t.Errorf("%q finds %v", c.name, found)
		}
	}
}
