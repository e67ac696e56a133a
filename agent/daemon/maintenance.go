package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/kestrelnet/kestrel/agent/api"
	"github.com/kestrelnet/kestrel/datapath"
)

// Maintenance is the datapath upkeep the agent runs on a timer, and the
// figures it reports in its status.
type Maintenance interface {
	GCConntrack() (int, error)
	EventsLost() (uint64, error)
	ConntrackTables() []datapath.ConntrackTable
	Counters() (map[datapath.CounterKey]datapath.Counter, error)
}

// maintenance holds what the last conntrack sweep found.
type maintenance struct {
	mu      sync.Mutex
	m       Maintenance
	level   string
	runs    uint64
	removed uint64
	lastRun time.Time
	lastErr string
}

// RunMaintenance removes expired conntrack entries every interval until ctx
// ends (the programs only notice an expired entry when its flow sends again),
// and makes the datapath's figures part of Status. aggregation names the
// monitor aggregation level the datapath was loaded with.
func (d *Daemon) RunMaintenance(ctx context.Context, m Maintenance, aggregation string, interval time.Duration) {
	d.maint.mu.Lock()
	d.maint.m, d.maint.level = m, aggregation
	d.maint.mu.Unlock()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := m.GCConntrack()
		d.maint.mu.Lock()
		d.maint.runs++
		d.maint.removed += uint64(n)
		d.maint.lastRun = time.Now()
		d.maint.lastErr = ""
		if err != nil {
			d.maint.lastErr = err.Error()
			d.log.Warn("conntrack gc failed", "err", err)
		}
		d.maint.mu.Unlock()
	}
}

// datapathStatus reports the datapath's figures, nil before RunMaintenance.
func (d *Daemon) datapathStatus() *api.DatapathStatus {
	d.maint.mu.Lock()
	defer d.maint.mu.Unlock()
	if d.maint.m == nil {
		return nil
	}
	st := &api.DatapathStatus{MonitorAggregation: d.maint.level, ConntrackGC: api.ConntrackGC{
		Runs: d.maint.runs, Removed: d.maint.removed, LastError: d.maint.lastErr,
	}}
	if !d.maint.lastRun.IsZero() {
		st.ConntrackGC.LastRun = d.maint.lastRun.UTC().Format(time.RFC3339)
	}
	if lost, err := d.maint.m.EventsLost(); err == nil {
		st.EventsLost = lost
	}
	if s, ok := d.maint.m.(interface{ SocketTranslations() int }); ok {
		st.SocketLBTranslations = s.SocketTranslations()
	}
	for _, t := range d.maint.m.ConntrackTables() {
		st.Conntrack = append(st.Conntrack, api.ConntrackTable{Name: t.Name, MaxEntries: t.MaxEntries, MemoryBytes: t.MemoryBytes})
		st.ConntrackMemoryBytes += t.MemoryBytes
	}
	return st
}
