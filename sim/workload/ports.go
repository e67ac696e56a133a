// Package workload is what runs in a sim pod when it has no command: echo
// servers on the pod's declared ports, so probes can tell which pod and port
// answered. It binds in whatever network namespace it is started in.
package workload

import (
	"fmt"
	"strconv"
	"strings"
)

// Port is one port to serve.
type Port struct {
	Number   int    // 0 picks an ephemeral port (tests)
	Protocol string // TCP, UDP or SCTP
	HTTP     bool   // serve HTTP instead of the line protocol (TCP only)
	Kafka    bool   // serve a Kafka broker instead (TCP only)
	// Mux serves TLS (any server name), HTTP and the line protocol on one
	// TCP port, told apart by the client's first bytes: the servers
	// outside the cluster, whatever client a scenario points at them.
	Mux bool
}

func (p Port) String() string {
	s := strconv.Itoa(p.Number) + "/" + p.Protocol
	if p.HTTP {
		s += "/http"
	}
	if p.Kafka {
		s += "/kafka"
	}
	return s
}

// ParsePorts reads "80/TCP,81/UDP,8080/TCP/http,9092/TCP/kafka,90":
// protocol defaults to TCP, a third field "http" selects HTTP, "kafka" a
// Kafka broker.
func ParsePorts(s string) ([]Port, error) {
	var ports []Port
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, item := range strings.Split(s, ",") {
		fields := strings.Split(strings.TrimSpace(item), "/")
		n, err := strconv.Atoi(fields[0])
		if err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("port %q: want NUMBER[/TCP|UDP|SCTP[/http]] with NUMBER in [0, 65535]", item)
		}
		p := Port{Number: n, Protocol: "TCP"}
		if len(fields) > 1 {
			p.Protocol = strings.ToUpper(fields[1])
		}
		switch p.Protocol {
		case "TCP", "UDP", "SCTP":
		default:
			return nil, fmt.Errorf("port %q: protocol %q is not TCP, UDP or SCTP", item, fields[1])
		}
		if len(fields) > 2 {
			switch {
			case p.Protocol != "TCP":
				return nil, fmt.Errorf("port %q: only TCP ports take the http or kafka flag", item)
			case strings.EqualFold(fields[2], "http"):
				p.HTTP = true
			case strings.EqualFold(fields[2], "kafka"):
				p.Kafka = true
			default:
				return nil, fmt.Errorf("port %q: the third field is http or kafka", item)
			}
		}
		if len(fields) > 3 {
			return nil, fmt.Errorf("port %q: too many fields", item)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// FormatPorts is the inverse of ParsePorts, for building command lines.
func FormatPorts(ports []Port) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}
