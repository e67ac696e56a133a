package cni

import (
	"encoding/json"
	"fmt"
	"strings"
)

// PodAnnotationsCapability is the capability under which containerd's CRI passes a
// pod's annotations in runtimeConfig when the conflist declares it. On clusters
// whose kubelet does not set KESTREL_IP (every real one), the pod annotation
// kestrel.dev/ip reaches the plugin this way.
const PodAnnotationsCapability = "io.kubernetes.cri.pod-annotations"

// ipAnnotation is the annotation sim's kubelet passes as KESTREL_IP.
const ipAnnotation = "kestrel.dev/ip"

// requestedFromRuntimeConfig reads kestrel.dev/ip from the runtimeConfig's pod
// annotations; "" when there is none.
func requestedFromRuntimeConfig(stdin []byte) (string, error) {
	var c struct {
		RuntimeConfig map[string]json.RawMessage `json:"runtimeConfig"`
	}
	if err := json.Unmarshal(stdin, &c); err != nil {
		return "", nil // ParseConfig reports bad JSON with its field
	}
	raw, ok := c.RuntimeConfig[PodAnnotationsCapability]
	if !ok {
		return "", nil
	}
	var ann map[string]string
	if err := json.Unmarshal(raw, &ann); err != nil {
		return "", fmt.Errorf("runtimeConfig.%s: %w", PodAnnotationsCapability, err)
	}
	return strings.TrimSpace(ann[ipAnnotation]), nil
}
