package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
	"github.com/kestrelnet/kestrel/agent/observe"
	"github.com/kestrelnet/kestrel/agent/observe/servicemap"
	"github.com/kestrelnet/kestrel/sim/cluster"
)

// DefaultRelayAddress is hubble's default --server, so the hubble CLI finds
// the relay without flags.
const DefaultRelayAddress = cluster.RelayAddress

// DefaultServiceMapAddress is where the relay serves the service map:
// hubble-ui's port, on localhost.
const DefaultServiceMapAddress = cluster.ServiceMapAddress

// DefaultRelayMetricsAddress is hubble-relay's metrics port, on localhost.
const DefaultRelayMetricsAddress = cluster.RelayMetricsAddress

func init() { rootCmd.AddCommand(newRelayCmd()) }

func newRelayCmd() *cobra.Command {
	var listen, stateDir, metricsAddr, uiAddr string
	var peers []string
	cmd := &cobra.Command{
		Use:   "relay [--listen-address ADDR] (--peer NODE=ADDR ... | --state-dir DIR)",
		Short: "Serve every node's Hubble flows as one Observer API, ordered by time (as hubble-relay)",
		Long: `relay asks each node's agent (its Hubble socket or TCP address) and merges
the answers. With --state-dir (a sim cluster's) the nodes are the agents'
hubble.sock files under DIR/nodes, looked up again on every request.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fixed, err := parsePeers(peers)
			if err != nil {
				return err
			}
			if len(fixed) == 0 && stateDir == "" {
				return fmt.Errorf("give --peer NODE=ADDR or --state-dir")
			}
			relay := observe.NewRelay(func() []observe.Peer { return append(fixed, simPeers(stateDir)...) })
			defer relay.Close()
			ln, err := observe.Listen(listen)
			if err != nil {
				return fmt.Errorf("--listen-address: %w", err)
			}
			srv, metrics := observe.NewRelayGRPCServer(relay)
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			go func() { <-ctx.Done(); srv.Stop() }()
			if metricsAddr != "" {
				mln, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					return fmt.Errorf("--metrics-listen-address: %w", err)
				}
				msrv := &http.Server{Handler: metrics, ReadHeaderTimeout: 10 * time.Second}
				go msrv.Serve(mln) //nolint:errcheck
				defer msrv.Close()
				fmt.Fprintf(cmd.OutOrStdout(), "relay metrics on http://%s/metrics\n", mln.Addr())
			}
			if uiAddr != "" {
				stopUI, err := serveServiceMap(uiAddr, ln.Addr().String())
				if err != nil {
					return err
				}
				defer stopUI()
				fmt.Fprintf(cmd.OutOrStdout(), "service map on http://%s/\n", uiAddr)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hubble relay serving on %s\n", ln.Addr())
			return srv.Serve(ln)
		},
	}
	cmd.Flags().StringVar(&listen, "listen-address", DefaultRelayAddress, "address to serve on (host:port, or a unix socket path)")
	cmd.Flags().StringVar(&metricsAddr, "metrics-listen-address", DefaultRelayMetricsAddress, "address to serve Prometheus metrics on (hubble-relay's port); empty: off")
	cmd.Flags().StringVar(&uiAddr, "ui-listen-address", DefaultServiceMapAddress, "address to serve the service map page on (hubble-ui's port); empty: off")
	cmd.Flags().StringArrayVar(&peers, "peer", nil, "a node's Hubble Observer, NODE=ADDR (ADDR: unix socket path or host:port); repeatable")
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "a sim cluster's state directory: relay every agent under it")
	return cmd
}

func parsePeers(specs []string) ([]observe.Peer, error) {
	var out []observe.Peer
	for _, s := range specs {
		var p observe.Peer
		i := strings.IndexByte(s, '=')
		if i <= 0 || i == len(s)-1 {
			return nil, fmt.Errorf("--peer %q: want NODE=ADDR", s)
		}
		p.Name, p.Addr = s[:i], s[i+1:]
		out = append(out, p)
	}
	return out, nil
}

// simPeers finds the agents' Hubble sockets of a sim cluster.
func simPeers(stateDir string) []observe.Peer {
	if stateDir == "" {
		return nil
	}
	socks, _ := filepath.Glob(filepath.Join(stateDir, "nodes", "*", "hubble.sock"))
	sort.Strings(socks)
	var out []observe.Peer
	for _, s := range socks {
		out = append(out, observe.Peer{Name: filepath.Base(filepath.Dir(s)), Addr: s})
	}
	return out
}

// serveServiceMap serves the service map page on addr, reading the relay's
// merged flows from its own gRPC address.
func serveServiceMap(addr, relayAddr string) (func(), error) {
	conn, err := grpc.NewClient(observe.Target(relayAddr), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("--ui-listen-address: %w", err)
	}
	srv := &http.Server{Handler: servicemap.Handler(observerpb.NewObserverClient(conn)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck
	return func() { srv.Close(); conn.Close() }, nil
}
