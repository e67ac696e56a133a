package datapath

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// LoadBaseline loads the empty pass-through program benchmarks subtract.
func LoadBaseline() (*ebpf.Program, error) {
	var objs baselineObjects
	if err := loadBaselineObjects(&objs, nil); err != nil {
		return nil, fmt.Errorf("load baseline program: %w", err)
	}
	return objs.Pass, nil
}
