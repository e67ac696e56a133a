package runcwrap

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSpecFile(t *testing.T) {
	cases := []struct {
		args   []string
		path   string
		bundle bool
	}{
		// How containerd's runc shim calls it (docker 20.10).
		{[]string{"--root", "/var/run/docker/runtime-runc/moby", "--log", "/x/log.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "id1"}, "/b/config.json", true},
		{[]string{"--systemd-cgroup", "create", "--bundle=/b2", "id1"}, "/b2/config.json", true},
		{[]string{"run", "-b", "/b3", "id"}, "/b3/config.json", true},
		{[]string{"create", "id"}, "/cwd/config.json", true},
		{[]string{"--root", "/r", "exec", "--process", "/tmp/p.json", "--detach", "id"}, "/tmp/p.json", false},
		{[]string{"exec", "-p=/tmp/q.json", "id"}, "/tmp/q.json", false},
		// A global flag's value that looks like a command is not the command.
		{[]string{"--log", "create", "state", "id"}, "", false},
		{[]string{"--root", "/r", "delete", "id"}, "", false},
		{[]string{"--version"}, "", false},
	}
	for _, c := range cases {
		path, bundle := SpecFile(c.args, "/cwd")
		if path != c.path || bundle != c.bundle {
			t.Errorf("SpecFile(%q) = %q, %v; want %q, %v", c.args, path, bundle, c.path, c.bundle)
		}
	}
}

func TestStripBundleKeepsOtherFields(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.json")
	in := `{"ociVersion":"1.0.2","process":{"args":["/sbin/init"],"capabilities":{
		"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_NET_ADMIN"],
		"effective":["CAP_SYS_RESOURCE"],"permitted":["CAP_SYS_RESOURCE","CAP_KILL"],
		"inheritable":["CAP_KILL"]}},"root":{"path":"rootfs"},"x-unknown":{"k":[1,2]}}`
	if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	removed, err := Strip(path, true, []string{"CAP_SYS_RESOURCE"})
	if err != nil || !removed {
		t.Fatalf("Strip = %v, %v; want true, nil", removed, err)
	}
	var got map[string]any
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	caps := got["process"].(map[string]any)["capabilities"].(map[string]any)
	want := map[string][]any{
		"bounding":    {"CAP_CHOWN", "CAP_NET_ADMIN"},
		"effective":   {},
		"permitted":   {"CAP_KILL"},
		"inheritable": {"CAP_KILL"},
	}
	for set, w := range want {
		if !reflect.DeepEqual(caps[set], w) {
			t.Errorf("%s = %v, want %v", set, caps[set], w)
		}
	}
	if !reflect.DeepEqual(got["x-unknown"], map[string]any{"k": []any{1.0, 2.0}}) || got["ociVersion"] != "1.0.2" {
		t.Errorf("other fields changed: %v", got)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept", st.Mode().Perm())
	}
}

func TestStripExecProcessAndNoop(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.json")
	os.WriteFile(path, []byte(`{"args":["sh"],"capabilities":{"bounding":["CAP_SYS_RESOURCE"],"ambient":["CAP_SYS_RESOURCE","CAP_KILL"]}}`), 0o644)
	removed, err := Strip(path, false, []string{"CAP_SYS_RESOURCE"})
	if err != nil || !removed {
		t.Fatalf("Strip = %v, %v", removed, err)
	}
	raw, _ := os.ReadFile(path)
	var got map[string]any
	json.Unmarshal(raw, &got)
	if amb := got["capabilities"].(map[string]any)["ambient"]; !reflect.DeepEqual(amb, []any{"CAP_KILL"}) {
		t.Errorf("ambient = %v", amb)
	}
	// A spec without the capability is left byte for byte.
	before, _ := os.ReadFile(path)
	removed, err = Strip(path, false, []string{"CAP_SYS_RESOURCE"})
	after, _ := os.ReadFile(path)
	if err != nil || removed || string(before) != string(after) {
		t.Errorf("second Strip = %v, %v; file changed: %v", removed, err, string(before) != string(after))
	}
	// Bad JSON names the file.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"process":`), 0o644)
	if _, err := Strip(bad, true, []string{"CAP_SYS_RESOURCE"}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad JSON error = %v, want it to name %s", err, bad)
	}
}
