//go:build !unix

package testkit

import "os/exec"

// OwnProcessGroup does nothing where there are no Unix process groups.
func OwnProcessGroup(*exec.Cmd) {}

// KillProcessGroup does nothing where there are no Unix process groups.
func KillProcessGroup(*exec.Cmd) {}
