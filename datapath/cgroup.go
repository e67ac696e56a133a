package datapath

// Finding the cgroup v2 hierarchy the socket programs attach to.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Cgroup2Mount returns where the cgroup v2 hierarchy is mounted, from
// /proc/self/mountinfo: /sys/fs/cgroup on a unified system,
// /sys/fs/cgroup/unified on a hybrid one (systemd's layout with v1
// controllers beside it), or wherever else it is. The error says so when
// there is none.
func Cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find the cgroup v2 mount: %w", err)
	}
	defer f.Close()
	return cgroup2MountIn(f)
}

// cgroup2MountIn reads mountinfo lines: "ID PARENT MAJ:MIN ROOT MOUNTPOINT
// OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS". The first cgroup2
// mount of the hierarchy's root wins.
func cgroup2MountIn(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	var v1 []string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) {
			continue
		}
		switch fields[sep+1] {
		case "cgroup2":
			if fields[3] == "/" {
				return unescapeMountPath(fields[4]), nil
			}
		case "cgroup":
			v1 = append(v1, unescapeMountPath(fields[4]))
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	if len(v1) > 0 {
		return "", fmt.Errorf("no cgroup v2 hierarchy is mounted (only cgroup v1 controllers, at %s); mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup/unified`", strings.Join(v1, ", "))
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted (no cgroup2 line in /proc/self/mountinfo); mount one, e.g. `mount -t cgroup2 none /sys/fs/cgroup/unified`")
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// CheckCgroup2 says whether dir is a directory of a cgroup v2 hierarchy.
func CheckCgroup2(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("cgroup %s is not in a cgroup v2 hierarchy (socket programs attach to cgroup v2 only)", dir)
	}
	return nil
}
