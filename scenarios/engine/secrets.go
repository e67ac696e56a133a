package engine

import (
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kestrelnet/kestrel/agent/policy"
	"github.com/kestrelnet/kestrel/scenarios/format"
)

// SecretsOf are the Secrets among a cluster's manifests, as the API server
// stores them (stringData merged into data), for headerMatches.
func SecretsOf(ms []Manifest) (policy.Secrets, error) {
	out := policy.Secrets{}
	for _, m := range ms {
		if m.Kind != "Secret" {
			continue
		}
		var s corev1.Secret
		if err := json.Unmarshal(m.JSON, &s); err != nil {
			return nil, fmt.Errorf("%s: Secret %s: %v", m.Source, m.Name, err)
		}
		ns := s.Namespace
		if ns == "" {
			ns = "default"
		}
		data := map[string][]byte{}
		for k, v := range s.Data {
			data[k] = v
		}
		for k, v := range s.StringData {
			data[k] = []byte(v)
		}
		out[ns+"/"+s.Name] = data
	}
	return out, nil
}

// checkSecrets refuses a set of applied objects when a policy among them
// needs a Secret the cluster does not have at that point: the error names
// the object's file and line and the field. A Secret deleted after its
// policy was applied is no error: the match then fails closed.
func (x *expander) checkSecrets(applied []format.Object) error {
	var ms []Manifest
	for _, o := range x.st.applied {
		ms = append(ms, Manifest{APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, Source: o.Source, JSON: o.JSON})
	}
	secrets, err := SecretsOf(ms)
	if err != nil {
		return err
	}
	var problems []string
	for _, o := range applied {
		if o.Kind != "CiliumNetworkPolicy" && o.Kind != "CiliumClusterwideNetworkPolicy" {
			continue
		}
		obj, err := policy.ParseJSONObject(o.JSON, o.Source)
		if err != nil {
			continue // the format's validation reported it
		}
		for _, e := range policy.CheckSecrets([]policy.Object{obj}, secrets) {
			problems = append(problems, fmt.Sprintf("%s: %s: %s", o.Source, e.Path, e.Msg))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}
