package datapath

import (
	"strings"
	"testing"
)

func TestCgroup2MountFromMountinfo(t *testing.T) {
	hybrid := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	unified := `25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
`
	// A bind mount of a sub-cgroup is not the hierarchy's root.
	bound := `90 21 0:22 /kubepods /mnt/sub rw - cgroup2 cgroup2 rw
91 21 0:22 / /mnt/my\040cgroups rw - cgroup2 cgroup2 rw
`
	for _, tc := range []struct{ name, in, want string }{
		{"hybrid", hybrid, "/sys/fs/cgroup/unified"},
		{"unified", unified, "/sys/fs/cgroup"},
		{"bind mount of a child, then the root with a space", bound, "/mnt/my cgroups"},
	} {
		got, err := cgroup2MountIn(strings.NewReader(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	v1only := "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
	if _, err := cgroup2MountIn(strings.NewReader(v1only)); err == nil || !strings.Contains(err.Error(), "no cgroup v2 hierarchy") || !strings.Contains(err.Error(), "/sys/fs/cgroup/cpu") {
		t.Errorf("a v1-only system: got %v, want an error naming the v1 mounts", err)
	}
	if _, err := cgroup2MountIn(strings.NewReader("")); err == nil {
		t.Error("no mounts at all: want an error")
	}
}
