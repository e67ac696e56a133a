package cni

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/kestrelnet/kestrel/agent/api"
)

// Del unwires a pod. It works from the container ID alone, because the
// runtime calls it whatever state the pod is in: after a failed ADD, twice,
// or after the netns is gone (the kernel then already destroyed the veth
// pair). An agent that is down does not fail it, or a node whose agent
// crashed could never free its pods; the agent reconciles its endpoints
// when it comes back. An agent that answers with an error does fail it,
// after the local cleanup, so the runtime retries.
func Del(args *skel.CmdArgs) error {
	conf, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	var errs []error

	ctx, cancel := withTimeout(agentDeleteTimeout)
	defer cancel()
	if err := api.NewClient(conf.AgentSocket).DeleteEndpoint(ctx, args.ContainerID); err != nil {
		if agentUnreachable(err) {
			fmt.Fprintf(os.Stderr, "kestrel-cni: DEL %s: agent unreachable, going on: %v\n", args.ContainerID, err)
		} else {
			errs = append(errs, err)
		}
	}
	if err := deleteLink(HostIfName(args.ContainerID)); err != nil {
		errs = append(errs, err)
	}
	if err := newIPAMStore(conf).Release(args.ContainerID, args.IfName); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return types.NewError(types.ErrInternal, fmt.Sprintf("DEL %s", args.ContainerID), err.Error())
	}
	return nil
}

// agentUnreachable tells a dead or stuck agent (no socket, refused, timed
// out) from one that answered with an error.
func agentUnreachable(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, context.DeadlineExceeded)
}
