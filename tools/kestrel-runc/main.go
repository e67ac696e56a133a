// Command kestrel-runc is the OCI runtime `kestrel kind runtime-fix` registers as
// dockerd's default on hosts whose capability bounding set lacks CAP_SYS_RESOURCE:
// it removes that capability from the spec runc is about to read (create, run, exec)
// and then becomes runc, with the same arguments. Without it every --privileged
// container (kind's nodes) fails with "unable to apply caps".
package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/kestrelnet/kestrel/kind/runcwrap"
)

// realRunc is Debian's runc (the docker.io package depends on it); KESTREL_RUNC overrides.
const realRunc = "/usr/sbin/runc"

func main() {
	runc := realRunc
	if p := os.Getenv("KESTREL_RUNC"); p != "" {
		runc = p
	}
	cwd, _ := os.Getwd()
	if path, bundle := runcwrap.SpecFile(os.Args[1:], cwd); path != "" {
		if _, err := runcwrap.Strip(path, bundle, []string{"CAP_SYS_RESOURCE"}); err != nil {
			fmt.Fprintf(os.Stderr, "kestrel-runc: %v\n", err)
			os.Exit(1)
		}
	}
	argv := append([]string{runc}, os.Args[1:]...)
	if err := syscall.Exec(runc, argv, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "kestrel-runc: exec %s: %v\n", runc, err)
		os.Exit(1)
	}
}
