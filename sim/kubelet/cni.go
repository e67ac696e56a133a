package kubelet

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/kestrelnet/kestrel/sim/network"
)

// ConfListName is the conflist the kubelet loads from its CNI conf dir.
const ConfListName = "10-kestrel.conflist"

// IPAnnotation asks for pod addresses ("IP[,IP]", one per family); it reaches
// the plugin as CNI_ARGS KESTREL_IP.
const IPAnnotation = "kestrel.dev/ip"

// podNetwork attaches pods to the node's network. The real one runs the CNI
// plugin; tests use a fake.
type podNetwork interface {
	Add(ctx context.Context, r *podRecord, ip string) ([]string, error)
	Check(ctx context.Context, r *podRecord) error
	Del(ctx context.Context, r *podRecord) error
	// Status says whether Adds can succeed now (CNI STATUS).
	Status(ctx context.Context) error
}

// cniNetwork drives the plugin through libcni, as a container runtime does.
type cniNetwork struct {
	confFile string
	cacheDir string
	cni      *libcni.CNIConfig
}

func newCNINetwork(confDir, binDir, cacheDir string) *cniNetwork {
	return &cniNetwork{
		confFile: filepath.Join(confDir, ConfListName),
		cacheDir: cacheDir,
		cni:      libcni.NewCNIConfigWithCacheDir([]string{binDir}, cacheDir, nil),
	}
}

// conf is read on every call so a conflist written after the kubelet started,
// or rewritten, is picked up.
func (n *cniNetwork) conf() (*libcni.NetworkConfigList, error) {
	list, err := libcni.ConfListFromFile(n.confFile)
	if err != nil {
		return nil, fmt.Errorf("CNI config %s: %w", n.confFile, err)
	}
	return list, nil
}

func (n *cniNetwork) runtimeConf(r *podRecord, ip string) *libcni.RuntimeConf {
	args := [][2]string{{"K8S_POD_NAMESPACE", r.Namespace}, {"K8S_POD_NAME", r.Name}, {"K8S_POD_UID", string(r.UID)}}
	if ip != "" {
		args = append(args, [2]string{"KESTREL_IP", ip})
	}
	return &libcni.RuntimeConf{
		ContainerID: r.ContainerID,
		NetNS:       network.NetnsPath(r.Netns),
		IfName:      "eth0",
		Args:        args,
		CacheDir:    n.cacheDir,
	}
}

func (n *cniNetwork) Add(ctx context.Context, r *podRecord, ip string) ([]string, error) {
	list, err := n.conf()
	if err != nil {
		return nil, err
	}
	res, err := n.cni.AddNetworkList(ctx, list, n.runtimeConf(r, ip))
	if err != nil {
		return nil, fmt.Errorf("CNI ADD: %w", err)
	}
	cur, err := types100.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("CNI ADD result: %w", err)
	}
	var ips []string
	for _, c := range cur.IPs {
		ips = append(ips, c.Address.IP.String())
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("CNI ADD returned no IP address")
	}
	return ips, nil
}

func (n *cniNetwork) Check(ctx context.Context, r *podRecord) error {
	list, err := n.conf()
	if err != nil {
		return err
	}
	if err := n.cni.CheckNetworkList(ctx, list, n.runtimeConf(r, "")); err != nil {
		return fmt.Errorf("CNI CHECK: %w", err)
	}
	return nil
}

func (n *cniNetwork) Del(ctx context.Context, r *podRecord) error {
	list, err := n.conf()
	if err != nil {
		return err
	}
	if err := n.cni.DelNetworkList(ctx, list, n.runtimeConf(r, "")); err != nil {
		return fmt.Errorf("CNI DEL: %w", err)
	}
	return nil
}

func (n *cniNetwork) Status(ctx context.Context) error {
	list, err := n.conf()
	if err != nil {
		return err
	}
	// libcni skips STATUS below spec 1.1.0, and the contract's conflist says
	// 1.0.0; the plugin speaks 1.1.0, so ask it as 1.1.0 rather than report
	// Ready for a node whose agent is down.
	if gt, _ := version.GreaterThanOrEqualTo(list.CNIVersion, "1.1.0"); !gt {
		list.CNIVersion = "1.1.0"
	}
	if err := n.cni.GetStatusNetworkList(ctx, list); err != nil {
		return fmt.Errorf("CNI STATUS: %w", err)
	}
	return nil
}
