// Command pause is the sandbox ("pause") container of Kestrel's kind node image: it
// holds a pod's namespaces open, reaps the zombies it inherits as the pod's PID 1,
// and exits 0 on SIGINT or SIGTERM. The node image is built offline, so this
// replaces registry.k8s.io/pause, which would be pulled.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
