package cluster

import (
	"encoding/json"
	"net/netip"
	"testing"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// A node's ptp configuration hands out addresses of its own pod CIDR only,
// unmasqueraded (NetworkPolicy must see pods' own addresses across nodes).
func TestPTPConflistUsesTheNodesPodCIDR(t *testing.T) {
	b, err := ptpConflist(netip.MustParsePrefix("10.244.1.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []struct {
			Type   string `json:"type"`
			IPMasq *bool  `json:"ipMasq"`
			IPAM   struct {
				Type   string                `json:"type"`
				Ranges [][]map[string]string `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatal(err)
	}
	if len(conf.Plugins) == 0 || conf.Plugins[0].Type != "ptp" {
		t.Fatalf("plugins = %+v, want ptp first", conf.Plugins)
	}
	p := conf.Plugins[0]
	if p.IPMasq == nil || *p.IPMasq {
		t.Error("ptp masquerades pod traffic")
	}
	if p.IPAM.Type != "host-local" || len(p.IPAM.Ranges) != 1 || len(p.IPAM.Ranges[0]) != 1 || p.IPAM.Ranges[0][0]["subnet"] != "10.244.1.0/24" {
		t.Errorf("ipam = %+v, want host-local over 10.244.1.0/24 alone", p.IPAM)
	}
}

// --cni ptp runs kube-proxy in iptables mode on IPv4 (one range a node); the
// default keeps Kestrel's dual-stack cluster without kube-proxy.
func TestPTPClusterRunsKubeProxyOnIPv4(t *testing.T) {
	c := ConfigFor(Options{Workers: 1, CNI: CNIPTP}, false)
	if c.Networking.KubeProxyMode != v1alpha4.IPTablesProxyMode || c.Networking.IPFamily != v1alpha4.IPv4Family {
		t.Errorf("ptp: kube-proxy %q, family %q", c.Networking.KubeProxyMode, c.Networking.IPFamily)
	}
	if c.Networking.PodSubnet != "10.244.0.0/16" || !c.Networking.DisableDefaultCNI || len(c.Nodes) != 2 {
		t.Errorf("ptp: pods %q, default CNI disabled %v, %d nodes", c.Networking.PodSubnet, c.Networking.DisableDefaultCNI, len(c.Nodes))
	}
	k := ConfigFor(Options{Workers: 1}, false)
	if k.Networking.KubeProxyMode != "none" || k.Networking.IPFamily != v1alpha4.DualStackFamily {
		t.Errorf("kestrel: kube-proxy %q, family %q", k.Networking.KubeProxyMode, k.Networking.IPFamily)
	}
}

// kube-network-policies runs the image it is given, unprivileged with NET_ADMIN.
func TestKNPObjectsRunTheGivenImage(t *testing.T) {
	objs, err := knpObjects("kestrel/kube-network-policies:abc")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, o := range objs {
		kinds[o.GetKind()] = true
		if o.GetKind() != "DaemonSet" {
			continue
		}
		b, _ := json.Marshal(o.Object)
		var ds struct {
			Spec struct {
				Template struct {
					Spec struct {
						HostNetwork bool `json:"hostNetwork"`
						Containers  []struct {
							Image           string `json:"image"`
							SecurityContext struct {
								Privileged   *bool `json:"privileged"`
								Capabilities struct {
									Add []string `json:"add"`
								} `json:"capabilities"`
							} `json:"securityContext"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := json.Unmarshal(b, &ds); err != nil {
			t.Fatal(err)
		}
		c := ds.Spec.Template.Spec.Containers[0]
		if c.Image != "kestrel/kube-network-policies:abc" || !ds.Spec.Template.Spec.HostNetwork {
			t.Errorf("image %q, host network %v", c.Image, ds.Spec.Template.Spec.HostNetwork)
		}
		if c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			t.Error("kube-network-policies runs privileged")
		}
		if len(c.SecurityContext.Capabilities.Add) != 1 || c.SecurityContext.Capabilities.Add[0] != "NET_ADMIN" {
			t.Errorf("capabilities %v, want NET_ADMIN", c.SecurityContext.Capabilities.Add)
		}
	}
	for _, k := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"} {
		if !kinds[k] {
			t.Errorf("no %s", k)
		}
	}
}
