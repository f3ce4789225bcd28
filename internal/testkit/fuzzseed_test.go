package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzSeed: the file is in go test's corpus format, named by its
// content, and writing it again gives the same file.
func TestWriteFuzzSeed(t *testing.T) {
	dir := t.TempDir()
	p, err := WriteFuzzSeed(dir, "FuzzX", []byte("a\x00\"é"), "s\n", int64(-3), uint32(7), uint64(1<<63), 5, true)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := "go test fuzz v1\n[]byte(\"a\\x00\\\"é\")\nstring(\"s\\n\")\nint64(-3)\nuint32(7)\nuint64(9223372036854775808)\nint(5)\nbool(true)\n"
	if string(got) != want {
		t.Errorf("seed file:\n%s\nwant:\n%s", got, want)
	}
	if filepath.Dir(p) != filepath.Join(dir, "testdata", "fuzz", "FuzzX") || len(filepath.Base(p)) != 16 {
		t.Errorf("path %s", p)
	}
	if p2, err := WriteFuzzSeed(dir, "FuzzX", []byte("a\x00\"é"), "s\n", int64(-3), uint32(7), uint64(1<<63), 5, true); err != nil || p2 != p {
		t.Errorf("second write: %s, %v; want %s", p2, err, p)
	}
	if _, err := WriteFuzzSeed(dir, "FuzzX", 1.5); err == nil {
		t.Error("float64 accepted")
	}
}
