package kubelet

import (
	"fmt"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/sim/network"
)

const probeTimeout = 500 * time.Millisecond

// portsReady checks from inside the pod's namespace that the container's
// ports answer on the pod address: TCP accepts, and UDP replies when the
// container is the built-in workload (which always replies). A command's UDP
// and all SCTP ports cannot be judged, so they do not hold readiness back.
func portsReady(netnsName, podIP string, c corev1.Container) error {
	builtIn := len(c.Command) == 0
	return network.Do(netnsName, func() error {
		for _, p := range c.Ports {
			addr := net.JoinHostPort(podIP, strconv.Itoa(int(p.ContainerPort)))
			switch p.Protocol {
			case corev1.ProtocolTCP, "":
				conn, err := net.DialTimeout("tcp", addr, probeTimeout)
				if err != nil {
					return fmt.Errorf("port %d/TCP: %w", p.ContainerPort, err)
				}
				conn.Close()
			case corev1.ProtocolUDP:
				if builtIn {
					if err := udpAnswers(addr); err != nil {
						return fmt.Errorf("port %d/UDP: %w", p.ContainerPort, err)
					}
				}
			}
		}
		return nil
	})
}

func udpAnswers(addr string) error {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := conn.Write([]byte("ready?")); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 512))
	return err
}
