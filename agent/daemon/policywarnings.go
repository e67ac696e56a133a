package daemon

import "github.com/kestrelnet/kestrel/agent/policy"

// warnPolicies keeps the warnings of the policies in force for the status
// (the watcher logs them and records a Warning Event on the policy once per
// version, when it is applied), so a policy Kestrel enforces differently
// from how it reads (an l7proto port that drops as PROXY_UNAVAILABLE) is
// reported when it is applied, not only when its traffic drops. Called
// under d.mu.
func (d *Daemon) warnPolicies(pols []policy.Object) {
	var ws []string
	for i := range pols {
		ws = append(ws, policy.Warnings(&pols[i])...)
	}
	d.policyWarnings = ws
}
