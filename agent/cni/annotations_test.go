package cni

import (
	"strings"
	"testing"
)

func TestRequestedFromRuntimeConfig(t *testing.T) {
	conf := `{"cniVersion":"1.1.0","type":"kestrel-cni","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"kestrel.dev/ip":"10.244.1.7,fd00:10:244:1::7","other":"x"}}}`
	v, err := requestedFromRuntimeConfig([]byte(conf))
	if err != nil || v != "10.244.1.7,fd00:10:244:1::7" {
		t.Errorf("got %q, %v", v, err)
	}
	// The config must still parse with runtimeConfig in it (strict decoding).
	full := `{"cniVersion":"1.1.0","name":"kestrel","type":"kestrel-cni","agentSocket":"/s","podCIDRs":["10.244.1.0/24"],"gateway":"10.244.1.1","ipamDir":"/i",` +
		`"capabilities":{"io.kubernetes.cri.pod-annotations":true},"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"kestrel.dev/ip":"10.244.1.7"}}}`
	if _, err := ParseConfig([]byte(full)); err != nil {
		t.Errorf("ParseConfig with runtimeConfig: %v", err)
	}
	for _, none := range []string{`{"runtimeConfig":{}}`, `{}`, `{"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{}}}`} {
		if v, err := requestedFromRuntimeConfig([]byte(none)); err != nil || v != "" {
			t.Errorf("%s: got %q, %v; want none", none, v, err)
		}
	}
	if _, err := requestedFromRuntimeConfig([]byte(`{"runtimeConfig":{"io.kubernetes.cri.pod-annotations":["x"]}}`)); err == nil || !strings.Contains(err.Error(), "runtimeConfig.io.kubernetes.cri.pod-annotations") {
		t.Errorf("bad annotations: %v, want an error naming the field", err)
	}
}
