package killrun

import (
	"context"
	"testing"
	"time"
)

// The run itself is tested by cmd/abmeshd's TestKill9LosesNoAcknowledgedTrace,
// which runs its test binary as abmeshd.

func TestValidate(t *testing.T) {
	good := Config{Binary: "abmeshd", Dir: "d", Kills: 1}
	if err := good.Validate(); err != nil {
		t.Fatalf("%+v: %v", good, err)
	}
	for _, c := range []Config{
		{Dir: "d", Kills: 1},
		{Binary: "abmeshd", Kills: 1},
		{Binary: "abmeshd", Dir: "d"},
		{Binary: "abmeshd", Dir: "d", Kills: MaxKills + 1},
		{Binary: "abmeshd", Dir: "d", Kills: 1, MinUp: 2 * time.Second, MaxUp: time.Second},
		{Binary: "abmeshd", Dir: "d", Kills: 1, After: 2 * time.Minute},
		{Binary: "abmeshd", Dir: "d", Kills: 1, IdleTimeout: -1},
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
