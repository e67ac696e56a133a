// Package endpoint keeps the agent's record of the endpoints the CNI plugin
// registered on this node. The record is a file, so an agent that restarts
// knows its endpoints (and re-adopts their pinned datapath links) without the
// CNI plugin calling again.
package endpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Record is one registered endpoint.
type Record struct {
	ContainerID   string       `json:"containerID"`
	ID            uint32       `json:"id"` // datapath endpoint id, fixed for the record's life
	Namespace     string       `json:"namespace"`
	Name          string       `json:"name"`
	IPs           []netip.Addr `json:"ips"`
	HostInterface string       `json:"hostInterface"`
	HostIfIndex   int          `json:"hostIfIndex"`
	Netns         string       `json:"netns,omitempty"`
	MAC           string       `json:"mac"` // pod-side interface
	// Seq grows with every change of any record, so a waiter can tell
	// whether the datapath has caught up with a particular registration.
	Seq uint64 `json:"seq"`
}

// Pod returns the record's pod key, namespace/name.
func (r Record) Pod() string { return r.Namespace + "/" + r.Name }

// Registry is the set of records, saved to a file on every change.
type Registry struct {
	path string
	mu   sync.Mutex
	file registryFile
}

type registryFile struct {
	NextID  uint32            `json:"nextID"`
	Seq     uint64            `json:"seq"`
	Records map[string]Record `json:"records"` // by container id
}

// Open reads the registry at path, or starts an empty one if there is none.
func Open(path string) (*Registry, error) {
	r := &Registry{path: path, file: registryFile{NextID: 1, Records: map[string]Record{}}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &r.file); err != nil {
		return nil, fmt.Errorf("endpoint registry %s: %w", path, err)
	}
	if r.file.Records == nil {
		r.file.Records = map[string]Record{}
	}
	if r.file.NextID == 0 {
		r.file.NextID = 1
	}
	return r, nil
}

// Put stores rec under its container id. A container already registered
// keeps its endpoint id; a new one gets the next id (ids are not reused, so
// a stale reference can never reach another pod's policy). Returns the
// stored record.
func (r *Registry) Put(rec Record) (Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.file.Records[rec.ContainerID]; ok {
		rec.ID = old.ID
	} else {
		rec.ID = r.file.NextID
		r.file.NextID++
	}
	r.file.Seq++
	rec.Seq = r.file.Seq
	r.file.Records[rec.ContainerID] = rec
	return rec, r.save()
}

// Delete forgets a container; forgetting an unknown one is not an error.
func (r *Registry) Delete(containerID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.file.Records[containerID]; !ok {
		return nil
	}
	delete(r.file.Records, containerID)
	r.file.Seq++
	return r.save()
}

// Get returns one record.
func (r *Registry) Get(containerID string) (Record, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec, ok := r.file.Records[containerID]
	return rec, ok
}

// List returns every record, sorted by container id.
func (r *Registry) List() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Record, 0, len(r.file.Records))
	for _, rec := range r.file.Records {
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ContainerID < out[j].ContainerID })
	return out
}

// save writes the file whole and renames it into place, so a crash leaves
// either the old registry or the new one.
func (r *Registry) save() error {
	b, err := json.MarshalIndent(r.file, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(r.path), 0o700); err != nil {
		return err
	}
	tmp := r.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.path)
}
