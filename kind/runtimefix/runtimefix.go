// Package runtimefix registers kestrel-runc (see kind/runcwrap) as dockerd's default
// runtime on hosts whose capability bounding set lacks CAP_SYS_RESOURCE, merging
// into an existing daemon.json, and undoes exactly that.
package runtimefix

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// CapSysResource is CAP_SYS_RESOURCE's number (linux/capability.h).
const CapSysResource = 24

// RuntimeName is the key under "runtimes" in daemon.json.
const RuntimeName = "kestrel-runc"

// Paths are the files the fix touches; DefaultPaths are the real ones.
type Paths struct {
	DaemonJSON string // dockerd's configuration
	State      string // what Apply changed, so Undo can restore it
	Wrapper    string // where the kestrel-runc binary is installed
	PIDFile    string // dockerd's pid, to make it reload its configuration
}

// DefaultPaths are the standard dockerd locations.
var DefaultPaths = Paths{
	DaemonJSON: "/etc/docker/daemon.json",
	State:      "/etc/docker/kestrel-runtime-fix.json",
	Wrapper:    "/usr/local/lib/kestrel/kestrel-runc",
	PIDFile:    "/var/run/docker.pid",
}

// BoundingHas reports whether the capability bounding set in a /proc/PID/status
// text (CapBnd, hexadecimal) holds capability number c.
func BoundingHas(status io.Reader, c uint) (bool, error) {
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "CapBnd:") {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "CapBnd:")), 16, 64)
		if err != nil {
			return false, fmt.Errorf("CapBnd: %w", err)
		}
		return v&(1<<c) != 0, nil
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return false, errors.New("no CapBnd line")
}

// Needed reports whether this host needs the fix: its bounding set lacks CAP_SYS_RESOURCE.
func Needed() (bool, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, err
	}
	defer f.Close()
	has, err := BoundingHas(f, CapSysResource)
	return !has, err
}

// state is what Apply found before changing daemon.json.
type state struct {
	FileExisted     bool   `json:"fileExisted"`
	HadDefault      bool   `json:"hadDefault"`
	PreviousDefault string `json:"previousDefault,omitempty"`
}

// Apply installs wrapperSrc at p.Wrapper and merges the runtime into p.DaemonJSON
// (every other key kept). It reports whether daemon.json changed. Applying twice
// changes nothing the second time and keeps the first state record.
func Apply(p Paths, wrapperSrc string) (changed bool, err error) {
	if err := installFile(wrapperSrc, p.Wrapper); err != nil {
		return false, fmt.Errorf("install %s: %w", p.Wrapper, err)
	}
	doc, existed, err := readJSON(p.DaemonJSON)
	if err != nil {
		return false, err
	}
	runtimes, _ := doc["runtimes"].(map[string]any)
	if runtimes == nil {
		runtimes = map[string]any{}
	}
	cur, _ := runtimes[RuntimeName].(map[string]any)
	if cur != nil && cur["path"] == p.Wrapper && doc["default-runtime"] == RuntimeName {
		return false, nil
	}
	if _, err := os.Stat(p.State); os.IsNotExist(err) {
		prev, had := doc["default-runtime"].(string)
		if err := writeJSON(p.State, state{FileExisted: existed, HadDefault: had, PreviousDefault: prev}); err != nil {
			return false, err
		}
	}
	runtimes[RuntimeName] = map[string]any{"path": p.Wrapper}
	doc["runtimes"] = runtimes
	doc["default-runtime"] = RuntimeName
	return true, writeJSON(p.DaemonJSON, doc)
}

// Undo restores what Apply changed: the previous default runtime (or none), no
// kestrel-runc runtime, no daemon.json if there was none, no wrapper. It reports
// whether daemon.json changed.
func Undo(p Paths) (changed bool, err error) {
	var st state
	raw, err := os.ReadFile(p.State)
	if os.IsNotExist(err) {
		st = state{FileExisted: true}
	} else if err != nil {
		return false, err
	} else if err := json.Unmarshal(raw, &st); err != nil {
		return false, fmt.Errorf("%s: %w", p.State, err)
	}
	doc, existed, err := readJSON(p.DaemonJSON)
	if err != nil {
		return false, err
	}
	if existed {
		if runtimes, ok := doc["runtimes"].(map[string]any); ok {
			if _, ok := runtimes[RuntimeName]; ok {
				delete(runtimes, RuntimeName)
				changed = true
			}
			if len(runtimes) == 0 {
				delete(doc, "runtimes")
			}
		}
		if doc["default-runtime"] == RuntimeName {
			changed = true
			if st.HadDefault {
				doc["default-runtime"] = st.PreviousDefault
			} else {
				delete(doc, "default-runtime")
			}
		}
		if changed {
			if len(doc) == 0 && !st.FileExisted {
				err = os.Remove(p.DaemonJSON)
			} else {
				err = writeJSON(p.DaemonJSON, doc)
			}
			if err != nil {
				return false, err
			}
		}
	}
	for _, f := range []string{p.State, p.Wrapper} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return changed, err
		}
	}
	return changed, nil
}

// Reload makes a running dockerd re-read daemon.json (runtimes and default-runtime
// are reloadable: SIGHUP). It reports false when no dockerd runs.
func Reload(p Paths) (bool, error) {
	raw, err := os.ReadFile(p.PIDFile)
	if os.IsNotExist(err) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return false, fmt.Errorf("%s: %w", p.PIDFile, err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func readJSON(path string) (map[string]any, bool, error) {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return map[string]any{}, false, nil
	} else if err != nil {
		return nil, false, err
	}
	doc := map[string]any{}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return doc, true, nil
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, true, fmt.Errorf("%s: %w", path, err)
	}
	return doc, true, nil
}

func writeJSON(path string, v any) error {
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func installFile(src, dst string) error {
	in, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, in, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
