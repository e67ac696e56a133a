package cni

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/kestrelnet/kestrel/agent/api"
)

// Status says whether ADDs can succeed: they need the agent, so the plugin
// is ready exactly when the agent answers healthz.
func Status(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	ctx, cancel := withTimeout(agentHealthTimeout)
	defer cancel()
	if err := api.NewClient(conf.AgentSocket).Healthz(ctx); err != nil {
		return types.NewError(errPluginNotAvailable, "kestrel-agent is not available", err.Error())
	}
	return nil
}
