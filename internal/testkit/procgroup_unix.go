//go:build unix

package testkit

import (
	"os/exec"
	"syscall"
)

// OwnProcessGroup makes cmd, not yet started, start in a process group of
// its own, and makes the cancellation of its context kill that whole
// group: a timeout then also ends the helper processes cmd started (as
// chromium does), which would otherwise keep its output open.
func OwnProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// KillProcessGroup kills what is left of the process group of cmd, started
// after OwnProcessGroup: the helpers that outlived it.
func KillProcessGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
