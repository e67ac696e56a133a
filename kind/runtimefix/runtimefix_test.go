package runtimefix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestBoundingHas(t *testing.T) {
	// This machine's set (no bit 24) and a full one.
	has, err := BoundingHas(strings.NewReader("Name:\tx\nCapBnd:\t000001fffeffffff\n"), CapSysResource)
	if err != nil || has {
		t.Errorf("000001fffeffffff: has=%v err=%v, want false", has, err)
	}
	has, err = BoundingHas(strings.NewReader("CapBnd:\t000001ffffffffff\n"), CapSysResource)
	if err != nil || !has {
		t.Errorf("000001ffffffffff: has=%v err=%v, want true", has, err)
	}
	if _, err := BoundingHas(strings.NewReader("Name:\tx\n"), CapSysResource); err == nil {
		t.Error("no CapBnd line: want an error")
	}
}

func paths(t *testing.T) Paths {
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "src-runc")
	os.WriteFile(wrapper, []byte("#!/bin/true\n"), 0o755)
	return Paths{
		DaemonJSON: filepath.Join(dir, "docker", "daemon.json"),
		State:      filepath.Join(dir, "docker", "state.json"),
		Wrapper:    filepath.Join(dir, "lib", "kestrel-runc"),
		PIDFile:    filepath.Join(dir, "docker.pid"),
	}
}

func read(t *testing.T, path string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestApplyMergesAndUndoRestores(t *testing.T) {
	p := paths(t)
	src := filepath.Join(filepath.Dir(p.PIDFile), "src-runc")
	os.MkdirAll(filepath.Dir(p.DaemonJSON), 0o755)
	orig := `{"log-level":"warn","default-runtime":"crun","runtimes":{"crun":{"path":"/usr/bin/crun"}}}`
	os.WriteFile(p.DaemonJSON, []byte(orig), 0o644)

	changed, err := Apply(p, src)
	if err != nil || !changed {
		t.Fatalf("Apply = %v, %v", changed, err)
	}
	got := read(t, p.DaemonJSON)
	if got["log-level"] != "warn" || got["default-runtime"] != RuntimeName {
		t.Errorf("after Apply: %v", got)
	}
	rts := got["runtimes"].(map[string]any)
	if rts["crun"] == nil || rts[RuntimeName].(map[string]any)["path"] != p.Wrapper {
		t.Errorf("runtimes after Apply: %v", rts)
	}
	if st, err := os.Stat(p.Wrapper); err != nil || st.Mode().Perm()&0o111 == 0 {
		t.Errorf("wrapper not installed executable: %v", err)
	}
	// Idempotent: the second Apply changes nothing and keeps the first record.
	if changed, err := Apply(p, src); err != nil || changed {
		t.Errorf("second Apply = %v, %v; want false, nil", changed, err)
	}

	changed, err = Undo(p)
	if err != nil || !changed {
		t.Fatalf("Undo = %v, %v", changed, err)
	}
	want := map[string]any{}
	json.Unmarshal([]byte(orig), &want)
	if got := read(t, p.DaemonJSON); !reflect.DeepEqual(got, want) {
		t.Errorf("after Undo: %v, want %v", got, want)
	}
	for _, f := range []string{p.State, p.Wrapper} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left after Undo", f)
		}
	}
}

func TestUndoRemovesFileItCreated(t *testing.T) {
	p := paths(t)
	src := filepath.Join(filepath.Dir(p.PIDFile), "src-runc")
	if _, err := Apply(p, src); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p.DaemonJSON); got["default-runtime"] != RuntimeName {
		t.Fatalf("after Apply: %v", got)
	}
	if _, err := Undo(p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.DaemonJSON); !os.IsNotExist(err) {
		t.Errorf("daemon.json created by Apply is still there after Undo")
	}
	// Undo with nothing applied changes nothing.
	if changed, err := Undo(p); err != nil || changed {
		t.Errorf("Undo twice = %v, %v", changed, err)
	}
}

func TestApplyRejectsBadJSON(t *testing.T) {
	p := paths(t)
	os.MkdirAll(filepath.Dir(p.DaemonJSON), 0o755)
	os.WriteFile(p.DaemonJSON, []byte(`{"a":`), 0o644)
	_, err := Apply(p, filepath.Join(filepath.Dir(p.PIDFile), "src-runc"))
	if err == nil || !strings.Contains(err.Error(), p.DaemonJSON) {
		t.Errorf("Apply on bad JSON: %v, want an error naming %s", err, p.DaemonJSON)
	}
}
