package daemon

import (
	"github.com/kestrelnet/kestrel/agent/datapathstate"
	"github.com/kestrelnet/kestrel/datapath"
)

// Datapath is what the daemon needs of the loaded datapath. Tests of the
// control loop substitute one that records instead of needing a kernel.
type Datapath interface {
	datapathstate.Writer
	// Attach attaches the pod programs to a host-side device, pinning the
	// links at pin (adopting links already pinned there).
	Attach(ifindex int, pin string) (Links, error)
	// SyncServices makes the translated services exactly these.
	SyncServices([]datapath.Service) error
	// ApplyServices writes the services in upsert and removes the ids in
	// remove, leaving the others as they are.
	ApplyServices(upsert []datapath.Service, remove []uint32) error
}

// Links are one device's attachments.
type Links interface {
	Close() error  // release our handles; pinned links stay attached
	Detach() error // unpin and detach
}

// Kernel adapts a loaded *datapath.Datapath.
type Kernel struct{ *datapath.Datapath }

// Attach implements Datapath.
func (k Kernel) Attach(ifindex int, pin string) (Links, error) {
	l, err := k.AttachPodDevice(ifindex, pin)
	if err != nil {
		return nil, err
	}
	if err := datapath.ProxyDeviceSysctls(ifindex); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
