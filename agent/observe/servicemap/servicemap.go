// Package servicemap serves the service map: a web page (ui/, a cytoscape
// graph bundled by esbuild into ui/dist/app.js, committed and embedded so
// `go build` needs no npm) drawing workloads as nodes and flows as edges
// coloured by verdict, live from the relay's merged flow stream (server-
// sent events), filterable by namespace.
package servicemap

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
)

//go:generate sh ui/build.sh

//go:embed ui/index.html ui/dist/app.js
var assets embed.FS

// Backlog is how many recent flows a new page gets before the live ones.
const Backlog = 2000

// Handler serves the page, its script, /api/namespaces and /api/flows
// (server-sent events) from obs, the relay.
func Handler(obs observerpb.ObserverClient) http.Handler {
	mux := http.NewServeMux()
	ui, _ := fs.Sub(assets, "ui")
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, ui, "index.html")
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, ui, "dist/app.js")
	})
	mux.HandleFunc("GET /api/namespaces", func(w http.ResponseWriter, r *http.Request) {
		resp, err := obs.GetNamespaces(r.Context(), &observerpb.GetNamespacesRequest{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		names := []string{}
		for _, ns := range resp.GetNamespaces() {
			names = append(names, ns.GetNamespace())
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(names) //nolint:errcheck
	})
	mux.HandleFunc("GET /api/flows", func(w http.ResponseWriter, r *http.Request) { streamFlows(w, r, obs) })
	return mux
}

// streamFlows follows the relay's flows (after the last Backlog) as
// server-sent events, one Edge each, until the page goes.
func streamFlows(w http.ResponseWriter, r *http.Request, obs observerpb.ObserverClient) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	req := &observerpb.GetFlowsRequest{Follow: true, Number: Backlog}
	if ns := r.URL.Query().Get("namespace"); ns != "" {
		// Either end in the namespace, as `hubble observe --namespace`.
		req.Whitelist = []*flowpb.FlowFilter{{SourcePod: []string{ns + "/"}}, {DestinationPod: []string{ns + "/"}}}
	}
	stream, err := obs.GetFlows(r.Context(), req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	fmt.Fprint(w, ": connected\n\n")
	flusher.Flush()
	for {
		resp, err := stream.Recv()
		if err != nil {
			return
		}
		e, ok := EdgeOf(resp.GetFlow())
		if !ok {
			continue
		}
		b, _ := json.Marshal(e)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return
		}
		flusher.Flush()
	}
}

// Node is a graph node: a workload (or a pod without one), a Service, or a
// reserved entity (world, host, ...) by identity.
type Node struct {
	ID        string `json:"id"`
	Label     string `json:"label"`
	Namespace string `json:"namespace,omitempty"`
	Kind      string `json:"kind"` // Deployment, ..., Pod, or reserved
	Pod       string `json:"pod,omitempty"`
}

// Edge is one flow as the page draws it.
type Edge struct {
	Time     time.Time `json:"time"`
	Src      Node      `json:"src"`
	Dst      Node      `json:"dst"`
	Verdict  string    `json:"verdict"` // FORWARDED, DROPPED, ...
	Reason   string    `json:"reason,omitempty"`
	Protocol string    `json:"protocol"`
	Port     uint32    `json:"port,omitempty"`
	Policies []string  `json:"policies,omitempty"` // Kind/namespace/name that allowed or denied it
	// Service is the Service the destination is a frontend or backend of:
	// the page draws the flow to the Service, and the Service to its
	// backend.
	Service *Node `json:"service,omitempty"`
}

// EdgeOf is the edge of a connection's flow; replies, and the policy
// verdict events beside a trace or drop, are not drawn twice.
func EdgeOf(f *flowpb.Flow) (Edge, bool) {
	if f == nil || f.GetIsReply().GetValue() || f.GetEventType().GetType() == 5 {
		return Edge{}, false
	}
	e := Edge{Src: nodeOf(f.GetSource(), f.GetIP().GetSource()), Dst: nodeOf(f.GetDestination(), f.GetIP().GetDestination()),
		Verdict: f.GetVerdict().String(), Protocol: "IP"}
	if f.GetTime() != nil {
		e.Time = f.GetTime().AsTime()
	}
	if f.GetVerdict() == flowpb.Verdict_DROPPED {
		e.Reason = f.GetDropReasonDesc().String()
		if _, ours, ok := strings.Cut(f.GetSummary(), "Kestrel drop reason: "); ok {
			e.Reason = ours
		}
	}
	l4 := f.GetL4()
	switch {
	case l4.GetTCP() != nil:
		e.Protocol, e.Port = "TCP", l4.GetTCP().GetDestinationPort()
	case l4.GetUDP() != nil:
		e.Protocol, e.Port = "UDP", l4.GetUDP().GetDestinationPort()
	case l4.GetSCTP() != nil:
		e.Protocol, e.Port = "SCTP", l4.GetSCTP().GetDestinationPort()
	case l4.GetICMPv4() != nil:
		e.Protocol = "ICMPv4"
	case l4.GetICMPv6() != nil:
		e.Protocol = "ICMPv6"
	}
	if svc := f.GetDestinationService(); svc.GetName() != "" {
		e.Service = &Node{ID: svc.GetNamespace() + "/Service/" + svc.GetName(), Label: svc.GetName(), Namespace: svc.GetNamespace(), Kind: "Service"}
	}
	for _, ps := range [][]*flowpb.Policy{f.GetIngressAllowedBy(), f.GetEgressAllowedBy(), f.GetIngressDeniedBy(), f.GetEgressDeniedBy()} {
		for _, p := range ps {
			e.Policies = append(e.Policies, strings.Trim(p.GetKind()+"/"+p.GetNamespace()+"/"+p.GetName(), "/"))
		}
	}
	return e, true
}

func nodeOf(ep *flowpb.Endpoint, ip string) Node {
	if ep.GetPodName() != "" {
		n := Node{Namespace: ep.GetNamespace(), Kind: "Pod", Label: ep.GetPodName(), Pod: ep.GetPodName()}
		if ws := ep.GetWorkloads(); len(ws) > 0 {
			n.Kind, n.Label = ws[0].GetKind(), ws[0].GetName()
		}
		n.ID = n.Namespace + "/" + n.Kind + "/" + n.Label
		return n
	}
	for _, l := range ep.GetLabels() {
		if name, ok := strings.CutPrefix(l, "reserved:"); ok {
			return Node{ID: "reserved:" + name, Label: name, Kind: "reserved"}
		}
	}
	return Node{ID: "ip:" + ip, Label: ip, Kind: "ip"}
}
