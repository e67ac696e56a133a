package network

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// Down removes every namespace and root-side link of cluster name: pods'
// namespaces first, then nodes', the underlay and the root veth. It finds them
// by name, so it works after a crash and when run twice.
//
// Deleting a namespace only unmounts its name, and processes still inside
// would keep it alive: every process in a namespace is killed before it goes.
func Down(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	names, err := ListNetns()
	if err != nil {
		return err
	}
	var errs []error
	// Pods, then nodes and the outside host, then the underlay: each layer's
	// veths hang off the next.
	for _, kind := range []string{"-pod-", "-node-", "-outside", "-ul"} {
		for _, ns := range names {
			if ownedNetns(name, ns) && containsAfterPrefix(name, ns, kind) {
				if err := killProcessesIn(ns); err != nil {
					errs = append(errs, err)
				}
				if err := DeleteNetns(ns); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if l, err := netlink.LinkByName(RootVeth(name)); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("root netns: delete %s: %w", RootVeth(name), err))
		}
	}
	return errors.Join(errs...)
}

func containsAfterPrefix(name, ns, kind string) bool {
	rest := ns[len(Prefix(name)):]
	return len(rest) >= len(kind) && rest[:len(kind)] == kind
}
