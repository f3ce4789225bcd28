package killrun

import (
	"bufio"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// The run itself is tested by cmd/abmeshd's TestKill9LosesNoAcknowledgedTrace,
// which runs its test binary as abmeshd.

func TestValidate(t *testing.T) {
	for _, good := range []Config{{Binary: "abmeshd", Dir: "d", Kills: 1}, {Binary: "abmeshd", Dir: "d", Kills: 1, Replicas: 3, Store: "postgres://x"}} {
		if err := good.Validate(); err != nil {
			t.Fatalf("%+v: %v", good, err)
		}
	}
	for _, c := range []Config{
		{Dir: "d", Kills: 1},
		{Binary: "abmeshd", Kills: 1},
		{Binary: "abmeshd", Dir: "d"},
		{Binary: "abmeshd", Dir: "d", Kills: MaxKills + 1},
		{Binary: "abmeshd", Dir: "d", Kills: 1, MinUp: 2 * time.Second, MaxUp: time.Second},
		{Binary: "abmeshd", Dir: "d", Kills: 1, After: 2 * time.Minute},
		{Binary: "abmeshd", Dir: "d", Kills: 1, IdleTimeout: -1},
		{Binary: "abmeshd", Dir: "d", Kills: 1, Replicas: 3},
		{Binary: "abmeshd", Dir: "d", Kills: 1, Replicas: MaxReplicas + 1, Store: "postgres://x"},
		{Binary: "abmeshd", Dir: "d", Kills: 1, AnswerDelay: 2 * time.Second},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", c)
		}
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("Run accepted %+v", c)
		}
	}
}

func TestReportOK(t *testing.T) {
	ok := Trial{Acked: 5, Counted: 5}
	for _, c := range []struct {
		trials []Trial
		want   bool
	}{
		{nil, false},
		{[]Trial{ok}, true},
		{[]Trial{ok, {Acked: 5, Counted: 6}}, false},
		{[]Trial{{Acked: 5, Counted: 4}}, false},
		{[]Trial{{Acked: 5, Counted: 5, InDoubt: 1}}, false},
	} {
		if got := (Report{Trials: c.trials}).OK(); got != c.want {
			t.Errorf("OK(%+v) = %v, want %v", c.trials, got, c.want)
		}
	}
}

// TestStartFailsClearly: an abmeshd that exits at once is reported with
// its log, not waited for.
func TestStartFailsClearly(t *testing.T) {
	_, err := Run(context.Background(), Config{Binary: "/bin/false", Dir: t.TempDir(), Kills: 1})
	if err == nil {
		t.Fatal("Run with /bin/false as abmeshd succeeded")
	}
	t.Log(err)
}

// TestSlowAnswers: the proxy passes a request on at once, holds the answer
// for its delay, and drops the answers it holds when the server's side
// ends.
func TestSlowAnswers(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	got := make(chan string, 4)
	go func() { // an echo server that hangs up after its second line
		c, err := lis.Accept()
		if err != nil {
			return
		}
		r := bufio.NewReader(c)
		for range 2 {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			got <- line
			io.WriteString(c, line)
		}
		c.Close()
	}()
	p, err := newSlowAnswers(lis.Addr().String(), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	t0 := time.Now()
	io.WriteString(c, "one\n")
	if line := <-got; line != "one\n" || time.Since(t0) > 150*time.Millisecond {
		t.Fatalf("the server got %q after %v", line, time.Since(t0))
	}
	if line, err := r.ReadString('\n'); line != "one\n" || err != nil || time.Since(t0) < 200*time.Millisecond {
		t.Fatalf("answer %q, %v after %v: want it held 200ms", line, err, time.Since(t0))
	}
	io.WriteString(c, "two\n") // answered, then the server hangs up
	<-got
	if line, err := r.ReadString('\n'); err == nil {
		t.Fatalf("answer %q passed on after the server hung up", line)
	}
}
