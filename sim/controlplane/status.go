package controlplane

import (
	"context"
	"path/filepath"
)

// ProcessStatus is one recorded process.
type ProcessStatus struct {
	Name    string
	PID     int // 0 when not running
	Running bool
	Log     string
}

// StatusReport says what of a control plane is up.
type StatusReport struct {
	StateDir   string
	Kubeconfig string
	Processes  []ProcessStatus
	Ready      bool   // /readyz answered ok
	ReadyError string // why not, when not
}

// Status reports each control-plane process of stateDir and whether kube-apiserver's
// /readyz answers ok. It needs only the state dir.
func Status(ctx context.Context, stateDir string) StatusReport {
	r := StatusReport{StateDir: stateDir, Kubeconfig: filepath.Join(stateDir, "kubeconfig")}
	for _, name := range Processes {
		pid, running := RunningPID(stateDir, name)
		if !running {
			pid = 0
		}
		r.Processes = append(r.Processes, ProcessStatus{Name: name, PID: pid, Running: running, Log: LogFile(stateDir, name)})
	}
	config, err := RESTConfig(r.Kubeconfig)
	if err == nil {
		r.Ready, err = readyz(ctx, config)
	}
	if err != nil {
		r.ReadyError = err.Error()
	} else if !r.Ready {
		r.ReadyError = "/readyz did not answer ok"
	}
	return r
}
