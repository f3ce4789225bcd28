package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/abmesh/abmesh/internal/tool/killrun"
)

func benchCrashCmd(fs *flag.FlagSet) body {
	var cfg killrun.Config
	bin := fs.String("abmeshd", "", `the abmeshd executable (default: abmeshd next to this abmesh, else on $PATH)`)
	flags := fs.String("abmeshd-flags", "", `more abmeshd flags, space-separated (e.g. "--wal-max-bytes 268435456")`)
	dir := fs.String("dir", "", "directory for abmeshd's data and logs, empty or absent (default: a temporary one, removed afterwards)")
	fs.IntVar(&cfg.Kills, "kills", 10, fmt.Sprintf("kills under load (at most %d); one more follows without load", killrun.MaxKills))
	fs.DurationVar(&cfg.MinUp, "min-up", 2*time.Second, "shortest load time before a kill")
	fs.DurationVar(&cfg.MaxUp, "max-up", 8*time.Second, "longest load time before a kill (each is drawn uniformly in between)")
	fs.DurationVar(&cfg.After, "after", 2*time.Second, "load time after each kill, across the restart")
	fs.DurationVar(&cfg.IdleTimeout, "trace-idle-timeout", time.Second, "abmeshd's --trace-idle-timeout")
	fs.DurationVar(&cfg.FlushInterval, "flush-interval", time.Second, "abmeshd's --flush-interval")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the kill moments (0: from the clock)")
	fs.IntVar(&cfg.Load.Rate, "rate", 50_000, "target spans per second of the exporter (0: as fast as abmeshd takes them)")
	fs.IntVar(&cfg.Load.Concurrency, "concurrency", 8, "concurrent exporters")
	fs.IntVar(&cfg.Load.RequestSpans, "request-spans", 500, "spans per Export request (10-span traces)")
	fs.IntVar(&cfg.Replicas, "replicas", 0, fmt.Sprintf("run this many abmeshd replicas on --store (2 to %d) and kill them in turn; the exporter routes by trace id over the replicas that are up", killrun.MaxReplicas))
	fs.StringVar(&cfg.Store, "store", "", "the replicas' --store, postgres://… (required with --replicas)")
	fs.DurationVar(&cfg.Outage, "outage", time.Second, "with --replicas: how long a killed replica stays down")
	fs.DurationVar(&cfg.AnswerDelay, "answer-delay", 0, "hold abmeshd's answers this long on their way back, dropping those held when it dies (at most 1s)")
	out := outputFlag(fs, "table", "json")
	return func(ctx context.Context, r *request) error {
		if err := r.noArgs(); err != nil {
			return err
		}
		var err error
		if cfg.Binary, err = findAbmeshd(*bin); err != nil {
			return err
		}
		cfg.Args = strings.Fields(*flags)
		cfg.Dir = *dir
		if cfg.Dir == "" {
			if cfg.Dir, err = os.MkdirTemp("", "abmesh-crash-"); err != nil {
				return err
			}
			defer os.RemoveAll(cfg.Dir)
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		cfg.Log = r.stderr
		fmt.Fprintf(r.stderr, "killing %s %d times under %d spans/s of OTLP load (data in %s)...\n", cfg.Binary, cfg.Kills, cfg.Load.Rate, cfg.Dir)
		rep, err := killrun.Run(ctx, cfg)
		if err != nil {
			return err
		}
		if *out == "json" {
			err = printPlainJSON(r.stdout, rep)
		} else {
			err = printCrashTable(r, rep)
		}
		if err == nil && !rep.OK() {
			err = errors.New("bench crash: traces counted differ from traces acknowledged")
		}
		return err
	}
}

// findAbmeshd returns the abmeshd to run: flag when set, else the one
// next to this executable, else the one on $PATH.
func findAbmeshd(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "abmeshd")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("abmeshd")
	if err != nil {
		return "", errors.New("no abmeshd next to abmesh or on $PATH: build it (go build -o bin/ ./cmd/...) or pass --abmeshd")
	}
	return p, nil
}

// printCrashTable prints a row per kill and whether every acknowledged
// trace was counted once. With replicas, MOVED is the traces re-sent to a
// survivor after an attempt that may have reached the killed replica,
// LEFT those the restarted replica left to the survivors (its claims).
func printCrashTable(r *request, rep killrun.Report) error {
	t := table(r.stdout)
	fmt.Fprintln(t, "KILL\tREPLICA\tLOAD BEFORE\tACKED\tIN DOUBT\tCOUNTED\tMOVED\tLEFT\tWATCH LAG\tWAL AT KILL\tWAL MAX\tRESTART\tREPLAYED\tOK")
	for _, tr := range rep.Trials {
		up := tr.Up.Round(time.Millisecond).String()
		if tr.Up == 0 {
			up = "(no load)"
		}
		replica, lag := "-", "-"
		if tr.Replica > 0 {
			replica, lag = strconv.Itoa(tr.Replica), tr.WatchLag.Round(time.Millisecond).String()
		}
		fmt.Fprintf(t, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%.1f MB\t%.1f MB\t%s\t%d\t%v\n", tr.Kill, replica, up, tr.Acked, tr.InDoubt, tr.Counted, tr.Moved, tr.HeldElsewhere, lag,
			float64(tr.WALKill)/1e6, float64(tr.WALMax)/1e6, tr.Restart.Round(time.Millisecond), tr.Replayed, tr.OK())
		if tr.Unserved != "" {
			fmt.Fprintf(t, "\t\tsurvivors did not serve: %s\n", tr.Unserved)
		}
	}
	if err := t.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(r.stdout, "seed %d\n", rep.Seed)
	return err
}
