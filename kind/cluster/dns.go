package cluster

import (
	"context"
	"fmt"
	"net"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kestrelnet/kestrel/sim/network"
)

// checkDNS asks the cluster DNS Service for the kubernetes Service's name from
// inside a CoreDNS pod's network namespace: the query goes to the kube-dns
// ClusterIP, which Kestrel translates, and CoreDNS answers from the API it reached
// through the kubernetes Service, which Kestrel also serves.
func checkDNS(ctx context.Context, cs kubernetes.Interface) error {
	svc, err := cs.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		return err
	}
	api, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return err
	}
	pods, err := cs.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: "k8s-app=kube-dns"})
	if err != nil || len(pods.Items) == 0 {
		return fmt.Errorf("no CoreDNS pod (%v)", err)
	}
	pid, err := PodPID(string(pods.Items[0].UID))
	if err != nil {
		return err
	}
	server := net.JoinHostPort(svc.Spec.ClusterIP, "53")
	var addrs []string
	// One exchange in this goroutine: network.Do moves only this thread into the
	// pod's namespace, and Go's resolver would dial from others.
	err = network.Do(fmt.Sprintf("/proc/%d/ns/net", pid), func() error {
		var err error
		addrs, err = queryA(server, "kubernetes.default.svc.cluster.local.")
		return err
	})
	if err != nil {
		return fmt.Errorf("DNS through %s from pod %s: %w", server, pods.Items[0].Name, err)
	}
	for _, a := range addrs {
		if a == api.Spec.ClusterIP {
			return nil
		}
	}
	return fmt.Errorf("DNS through %s: kubernetes.default is %v, want %s", server, addrs, api.Spec.ClusterIP)
}

// queryA asks server for name's A records over UDP.
func queryA(server, name string) ([]string, error) {
	n, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, err
	}
	msg := dnsmessage.Message{Header: dnsmessage.Header{ID: 0x4b45, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: n, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}}}
	q, err := msg.Pack()
	if err != nil {
		return nil, err
	}
	conn, err := net.Dial("udp", server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(3 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := conn.Write(q); err != nil {
		return nil, err
	}
	buf := make([]byte, 1500)
	m, err := conn.Read(buf)
	if err != nil {
		return nil, err
	}
	var resp dnsmessage.Message
	if err := resp.Unpack(buf[:m]); err != nil {
		return nil, err
	}
	if resp.Header.RCode != dnsmessage.RCodeSuccess {
		return nil, fmt.Errorf("rcode %s", resp.Header.RCode)
	}
	var out []string
	for _, a := range resp.Answers {
		if r, ok := a.Body.(*dnsmessage.AResource); ok {
			out = append(out, net.IP(r.A[:]).String())
		}
	}
	return out, nil
}

// DNSServiceIP is the cluster DNS Service's address on Kestrel's kind clusters:
// kubeadm gives it the service range's tenth address, 10.96.0.10, which the
// scenario engine hands to scenarios' services (as sim has no cluster DNS).
const DNSServiceIP = "10.96.255.10"

// ServiceCIDRs are kind's service ranges (dual-stack), the agents'
// --service-cluster-ip-range.
const ServiceCIDRs = "10.96.0.0/16,fd00:10:96::/112"

// relocateDNS recreates the kube-dns Service at DNSServiceIP (a ClusterIP cannot
// change in place); the kubelets already point pods there (KubeletConfiguration
// clusterDNS). Already there: nothing to do.
func relocateDNS(ctx context.Context, cs kubernetes.Interface) error {
	svcs := cs.CoreV1().Services("kube-system")
	svc, err := svcs.Get(ctx, "kube-dns", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kube-dns: %w", err)
	}
	if svc.Spec.ClusterIP == DNSServiceIP {
		return nil
	}
	if err := svcs.Delete(ctx, "kube-dns", metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("kube-dns: %w", err)
	}
	fresh := svc.DeepCopy()
	fresh.ResourceVersion, fresh.UID = "", ""
	fresh.Spec.ClusterIP, fresh.Spec.ClusterIPs = DNSServiceIP, []string{DNSServiceIP}
	fresh.Spec.IPFamilies = nil
	single := corev1.IPFamilyPolicySingleStack
	fresh.Spec.IPFamilyPolicy = &single
	if _, err := svcs.Create(ctx, fresh, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("kube-dns at %s: %w", DNSServiceIP, err)
	}
	return nil
}
