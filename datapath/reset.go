package datapath

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
)

// Reset returns the datapath to its freshly loaded state: no endpoints,
// policies, ipcache entries, tracked or translated flows, pending events or
// counts (the node device's load-time settings stay). Reusing a
// loaded datapath this way skips the verifier (most of the cost of Load).
func (d *Datapath) Reset() error {
	if err := d.deleteAllPolicies(); err != nil {
		return err
	}
	if err := d.SyncIPCache(nil); err != nil {
		return err
	}
	if err := d.resetServices(); err != nil {
		return fmt.Errorf("reset services: %w", err)
	}
	if err := d.FlushConntrack(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := clearMap[uint32, lxcEndpointInfo](d.objs.Endpoints); err != nil {
		return fmt.Errorf("reset endpoints: %w", err)
	}
	// The node device's translations (SNAT, masquerade): a reused datapath
	// must not map a new flow with an old one's tuple to the old backend.
	if err := clearMap[lxcNatKey, lxcNatEntry](d.objs.NatFlows); err != nil {
		return fmt.Errorf("reset node device translations: %w", err)
	}
	if d.sandbox != nil {
		clear(d.sandbox.owners)
	}
	if _, err := d.drainEvents(); err != nil {
		return err
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return fmt.Errorf("reset counters: %w", err)
	}
	zero, zeroLost := make([]lxcMetricsValue, cpus), make([]uint64, cpus)
	for slot := uint32(0); slot < d.objs.Metrics.MaxEntries(); slot++ {
		if err := d.objs.Metrics.Put(slot, zero); err != nil {
			return fmt.Errorf("reset counters: %w", err)
		}
	}
	if err := d.objs.EventsLost.Put(uint32(0), zeroLost); err != nil {
		return fmt.Errorf("reset lost-event count: %w", err)
	}
	return nil
}

// deleteAllPolicies removes every endpoint's policy map; the deletes run
// concurrently so their RCU grace periods overlap.
func (d *Datapath) deleteAllPolicies() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, len(d.policies))
	for id := range d.policies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.objs.PolicyMaps.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				errs <- fmt.Errorf("endpoint %d: delete policy map: %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for _, p := range d.policies {
		p.m.Close()
	}
	clear(d.policies)
	return errors.Join(collect(errs)...)
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

// deleteWhere deletes the entries of a hash map for which f is true.
func deleteWhere[K comparable, V any](m *ebpf.Map, f func(K, V) bool) error {
	var doomed []K
	var k K
	var v V
	it := m.Iterate()
	for it.Next(&k, &v) {
		if f(k, v) {
			doomed = append(doomed, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for i := range doomed {
		if err := m.Delete(&doomed[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	return nil
}

// clearMap deletes every key of a hash map.
func clearMap[K comparable, V any](m *ebpf.Map) error {
	return deleteWhere(m, func(K, V) bool { return true })
}
