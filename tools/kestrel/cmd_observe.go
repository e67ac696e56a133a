package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
	"github.com/kestrelnet/kestrel/agent/observe"
)

func init() { rootCmd.AddCommand(newObserveCmd()) }

func newObserveCmd() *cobra.Command {
	var q observe.Query
	var server, output string
	var last, first uint64
	var ids [3][]uint
	cmd := &cobra.Command{
		Use:   "observe [--server ADDR] [filters] [-o json|table|compact]",
		Short: "Show flows from the Hubble relay or an agent, with hubble observe's filters",
		Long: `observe reads flows over the Hubble Observer API, for users without the hubble
binary: by default the relay (localhost:4245, which sim up starts), or one
agent's hubble.sock. Without --first or --last it shows the last 20 flows,
and with --follow only new ones.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("first") && cmd.Flags().Changed("last") {
				return errors.New("--first and --last exclude each other")
			}
			for i, dst := range []*[]uint32{&q.Identity, &q.FromIdentity, &q.ToIdentity} {
				for _, id := range ids[i] {
					*dst = append(*dst, uint32(id))
				}
			}
			switch {
			case cmd.Flags().Changed("first"):
				q.First, q.Number = true, first
			case cmd.Flags().Changed("last"):
				q.Number = last
			case !q.Follow:
				q.Number = 20
			}
			req, err := q.Request(time.Now())
			if err != nil {
				return err
			}
			printer, err := observe.NewPrinter(output, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			conn, err := grpc.NewClient(observe.Target(server), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if !q.Follow {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Minute)
				defer cancel()
			}
			stream, err := observerpb.NewObserverClient(conn).GetFlows(ctx, req)
			if err != nil {
				return fmt.Errorf("%s: %w", server, err)
			}
			for {
				r, err := stream.Recv()
				if errors.Is(err, io.EOF) || (err != nil && ctx.Err() != nil && q.Follow) {
					return printer.Close()
				}
				if err != nil {
					printer.Close()
					return fmt.Errorf("%s: %w", server, err)
				}
				if err := printer.Print(r); err != nil {
					return err
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", DefaultRelayAddress, "relay or agent: host:port, or a unix socket path (an agent's hubble.sock)")
	f.StringVarP(&output, "output", "o", "compact", "json, table or compact")
	f.BoolVarP(&q.Follow, "follow", "f", false, "keep showing new flows")
	f.Uint64Var(&last, "last", 0, "the last N matching flows")
	f.Uint64Var(&first, "first", 0, "the first N matching flows")
	f.StringVar(&q.Since, "since", "", "flows since a time (RFC 3339) or a duration ago (5m)")
	f.StringVar(&q.Until, "until", "", "flows until a time (RFC 3339) or a duration ago")
	for _, s := range []struct {
		ptr        *[]string
		name, help string
	}{
		{&q.Pod, "pod", "pod ([namespace/]name prefix) at either end"},
		{&q.FromPod, "from-pod", "source pod"}, {&q.ToPod, "to-pod", "destination pod"},
		{&q.Namespace, "namespace", "namespace at either end"},
		{&q.FromNamespace, "from-namespace", "source namespace"}, {&q.ToNamespace, "to-namespace", "destination namespace"},
		{&q.Label, "label", "label selector (k8s:app=a, app in (a,b)) at either end"},
		{&q.FromLabel, "from-label", "source label selector"}, {&q.ToLabel, "to-label", "destination label selector"},
		{&q.IP, "ip", "address or CIDR at either end"}, {&q.FromIP, "from-ip", "source address or CIDR"}, {&q.ToIP, "to-ip", "destination address or CIDR"},
		{&q.Port, "port", "port at either end"}, {&q.FromPort, "from-port", "source port"}, {&q.ToPort, "to-port", "destination port"},
		{&q.Protocol, "protocol", "tcp, udp, sctp, icmp, icmpv4, icmpv6"},
		{&q.Verdict, "verdict", "FORWARDED, DROPPED, ..."},
		{&q.DropReason, "drop-reason-desc", "Cilium's drop reason name (POLICY_DENIED, POLICY_DENY, ...)"},
		{&q.Direction, "traffic-direction", "ingress or egress"},
		{&q.Node, "node-name", "node name pattern (node-*)"},
	} {
		f.StringArrayVar(s.ptr, s.name, nil, s.help)
	}
	f.UintSliceVar(&ids[0], "identity", nil, "identity at either end")
	f.UintSliceVar(&ids[1], "from-identity", nil, "source identity")
	f.UintSliceVar(&ids[2], "to-identity", nil, "destination identity")
	return cmd
}
