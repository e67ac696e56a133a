package service

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// hostPorts gives the HostPort frontends of a pod bound to this node: each
// container port with a hostPort, on its hostIP if it names one and else on
// every node address of each family the pod has an address in, translated to
// the pod's address and containerPort. kube-proxy has no hostPort (the CNI
// portmap plugin does it); this follows what portmap and Cilium's hostPort
// support do. A pod that has finished, or has no address yet, has none.
func hostPorts(pod *corev1.Pod, cfg *Config) ([]Frontend, error) {
	if pod.Spec.NodeName == "" || pod.Spec.NodeName != cfg.NodeName ||
		pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return nil, nil
	}
	var podIPs []netip.Addr
	for i, pip := range pod.Status.PodIPs {
		a, err := parseAddr(pip.IP)
		if err != nil {
			return nil, fmt.Errorf("status.podIPs[%d].ip: %w", i, err)
		}
		podIPs = append(podIPs, a)
	}
	if len(podIPs) == 0 && pod.Status.PodIP != "" {
		a, err := parseAddr(pod.Status.PodIP)
		if err != nil {
			return nil, fmt.Errorf("status.podIP: %w", err)
		}
		podIPs = append(podIPs, a)
	}
	name := types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}
	var out []Frontend
	for ci, c := range pod.Spec.Containers {
		for pi, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			path := fmt.Sprintf("spec.containers[%d].ports[%d]", ci, pi)
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if proto != corev1.ProtocolTCP && proto != corev1.ProtocolUDP && proto != corev1.ProtocolSCTP {
				return nil, fmt.Errorf("%s.protocol: %q is not TCP, UDP or SCTP", path, p.Protocol)
			}
			if p.HostPort < 0 || p.HostPort > 65535 {
				return nil, fmt.Errorf("%s.hostPort: %d is not a port", path, p.HostPort)
			}
			if p.ContainerPort <= 0 || p.ContainerPort > 65535 {
				return nil, fmt.Errorf("%s.containerPort: %d is not a port", path, p.ContainerPort)
			}
			var hostIP netip.Addr
			if p.HostIP != "" {
				a, err := parseAddr(p.HostIP)
				if err != nil {
					return nil, fmt.Errorf("%s.hostIP: %w", path, err)
				}
				hostIP = a
			}
			for _, pip := range podIPs {
				v6 := pip.Is6()
				var addrs []netip.Addr
				switch {
				case hostIP.IsValid() && !hostIP.IsUnspecified():
					if hostIP.Is6() == v6 {
						addrs = []netip.Addr{hostIP}
					}
				default:
					addrs = ofFamily(cfg.NodeIPs, v6)
					if len(addrs) == 0 {
						addrs = []netip.Addr{unspecified(v6)}
					}
				}
				for _, a := range addrs {
					out = append(out, Frontend{
						Addr:     a,
						Port:     uint16(p.HostPort),
						Protocol: proto,
						Kind:     HostPort,
						Service:  ServicePortName{NamespacedName: name, Port: p.Name, Protocol: proto},
						Action:   Forward,
						Backends: []Backend{{Addr: pip, Port: uint16(p.ContainerPort), NodeName: cfg.NodeName, Local: true}},
					})
				}
			}
		}
	}
	return out, nil
}
