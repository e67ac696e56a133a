// Package machine describes the machine a benchmark ran on.
package machine

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kestrelnet/kestrel/bench/metrics"
)

// Describe reads the kernel, the CPU and the versions of what runs: this
// binary (its VCS revision), Go, and the commands named in tools (each run
// with its version flag; a missing one is recorded as absent).
func Describe(profile string, tools map[string][]string) metrics.Machine {
	m := metrics.Machine{Profile: profile, CPUs: runtime.NumCPU(), Started: time.Now().UTC().Format(time.RFC3339),
		Versions: map[string]string{"go": runtime.Version()}, Load: map[string]string{"start": LoadAverage()}}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:])
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				m.Versions["kestrel"] = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					m.Versions["kestrel-modified"] = "true"
				}
			}
		}
	}
	for name, argv := range tools {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			m.Versions[name] = "absent: " + err.Error()
			continue
		}
		m.Versions[name] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	return m
}

// LoadAverage is the 1, 5 and 15 minute load averages from /proc/loadavg.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown: " + err.Error()
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown: " + string(b)
	}
	return strings.Join(f[:3], " ")
}
