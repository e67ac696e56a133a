package kubelet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/types"
)

// podRecord is what the kubelet remembers about a pod on disk, so a restarted
// kubelet can adopt its pods, and can tear down pods deleted while it was away.
type podRecord struct {
	UID         types.UID      `json:"uid"`
	Namespace   string         `json:"namespace"`
	Name        string         `json:"name"`
	Netns       string         `json:"netns"`       // namespace name under /var/run/netns
	ContainerID string         `json:"containerID"` // the CNI container ID
	Added       bool           `json:"added"`       // CNI ADD succeeded
	IPs         []string       `json:"ips,omitempty"`
	PIDs        map[string]int `json:"pids,omitempty"` // container name -> workload pid
}

func (r *podRecord) key() string { return r.Namespace + "/" + r.Name }

// podRecords is the kubelet's directory of pod records, StateDir/pods/<uid>/.
type podRecords struct{ dir string }

func (rs podRecords) podDir(uid types.UID) string { return filepath.Join(rs.dir, string(uid)) }

func (rs podRecords) logFile(uid types.UID, container string) string {
	return filepath.Join(rs.podDir(uid), container+".log")
}

func (rs podRecords) load(uid types.UID) (*podRecord, error) {
	b, err := os.ReadFile(filepath.Join(rs.podDir(uid), "record.json"))
	if err != nil {
		return nil, err
	}
	var r podRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("pod record %s: %w", rs.podDir(uid), err)
	}
	if r.PIDs == nil {
		r.PIDs = map[string]int{}
	}
	return &r, nil
}

func (rs podRecords) save(r *podRecord) error {
	if err := os.MkdirAll(rs.podDir(r.UID), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	file := filepath.Join(rs.podDir(r.UID), "record.json")
	if err := os.WriteFile(file+".tmp", b, 0o644); err != nil {
		return err
	}
	return os.Rename(file+".tmp", file)
}

func (rs podRecords) remove(uid types.UID) error {
	return os.RemoveAll(rs.podDir(uid))
}

// all returns every record; unreadable ones are reported, not fatal, so one
// corrupt file does not stop the kubelet from cleaning up the others.
func (rs podRecords) all() ([]*podRecord, error) {
	entries, err := os.ReadDir(rs.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*podRecord
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		r, err := rs.load(types.UID(e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}
