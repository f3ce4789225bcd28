package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// cliDoc renders docs/cli.md from the commands' own usage texts, so the
// document cannot drift from the flags.
func cliDoc(t *testing.T) []byte {
	var b bytes.Buffer
	fmt.Fprintln(&b, "# abmesh CLI reference")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "Generated from the commands' usage (`ABMESH_UPDATE_GOLDEN=1 go test ./cmd/abmesh -run TestCLIDocs`).")
	fmt.Fprintln(&b, "Every command that talks to abmeshd takes `--server HOST:PORT` (default `127.0.0.1:7070`, or `$ABMESH_SERVER`);")
	fmt.Fprintln(&b, "read commands take `-o json` for scripts.")
	for _, c := range commands() {
		var out, errOut bytes.Buffer
		args := append(strings.Fields(c.name), "-h")
		_ = run(context.Background(), args, &out, &errOut)
		fmt.Fprintf(&b, "\n## abmesh %s\n\n%s.\n\n```\n%s```\n", c.name, upperFirst(c.summary), errOut.String()+out.String())
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
