// Package datapathstate turns the policy resolver's output into the contents
// of one node's datapath, and writes them. It is the single translation
// between agent/policy and datapath: the agent daemon and the unit-mode
// scenario runner both use it, so what a scenario verifies is what the agent
// programs.
package datapathstate
