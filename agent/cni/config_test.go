package cni

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	const base = `"cniVersion": "1.0.0", "name": "kestrel", "type": "kestrel-cni", "agentSocket": "/run/a.sock", "ipamDir": "/tmp/ipam"`
	cases := []struct {
		name string
		json string
		want string // error substring; empty means it parses
	}{
		{"a full config parses", `{` + base + `, "podCIDRs": ["10.244.0.0/24"], "gateway": "10.244.0.1", "mtu": 1450}`, ""},
		{"the fields libcni injects are accepted", `{` + base + `, "podCIDRs": ["10.244.0.0/24"], "gateway": "10.244.0.1", "prevResult": {}, "runtimeConfig": {}, "capabilities": {}}`, ""},
		{"an unknown field is named", `{` + base + `, "podCIDR": ["10.244.0.0/24"], "gateway": "10.244.0.1"}`, `"podCIDR": unknown field`},
		{"a field of the wrong type is named", `{` + base + `, "podCIDRs": "10.244.0.0/24", "gateway": "10.244.0.1"}`, "podCIDRs: want []string"},
		{"a bad CIDR is named with its index", `{` + base + `, "podCIDRs": ["10.244.0.0/24", "10.245.0.0/33"], "gateway": "10.244.0.1"}`, `podCIDRs[1]: "10.245.0.0/33" is not a CIDR`},
		{"a dual-stack config parses", `{` + base + `, "podCIDRs": ["10.244.0.0/24", "fd00:10:244::/64"], "gateway": "10.244.0.1"}`, ""},
		{"an IPv6 gateway is refused, naming the one IPv6 pods use", `{` + base + `, "podCIDRs": ["10.244.0.0/24", "fd00:10:244::/64"], "gateway": "fd00:10:244::1"}`, "gateway: fd00:10:244::1 is not IPv4 (it names the IPv4 gateway; IPv6 pods route through fe80::1"},
		{"an IPv4 CIDR without a gateway is refused", `{` + base + `, "podCIDRs": ["10.244.0.0/24", "fd00:10:244::/64"]}`, "gateway: missing"},
		{"an IPv6 /128 is too small", `{` + base + `, "podCIDRs": ["10.244.0.0/24", "fd00::/128"], "gateway": "10.244.0.1"}`, "podCIDRs[1]: fd00::/128 is too small"},
		{"host bits in an IPv6 CIDR are refused", `{` + base + `, "podCIDRs": ["10.244.0.0/24", "fd00::5/64"], "gateway": "10.244.0.1"}`, "did you mean fd00::/64"},
		{"an IPv4-mapped CIDR is refused", `{` + base + `, "podCIDRs": ["10.244.0.0/24", "::ffff:10.245.0.0/120"], "gateway": "10.244.0.1"}`, "podCIDRs[1]: ::ffff:10.245.0.0/120 is an IPv4-mapped range"},
		{"host bits in a CIDR are refused", `{` + base + `, "podCIDRs": ["10.244.0.5/24"], "gateway": "10.244.0.1"}`, "did you mean 10.244.0.0/24"},
		{"a /31 is too small", `{` + base + `, "podCIDRs": ["10.244.0.0/31"], "gateway": "10.244.0.1"}`, "podCIDRs[0]: 10.244.0.0/31 is too small"},
		{"overlapping CIDRs are refused", `{` + base + `, "podCIDRs": ["10.244.0.0/16", "10.244.1.0/24"], "gateway": "10.244.0.1"}`, "overlaps podCIDRs[0]"},
		{"a missing podCIDRs is named", `{` + base + `, "gateway": "10.244.0.1"}`, "podCIDRs: missing"},
		{"a gateway outside the CIDRs is refused", `{` + base + `, "podCIDRs": ["10.244.0.0/24"], "gateway": "10.1.0.1"}`, "gateway: 10.1.0.1 is not inside podCIDRs"},
		{"the network address as gateway is refused", `{` + base + `, "podCIDRs": ["10.244.0.0/24"], "gateway": "10.244.0.0"}`, "gateway: 10.244.0.0 is the network or broadcast"},
		{"a missing agentSocket is named", `{"cniVersion": "1.0.0", "name": "k", "type": "kestrel-cni", "ipamDir": "/x", "podCIDRs": ["10.244.0.0/24"], "gateway": "10.244.0.1"}`, "agentSocket: missing"},
		{"a missing ipamDir is named", `{"cniVersion": "1.0.0", "name": "k", "type": "kestrel-cni", "agentSocket": "/x", "podCIDRs": ["10.244.0.0/24"], "gateway": "10.244.0.1"}`, "ipamDir: missing"},
		{"another plugin's type is refused", `{"cniVersion": "1.0.0", "name": "k", "type": "bridge", "agentSocket": "/x", "ipamDir": "/x", "podCIDRs": ["10.244.0.0/24"], "gateway": "10.244.0.1"}`, `type: want "kestrel-cni"`},
		{"an mtu out of range is named", `{` + base + `, "podCIDRs": ["10.244.0.0/24"], "gateway": "10.244.0.1", "mtu": 70000}`, "mtu: 70000 is out of range"},
		{"trailing data is refused", `{` + base + `, "podCIDRs": ["10.244.0.0/24"], "gateway": "10.244.0.1"} {}`, "trailing data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conf, err := ParseConfig([]byte(c.json))
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if conf.PodCIDRs[0].String() != "10.244.0.0/24" || conf.Gateway.String() != "10.244.0.1" {
					t.Errorf("parsed %+v", conf)
				}
				if v6 := strings.Contains(c.json, "fd00:10:244::/64"); v6 != conf.HasFamily(true) || (v6 && conf.PodCIDRs[1].String() != "fd00:10:244::/64") {
					t.Errorf("IPv6 CIDR: parsed %+v", conf.PodCIDRs)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestParseArgs(t *testing.T) {
	cases := []struct {
		name, in string
		want     podArgs
		ips      string // the KESTREL_IP addresses read, comma-separated
		err      string
	}{
		{"pod name, namespace and IP are read and other keys ignored",
			"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID=u;KESTREL_IP=10.244.0.9", podArgs{Namespace: "default", Name: "web"}, "10.244.0.9", ""},
		{"one address per family is read", "KESTREL_IP=10.244.0.9,fd00:10:244::9", podArgs{}, "10.244.0.9,fd00:10:244::9", ""},
		{"an IPv6 address alone is read", "KESTREL_IP=fd00:10:244::9", podArgs{}, "fd00:10:244::9", ""},
		{"empty args are fine", "", podArgs{}, "", ""},
		{"a pair without = is refused", "K8S_POD_NAME", podArgs{}, "", "not KEY=VALUE"},
		{"a bad KESTREL_IP is refused", "KESTREL_IP=10.244.0.300", podArgs{}, "", `KESTREL_IP: [0] "10.244.0.300" is not an IP address`},
		{"a bad second address is named by index", "KESTREL_IP=10.244.0.9,fd00::zz", podArgs{}, "", `KESTREL_IP: [1] "fd00::zz" is not an IP address`},
		{"two addresses of one family are refused", "KESTREL_IP=fd00::1,fd00::2", podArgs{}, "", "[0] fd00::1 and [1] fd00::2 are both IPv6"},
		{"a zone is refused", "KESTREL_IP=fe80::1%eth0", podArgs{}, "", "is not an IP address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseArgs(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error = %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Namespace != c.want.Namespace || got.Name != c.want.Name {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
			if s := joinAddrs(got.IPs); s != c.ips {
				t.Errorf("KESTREL_IP = %q, want %q", s, c.ips)
			}
		})
	}
}

func TestHostIfNameIsLxcAndElevenHexDigitsOfSHA1(t *testing.T) {
	// sha1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d
	if got := HostIfName("abc"); got != "lxca9993e36470" {
		t.Errorf("HostIfName(abc) = %s", got)
	}
}

func joinAddrs(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ",")
}
