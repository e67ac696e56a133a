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
	// A fixed amount of work (about 0.3 s of CPU here), not a time: on a
	// loaded machine a loop bounded by wall time gets little CPU.
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start).Seconds()
	after, err := cpuSeconds(self)
	if err != nil {
		t.Fatal(err)
	}
	// Its CPU counts in full (ticks of 10 ms: a few lost to rounding), and
	// no more than the wall time it took plus this process's own.
	if got := after - before; got < 0.1 || got > wall+0.5 {
		t.Fatalf("CPU seconds went up by %.2f over a child that ran %.2f s", got, wall)
	}
}
