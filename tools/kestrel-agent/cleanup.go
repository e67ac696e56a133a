package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/agent/noderoutes"
)

// cleanup leaves the node as it was before Kestrel (`kestrel uninstall` runs it on
// every node once the agents are gone): the CNI configuration and plugin removed,
// every pin under bpffs removed (every program is attached through a pinned bpf
// link, TC and cgroup alike, so with no agent holding them the last reference goes
// and the kernel detaches them), the node routes deleted, and the IPAM state
// removed.
func cleanup(o options, log *slog.Logger) error {
	var errs []error
	var files []string
	if o.cniConfDir != "" {
		files = append(files, filepath.Join(o.cniConfDir, cniConfName))
	}
	if o.cniBinDir != "" {
		files = append(files, filepath.Join(o.cniBinDir, "kestrel-cni"))
	}
	for _, p := range files {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		} else if err == nil {
			log.Info("removed", "path", p)
		}
	}
	for _, dir := range []string{o.bpffs, o.cniIPAMDir, filepath.Dir(o.socket)} {
		if dir == "" || dir == "/" || dir == "." {
			continue
		}
		if emptied, err := removeState(dir); err != nil {
			errs = append(errs, err)
		} else if emptied {
			log.Info("emptied (a mount point)", "path", dir)
		} else {
			log.Info("removed", "path", dir)
		}
	}
	if err := noderoutes.Remove(); err != nil {
		errs = append(errs, err)
	} else {
		log.Info("node routes removed")
	}
	return errors.Join(errs...)
}

// removeState removes dir and what is in it. A directory the cleanup pod has a
// volume mounted on (its socket directory, /var/run/kestrel) cannot be removed
// from inside the pod (EBUSY): it is emptied and stays, as the hostPath volume
// would create it again anyway.
func removeState(dir string) (emptied bool, err error) {
	err = os.RemoveAll(dir)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, unix.EBUSY) {
		return false, fmt.Errorf("remove %s: %w", dir, err)
	}
	left, rerr := os.ReadDir(dir)
	if rerr != nil || len(left) > 0 {
		return false, fmt.Errorf("remove %s: %w (%d entries left)", dir, err, len(left))
	}
	return true, nil
}

// syncNodeRoutes keeps noderoutes' routes to the other nodes' pod ranges until ctx
// ends, resyncing on every Node change and every 30 s (a route someone deleted
// comes back).
func syncNodeRoutes(ctx context.Context, cs kubernetes.Interface, self string, log *slog.Logger) {
	f := informers.NewSharedInformerFactory(cs, 30*time.Second)
	lister := f.Core().V1().Nodes().Lister()
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	f.Core().V1().Nodes().Informer().AddEventHandler(handlerFuncs(poke))
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		nodes, err := lister.List(labels.Everything())
		if err == nil {
			if err := noderoutes.Sync(noderoutes.Want(self, nodes)); err != nil {
				log.Warn("node routes", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}
