package simbench

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// A child that burns CPU and is waited for counts in its parent's figure:
// kube-proxy's iptables-restore runs are its children.
func TestCPUSecondsCountsWaitedChildren(t *testing.T) {
	self := os.Getpid()
	before, err := cpuSeconds(self)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "end=$(($(date +%s)+1)); while [ $(date +%s) -le $end ]; do :; done")
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start).Seconds()
	after, err := cpuSeconds(self)
	if err != nil {
		t.Fatal(err)
	}
	// The loop runs for 1-2 s of wall time; on a loaded machine it gets
	// less CPU than that, but surely a tenth of it.
	if got := after - before; got < 0.1 || got > wall+0.5 {
		t.Fatalf("CPU seconds went up by %.2f over a child that ran %.2f s", got, wall)
	}
}
