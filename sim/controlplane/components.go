package controlplane

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
)

// The command lines of the three components. Each names paths under the state dir,
// which is how Stop recognises them (see isOurs).

func etcdSpec(o Options, clientURL string) ProcessSpec {
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", o.EtcdPeerPort)
	return ProcessSpec{
		Name:     "etcd",
		StateDir: o.StateDir,
		Path:     o.EtcdPath,
		Args: []string{
			"--name", o.Name,
			"--data-dir", filepath.Join(o.StateDir, "etcd"),
			"--listen-client-urls", clientURL,
			"--advertise-client-urls", clientURL,
			"--listen-peer-urls", peerURL,
			"--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", o.Name + "=" + peerURL,
			"--initial-cluster-state", "new",
			"--logger", "zap",
			"--log-level", "warn",
		},
		Env: etcdEnv(),
	}
}

// etcdEnv lets Debian's etcd 3.4 start on architectures other than amd64 (it refuses
// unless told), and stays empty on amd64, where the variable only earns a warning.
func etcdEnv() []string {
	if runtime.GOARCH == "amd64" {
		return nil
	}
	return []string{"ETCD_UNSUPPORTED_ARCH=" + runtime.GOARCH}
}

func apiserverSpec(o Options, keys pki, etcdURL string) ProcessSpec {
	return ProcessSpec{
		Name:     "kube-apiserver",
		StateDir: o.StateDir,
		Path:     filepath.Join(o.BinDir, "kube-apiserver"),
		Args: []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=" + o.BindAddress,
			"--advertise-address=" + advertiseAddress(o.BindAddress),
			"--secure-port=" + strconv.Itoa(o.SecurePort),
			"--cert-dir=" + keys.certDir,
			"--token-auth-file=" + keys.tokens,
			"--service-account-issuer=" + serviceIssuer,
			"--service-account-key-file=" + keys.saPub,
			"--service-account-signing-key-file=" + keys.saKey,
			"--service-cluster-ip-range=" + o.ServiceCIDR,
			"--authorization-mode=RBAC",
			"--allow-privileged=true",
			"--profiling=false",
		},
	}
}

func controllerManagerSpec(o Options, keys pki, kubeconfig string) ProcessSpec {
	return ProcessSpec{
		Name:     "kube-controller-manager",
		StateDir: o.StateDir,
		Path:     filepath.Join(o.BinDir, "kube-controller-manager"),
		Args: []string{
			"--kubeconfig=" + kubeconfig,
			"--service-account-private-key-file=" + keys.saKey,
			"--root-ca-file=" + keys.servingCrt,
			"--controllers=*",
			"--leader-elect=false",
			// Nodes bring their own podCIDR; the sim has no cloud.
			"--allocate-node-cidrs=false",
			"--cluster-name=" + o.Name,
			"--service-cluster-ip-range=" + o.ServiceCIDR,
			// No serving port: several clusters can run side by side, and nothing
			// scrapes the controller manager here.
			"--secure-port=0",
			"--profiling=false",
		},
	}
}

// advertiseAddress is the address clients are sent to; an unspecified bind address
// advertises loopback, the only one sure to reach it.
func advertiseAddress(bind string) string {
	if bind == "0.0.0.0" || bind == "::" {
		return "127.0.0.1"
	}
	return bind
}
