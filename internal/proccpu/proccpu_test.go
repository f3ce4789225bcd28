package proccpu

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and a ')' of its own; utime 250, stime 130.
	line := "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 130 0 0 20 0 12 0 5000 1000000 300 18446744073709551615\n"
	got, err := parseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3800 * time.Millisecond; got != want {
		t.Errorf("parseStat = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "4242 prog S 1", "4242 (p) S 1 2 3", "4242 (p) S 1 4242 4242 0 -1 4194560 900 0 0 0 x 130 0"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted malformed input", bad)
		}
	}
}

func rusage(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestTimeMatchesRusage burns CPU in this process until the kernel's own
// getrusage account has grown by 200 ms (however long that takes on a
// busy machine, within 20 s) and checks that Time saw the same.
func TestTimeMatchesRusage(t *testing.T) {
	before, err := Time(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	start := rusage(t)
	deadline := time.Now().Add(20 * time.Second)
	x := 1.0
	for rusage(t)-start < 200*time.Millisecond && time.Now().Before(deadline) {
		for i := 0; i < 100000; i++ {
			x = x*1.0000001 + 1e-9
		}
	}
	after, err := Time(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	end := rusage(t)
	if end-start < 200*time.Millisecond {
		t.Skipf("the busy loop (x=%g) got only %v of CPU in 20 s", x, end-start)
	}
	// Both count every thread of the process; /proc rounds down to 10 ms
	// ticks and was read a moment before the last getrusage.
	if diff := end - after; diff < -20*time.Millisecond || diff > 50*time.Millisecond {
		t.Errorf("/proc says %v, getrusage %v", after, end)
	}
	if got := after - before; got < 150*time.Millisecond {
		t.Errorf("/proc saw %v of the loop's %v", got, end-start)
	}
	if _, err := Time(1 << 30); err == nil {
		t.Error("Time of a process that does not exist: no error")
	}
}
