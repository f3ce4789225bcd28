package pgtest

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// psql runs a query on url with the cluster's psql and returns its
// unaligned output.
func psql(t *testing.T, s *Server, url, query string) (string, error) {
	t.Helper()
	out, err := exec.Command(filepath.Join(s.bin, "psql"), "-X", "-A", "-t", "-d", url, "-c", query).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestStartQueryRestart(t *testing.T) {
	s := Start(t)
	url := s.NewDatabase(t)
	if _, err := psql(t, s, url, "CREATE TABLE t (v int); INSERT INTO t VALUES (41), (1)"); err != nil {
		t.Fatal(err)
	}
	if other := s.NewDatabase(t); other == url {
		t.Fatalf("NewDatabase returned %s twice", url)
	}

	s.Stop()
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", s.Addr())
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	got, err := psql(t, s, url, "SELECT sum(v) FROM t")
	if err != nil || got != "42" {
		t.Fatalf("after restart: sum = %q, %v; want 42", got, err)
	}

	// A crash keeps committed data (fsync is off, but the OS keeps the
	// page cache) and the next start recovers.
	s.Kill()
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, err := psql(t, s, url, "SELECT count(*) FROM t"); err != nil || got != "2" {
		t.Fatalf("after kill: count = %q, %v; want 2", got, err)
	}
	if _, err := strconv.Atoi(strings.TrimPrefix(s.Addr(), "127.0.0.1:")); err != nil {
		t.Fatalf("Addr %q is not 127.0.0.1:PORT", s.Addr())
	}
}

func TestRunsAsNonRoot(t *testing.T) {
	s := Start(t)
	got, err := psql(t, s, s.URL("postgres"), "SELECT current_setting('data_directory')")
	if err != nil {
		t.Fatal(err)
	}
	if got != s.data() {
		t.Fatalf("data_directory %q, want %q", got, s.data())
	}
}
