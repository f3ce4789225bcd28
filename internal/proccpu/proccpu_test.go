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

// TestTimeMatchesRusage burns CPU in this process and checks that Time
// agrees with the kernel's own getrusage account of it.
func TestTimeMatchesRusage(t *testing.T) {
	before, err := Time(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 1.0
	for time.Now().Before(deadline) {
		for i := 0; i < 10000; i++ {
			x = x*1.0000001 + 1e-9
		}
	}
	after, err := Time(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	rusage := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if after-before < 100*time.Millisecond {
		t.Errorf("a 300 ms busy loop (x=%g) used %v of CPU by /proc", x, after-before)
	}
	// Both count every thread of the process; /proc rounds to 10 ms ticks
	// and was read a moment before getrusage.
	if diff := rusage - after; diff < -20*time.Millisecond || diff > 50*time.Millisecond {
		t.Errorf("/proc says %v, getrusage %v", after, rusage)
	}
	if _, err := Time(1 << 30); err == nil {
		t.Error("Time of a process that does not exist: no error")
	}
}
