// Package pgtest starts a real PostgreSQL server for a test: Debian's
// postgresql binaries (/usr/lib/postgresql/*/bin, or the directory in
// $ABMESH_PG_BIN), a fresh cluster in a temporary directory, listening on
// a free loopback port with trust authentication. PostgreSQL refuses to
// run as root, so when the test runs as root (as CI does) the cluster is
// owned by, and the server runs as, the "postgres" system user the Debian
// package creates.
//
// A test that cannot have a server is skipped with a message naming
// PostgreSQL and what was missing; it is never faked.
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Server is a running PostgreSQL cluster owned by one test.
type Server struct {
	bin  string // directory of the server binaries
	dir  string // cluster root: data/, the socket and the log
	port int
	cred *syscall.Credential // the user the server runs as; nil: the test's own
	// durable keeps PostgreSQL's durability defaults (StartDurable).
	durable bool

	mu  sync.Mutex
	cmd *exec.Cmd
	dbs atomic.Int64
}

// User is the cluster's superuser; it connects without a password.
const User = "abmesh"

// binDir finds the directory of initdb and postgres.
func binDir() (string, error) {
	if d := os.Getenv("ABMESH_PG_BIN"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first ("9.6" sorts after "15" as text, so
	// compare numerically).
	slices.SortFunc(dirs, func(a, b string) int {
		return majorOf(b) - majorOf(a)
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/postgres, no postgres on PATH; apt-get install postgresql, or set ABMESH_PG_BIN)")
}

func majorOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start starts a fresh PostgreSQL cluster for t, stopped and removed when
// t ends, or skips t with a message naming PostgreSQL when no server can
// be started here.
func Start(t testing.TB) *Server {
	t.Helper()
	return startFor(t, false)
}

// StartDurable is Start for a server with PostgreSQL's durability
// defaults — fsync, synchronous_commit and full_page_writes on, its data
// on the machine's disk — instead of a test cluster's shortcuts: for
// benchmarks whose figures (commit latency, WAL bytes) must be those of a
// production server.
func StartDurable(t testing.TB) *Server {
	t.Helper()
	return startFor(t, true)
}

func startFor(t testing.TB, durable bool) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("PostgreSQL tests skipped in -short mode")
	}
	s, err := start(durable)
	if errors.Is(err, errUnavailable) {
		t.Skipf("PostgreSQL unavailable: %v", err)
	}
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(s.remove)
	return s
}

var errUnavailable = errors.New("PostgreSQL unavailable")

func start(durable bool) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnavailable, err)
	}
	s := &Server{bin: bin, durable: durable}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("%w: running as root and there is no postgres user to run the server as: %v", errUnavailable, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parents are private to root, and the server's
	// user must reach its data directory.
	if s.dir, err = os.MkdirTemp("", "abmesh-pg-"); err != nil {
		return nil, err
	}
	if err := s.chown(s.dir); err != nil {
		s.remove()
		return nil, err
	}
	tmpl, err := s.template()
	if err != nil {
		s.remove()
		return nil, err
	}
	// A copy of one initdb per test binary: a second and a half saved
	// per server.
	if out, err := s.command("cp", "-a", tmpl, s.data()).CombinedOutput(); err != nil {
		s.remove()
		return nil, fmt.Errorf("copy the template cluster: %v\n%s", err, out)
	}
	if s.port, err = freePort(); err != nil {
		s.remove()
		return nil, err
	}
	if err := s.Restart(); err != nil {
		s.remove()
		return nil, err
	}
	return s, nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	if err := os.Chmod(path, 0o755); err != nil {
		return err
	}
	return os.Chown(path, int(s.cred.Uid), int(s.cred.Gid))
}

var tmpl struct {
	once sync.Once
	dir  string
	err  error
}

// template returns the data directory of an initdb'd cluster owned by
// the server's user, made once per machine and PostgreSQL version and
// kept in the temporary directory (about 40 MB) for later test binaries.
// Concurrent test binaries each make one and the first rename wins.
func (s *Server) template() (string, error) {
	tmpl.once.Do(func() {
		final := filepath.Join(os.TempDir(), fmt.Sprintf("abmesh-pg-template-%d-%d", majorOf(s.bin), os.Geteuid()))
		data := filepath.Join(final, "data")
		if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); err == nil {
			tmpl.dir = data
			return
		}
		dir, err := os.MkdirTemp("", "abmesh-pg-initdb-")
		if err == nil {
			err = s.chown(dir)
		}
		if err != nil {
			tmpl.err = err
			return
		}
		if out, err := s.command("initdb", "-D", filepath.Join(dir, "data"), "-U", User, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			tmpl.err = fmt.Errorf("initdb: %v\n%s", err, out)
			return
		}
		if err := os.Rename(dir, final); err != nil {
			os.RemoveAll(dir) // another test binary was first
		}
		tmpl.dir = data
	})
	return tmpl.dir, tmpl.err
}

// command runs one of the cluster's binaries (or, for a name with no such
// binary, the command of that name) as the server's user.
func (s *Server) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(s.bin, name)
	if _, err := os.Stat(path); err != nil {
		path = name
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = s.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: s.cred}
	return cmd
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Restart starts the server again after Stop or Kill, on the same port
// with the same data. It returns once the server accepts connections.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("PostgreSQL is already running")
	}
	logf, err := os.OpenFile(filepath.Join(s.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	if err := s.chown(logf.Name()); err != nil {
		return err
	}
	args := []string{"-D", s.data(), "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"}
	if !s.durable {
		// fsync off: a test cluster need not survive a power cut, and it
		// makes every commit a memory write.
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "shared_buffers=32MB")
	}
	cmd := s.command("postgres", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := s.command("pg_isready", "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", User, "-d", "postgres").CombinedOutput()
		if err == nil {
			// Reap the server when it exits, whoever stopped it.
			go func() { <-exited }()
			return nil
		}
		select {
		case werr := <-exited:
			s.cmd = nil
			return fmt.Errorf("postgres exited at start (%v); log:\n%s", werr, s.Log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			s.cmd = nil
			return fmt.Errorf("postgres not ready after 30 s (pg_isready: %v %s); log:\n%s", err, out, s.Log())
		}
	}
}

// Addr is the server's HOST:PORT.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the connection URL of database db on the server.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", User, s.Addr(), db)
}

// NewDatabase creates an empty database with a name of its own and
// returns its URL: tests sharing one server each get their own.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test%d", s.dbs.Add(1))
	out, err := s.command("createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", User, name).CombinedOutput()
	if err != nil {
		t.Fatalf("createdb %s: %v\n%s", name, err, out)
	}
	return s.URL(name)
}

// Stop shuts the server down (fast mode: open sessions are ended, the
// data is kept) and waits until it has exited.
func (s *Server) Stop() { s.signal(syscall.SIGINT) }

// Kill kills the server's processes at once (SIGKILL), as a crash would.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	pid := s.cmd.Process.Pid
	if sig == syscall.SIGKILL {
		_ = syscall.Kill(-pid, sig) // the postmaster and its backends
	} else {
		_ = syscall.Kill(pid, sig)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			break
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // whatever is left
	s.cmd = nil
	// After a kill the postmaster.pid stays; postgres removes a stale one
	// itself on the next start.
}

// Log returns the server's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
	return string(bytes.TrimSpace(b))
}

func (s *Server) remove() {
	s.Stop()
	os.RemoveAll(s.dir)
}
