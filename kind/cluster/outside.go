package cluster

import (
	"fmt"
	"os/exec"
	"strings"
)

// AgentArgs are the agent flags of a kind cluster beyond install's defaults, as
// sim's agents have them: kube-proxy replacement on the node's device (kind's
// eth0 on the docker network), so NodePorts, LoadBalancer and external IPs are
// served to other nodes and the outside host, and pods' traffic leaving the pod
// ranges is masqueraded to the node's address.
var AgentArgs = []string{
	"--devices=eth0",
	"--enable-bpf-masquerade",
	"--ipv4-native-routing-cidr=10.244.0.0/16",
	"--ipv6-native-routing-cidr=fd00:10:244::/56",
}

// OutsideLabel labels the container that stands for the world beside a kind
// cluster's nodes (scenarios/kindmode/outside.go); its value is the cluster's name.
const OutsideLabel = "dev.kestrel.kind.outside"

// OutsideContainer is the name of that container.
func OutsideContainer(cluster string) string { return cluster + "-outside" }

// OutsideContainers lists the outside host containers of cluster name, running or not.
func OutsideContainers(name string) ([]string, error) {
	out, err := exec.Command("docker", "ps", "-a", "--filter", "label="+OutsideLabel+"="+name, "--format", "{{.Names}}").Output()
	if err != nil {
		return nil, fmt.Errorf("docker ps (outside host of %s): %w", name, err)
	}
	return strings.Fields(string(out)), nil
}

// removeOutside removes the cluster's outside host (kind does not know it).
func removeOutside(name string) error {
	names, err := OutsideContainers(name)
	if err != nil || len(names) == 0 {
		return err
	}
	out, err := exec.Command("docker", append([]string{"rm", "-f", "-v"}, names...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("docker rm %s: %v: %s", strings.Join(names, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
