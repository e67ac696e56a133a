// Package runcwrap edits the OCI specs runc is handed so that they never ask for a
// capability the host's bounding set lacks. On the development machines the bounding
// set has no CAP_SYS_RESOURCE, so runc fails every --privileged container (kind's
// nodes) with "unable to apply caps"; dockerd runs kestrel-runc, which calls Strip on
// the bundle's config.json (create, run) or the --process file (exec), then execs runc.
package runcwrap

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// capSets are the capability lists of an OCI process ("process.capabilities" in a
// config.json, "capabilities" in an exec process file).
var capSets = []string{"bounding", "effective", "inheritable", "permitted", "ambient"}

// globalValueFlags are runc's global flags that take a separate value: the word after
// them is not the subcommand.
var globalValueFlags = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

// SpecFile returns the spec file runc will read for this invocation (args without
// argv[0]) and whether it is a whole bundle config (true) or an exec process (false).
// It returns "" when the invocation reads no spec (state, kill, delete...).
func SpecFile(args []string, cwd string) (path string, bundle bool) {
	cmd := -1
	for i := 0; i < len(args); i++ {
		a := args[i]
		if globalValueFlags[a] {
			i++
			continue
		}
		if len(a) > 0 && a[0] == '-' {
			continue
		}
		cmd = i
		break
	}
	if cmd < 0 {
		return "", false
	}
	rest := args[cmd+1:]
	switch args[cmd] {
	case "create", "run":
		dir := flagValue(rest, "--bundle", "-b")
		if dir == "" {
			dir = cwd
		}
		return filepath.Join(dir, "config.json"), true
	case "exec":
		return flagValue(rest, "--process", "-p"), false
	}
	return "", false
}

// flagValue finds --long VALUE, --long=VALUE, -s VALUE or -s=VALUE before the first
// non-flag word.
func flagValue(args []string, long, short string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		for _, name := range []string{long, short} {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
			if len(a) > len(name)+1 && a[:len(name)+1] == name+"=" {
				return a[len(name)+1:]
			}
		}
	}
	return ""
}

// Strip removes the named capabilities from every capability set of the spec file
// (bundle: process.capabilities; exec process file: capabilities) and rewrites it
// only when something was removed, keeping every other field as it was.
func Strip(path string, bundle bool, drop []string) (removed bool, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	proc := doc
	if bundle {
		p, ok := doc["process"].(map[string]any)
		if !ok {
			return false, nil
		}
		proc = p
	}
	caps, ok := proc["capabilities"].(map[string]any)
	if !ok {
		return false, nil
	}
	dropSet := map[string]bool{}
	for _, d := range drop {
		dropSet[d] = true
	}
	for _, set := range capSets {
		list, ok := caps[set].([]any)
		if !ok {
			continue
		}
		kept := list[:0:0]
		for _, c := range list {
			if s, _ := c.(string); dropSet[s] {
				removed = true
				continue
			}
			kept = append(kept, c)
		}
		caps[set] = kept
	}
	if !removed {
		return false, nil
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return false, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return true, os.WriteFile(path, out, st.Mode().Perm())
}
