package netpole2e

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"
)

// corpus is the upstream e2e suite transcribed as data (testdata/netpol-e2e-cases.yaml).
type corpus struct {
	Source string    `yaml:"source"`
	Model  yaml.Node `yaml:"model"`
	Cases  []tcase   `yaml:"cases"`
}

type tcase struct {
	Name            string   `yaml:"name"`
	Section         string   `yaml:"section"`
	ServerProtocols []string `yaml:"serverProtocols"`
	ServerPorts     []int    `yaml:"serverPorts"`
	Steps           []tstep  `yaml:"steps"`
}

type tstep struct {
	Actions []action `yaml:"actions"`
	Probes  []tprobe `yaml:"probes"`
}

// action is one upstream operation; exactly one field is set.
type action struct {
	CreatePolicy      yaml.Node          `yaml:"createPolicy"`
	UpdatePolicy      yaml.Node          `yaml:"updatePolicy"`
	DeleteAllPolicies bool               `yaml:"deleteAllPolicies"`
	AddPodLabels      *addPodLabels      `yaml:"addPodLabels"`
	AddNamespaceLabel *addNamespaceLabel `yaml:"addNamespaceLabel"`
}

type addPodLabels struct {
	Namespace string            `yaml:"namespace"`
	Pod       string            `yaml:"pod"`
	Labels    map[string]string `yaml:"labels"`
}

type addNamespaceLabel struct {
	Namespace string `yaml:"namespace"`
	Key       string `yaml:"key"`
	Value     string `yaml:"value"`
}

type tprobe struct {
	ToPort          int                        `yaml:"toPort"`
	Protocol        string                     `yaml:"protocol"`
	ReachabilityOps yaml.Node                  `yaml:"reachabilityOps"`
	Expected        map[string]map[string]bool `yaml:"expected"`
	ExpectedTable   string                     `yaml:"expectedTable"`
}

// model is the part of the corpus header the generator relies on.
type model struct {
	Namespaces     []string `yaml:"namespaces"`
	Pods           []string `yaml:"pods"`
	IgnoreLoopback bool     `yaml:"ignoreLoopback"`
}

// parseCorpus decodes the corpus strictly: a field the generator does not know
// means the corpus changed shape, and the generator must learn it first.
func parseCorpus(data []byte) (*corpus, *model, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c corpus
	if err := dec.Decode(&c); err != nil {
		return nil, nil, fmt.Errorf("corpus: %w", err)
	}
	var m model
	if err := c.Model.Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("corpus model: %w", err)
	}
	if len(m.Namespaces) == 0 || len(m.Pods) == 0 {
		return nil, nil, fmt.Errorf("corpus model: namespaces and pods are required")
	}
	return &c, &m, nil
}
