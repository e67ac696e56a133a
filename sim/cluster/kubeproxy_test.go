package cluster

import "testing"

func TestParseKubeProxyNodes(t *testing.T) {
	got, err := ParseKubeProxyNodes("2=iptables-legacy, 3=iptables-nft,4=nftables")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2] != KubeProxyIPTablesLegacy || got[3] != KubeProxyIPTablesNFT || got[4] != KubeProxyNFTables {
		t.Fatalf("got %v", got)
	}
	for _, bad := range []string{"2=ipvs", "x=nftables", "0=nftables", "2", "2=nftables,2=iptables-nft"} {
		if _, err := ParseKubeProxyNodes(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestMetricSumsReadsLabelledAndPlainSamples(t *testing.T) {
	m := metricSums(`# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds x
# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge
kubeproxy_sync_proxy_rules_last_timestamp_seconds 1.7e+09
kubeproxy_sync_proxy_rules_endpoint_changes_pending 3
kubeproxy_sync_proxy_rules_iptables_total{table="nat"} 40
kubeproxy_sync_proxy_rules_iptables_total{table="filter",note="a b"} 2
`)
	if m["kubeproxy_sync_proxy_rules_last_timestamp_seconds"] != 1.7e9 || m["kubeproxy_sync_proxy_rules_endpoint_changes_pending"] != 3 ||
		m["kubeproxy_sync_proxy_rules_iptables_total"] != 42 {
		t.Fatalf("got %v", m)
	}
}
