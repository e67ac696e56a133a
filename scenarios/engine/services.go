package engine

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/scenarios/format"
)

// assignClusterIPs gives every Service without a cluster IP one from
// 10.96.0.0/16 (.10, .11, ... in declaration order), written into its JSON so
// every runner sees the same address.
func assignClusterIPs(s *format.Scenario) error {
	next := netip.MustParseAddr("10.96.0.10")
	objs := []*format.Object{}
	for i := range s.Spec.Objects {
		objs = append(objs, &s.Spec.Objects[i])
	}
	for i := range s.Spec.Steps {
		for j := range s.Spec.Steps[i].Apply {
			if o := s.Spec.Steps[i].Apply[j].Inline; o != nil {
				objs = append(objs, o)
			}
		}
	}
	for _, o := range objs {
		if o.Kind != "Service" {
			continue
		}
		var raw map[string]any
		if err := json.Unmarshal(o.JSON, &raw); err != nil {
			return fmt.Errorf("%s: %v", o.Source, err)
		}
		spec, _ := raw["spec"].(map[string]any)
		if spec == nil {
			spec = map[string]any{}
			raw["spec"] = spec
		}
		if ip, _ := spec["clusterIP"].(string); ip != "" {
			continue
		}
		spec["clusterIP"] = next.String()
		spec["clusterIPs"] = []string{next.String()}
		next = next.Next()
		js, err := json.Marshal(raw)
		if err != nil {
			return fmt.Errorf("%s: %v", o.Source, err)
		}
		o.JSON = js
	}
	return nil
}

// service finds an applied Service by "namespace/name".
func (x *expander) service(ref string, line int) (*corev1.Service, error) {
	for _, o := range x.st.applied {
		if o.Kind == "Service" && o.Namespace+"/"+o.Name == ref {
			var svc corev1.Service
			if err := json.Unmarshal(o.JSON, &svc); err != nil {
				return nil, fmt.Errorf("%s: %v", o.Source, err)
			}
			return &svc, nil
		}
	}
	return nil, x.errorf(line, "no Service %q is applied at this point", ref)
}

func (x *expander) servicePeer(fp format.Peer, want6 bool) (Peer, error) {
	svc, err := x.service(fp.Service, fp.Line)
	if err != nil {
		return Peer{}, err
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 {
		ips = []string{svc.Spec.ClusterIP}
	}
	for _, ip := range ips {
		if a, err := netip.ParseAddr(ip); err == nil && a.Is6() == want6 {
			return Peer{Service: fp.Service, IP: a}, nil
		}
	}
	return Peer{}, x.errorf(fp.Line, "Service %q has no cluster IP of that family", fp.Service)
}

// servicePort resolves the service port (number or name) of a service peer.
func (x *expander) servicePort(fp format.Peer, proto string, line int) (uint16, error) {
	svc, err := x.service(fp.Service, line)
	if err != nil {
		return 0, err
	}
	for _, sp := range svc.Spec.Ports {
		p := string(sp.Protocol)
		if p == "" {
			p = "TCP"
		}
		if p == proto && (sp.Name == fp.Port.Name && fp.Port.Name != "" || fp.Port.Number != 0 && int32(fp.Port.Number) == sp.Port) {
			return uint16(sp.Port), nil
		}
	}
	return 0, x.errorf(line, "Service %q has no %s port %s", fp.Service, proto, fp.Port)
}

// frontendOf names the applied Service that a node address or another
// address serves at port/proto: a NodePort on a node, a LoadBalancer
// ingress IP or an external IP. Empty when none does.
func (x *expander) frontendOf(to Peer, port uint16, proto string) (string, error) {
	for _, o := range x.st.applied {
		if o.Kind != "Service" {
			continue
		}
		var svc corev1.Service
		if err := json.Unmarshal(o.JSON, &svc); err != nil {
			return "", fmt.Errorf("%s: %v", o.Source, err)
		}
		ns := svc.Namespace
		if ns == "" {
			ns = "default"
		}
		for _, sp := range svc.Spec.Ports {
			p := string(sp.Protocol)
			if p == "" {
				p = "TCP"
			}
			if p != proto {
				continue
			}
			if to.Node != "" {
				if sp.NodePort != 0 && int32(port) == sp.NodePort {
					return ns + "/" + svc.Name, nil
				}
				continue
			}
			if int32(port) != sp.Port {
				continue
			}
			addrs := slices.Clone(svc.Spec.ExternalIPs)
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				addrs = append(addrs, ing.IP)
			}
			for _, a := range addrs {
				if ip, err := netip.ParseAddr(a); err == nil && ip == to.IP {
					return ns + "/" + svc.Name, nil
				}
			}
		}
	}
	return "", nil
}
