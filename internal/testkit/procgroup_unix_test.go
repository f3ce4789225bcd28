//go:build unix

package testkit

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestOwnProcessGroupTimeout: a shell whose background child holds its
// output open is stopped, child and all, when its context ends. Without
// the group kill, Run would wait for the child's 30s sleep.
func TestOwnProcessGroupTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", "sleep 30 & sleep 30")
	var out bytes.Buffer
	cmd.Stdout = &out
	OwnProcessGroup(cmd)
	start := time.Now()
	err := cmd.Run()
	if err == nil {
		t.Fatal("Run of a cancelled command succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Run returned after %v: the background child outlived the cancellation", d)
	}
}

// TestKillProcessGroup: the child a finished shell left behind is killed,
// which closes the output it held open.
func TestKillProcessGroup(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.CommandContext(t.Context(), "sh", "-c", "sleep 30 &")
	cmd.Stdout = w
	OwnProcessGroup(cmd)
	err = cmd.Run()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, r); close(eof) }()
	KillProcessGroup(cmd)
	select {
	case <-eof:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-eof
		t.Fatal("the shell's background child survived KillProcessGroup")
	}
}
