// Package proccpu reads how much CPU time a process has used, from Linux's
// /proc, so a load client can measure a server's CPU cost per call from
// outside it (the server's own figure, not the client's, which shares the
// machine's cores).
package proccpu

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// ticksPerSecond is USER_HZ, the unit of /proc/PID/stat's times. The
// kernel reports them in USER_HZ whatever its internal HZ, and USER_HZ is
// 100 on every Linux architecture Go supports.
const ticksPerSecond = 100

// Time returns the CPU time (user + system, every thread, children not
// included) process pid has used so far, with a resolution of 10 ms.
func Time(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	d, err := parseStat(b)
	if err != nil {
		return 0, fmt.Errorf("process %d: %w", pid, err)
	}
	return d, nil
}

// parseStat returns utime + stime from the contents of /proc/PID/stat. The
// second field, the command name in parentheses, may itself hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, fmt.Errorf("malformed /proc stat: no command name")
	}
	// After ") " come field 3 (state) onwards; utime and stime are fields
	// 14 and 15 (proc(5)), so the 12th and 13th here.
	fields := bytes.Fields(b[end+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("malformed /proc stat: %d fields after the command name, want at least 13", len(fields))
	}
	var ticks uint64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc stat: CPU time %q: %w", f, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / ticksPerSecond, nil
}
