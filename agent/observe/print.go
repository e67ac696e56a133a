package observe

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"

	flowpb "github.com/kestrelnet/kestrel/agent/hubbleapi/flow"
	observerpb "github.com/kestrelnet/kestrel/agent/hubbleapi/observer"
)

// Printer writes flows as `kestrel observe` shows them: json (one
// GetFlowsResponse per line, with the proto field names hubble's -o json
// uses), table (aligned columns, flushed at Close) or compact (one line).
type Printer struct {
	format string
	out    io.Writer
	tw     *tabwriter.Writer
}

// NewPrinter checks format and prepares out.
func NewPrinter(format string, out io.Writer) (*Printer, error) {
	p := &Printer{format: format, out: out}
	switch format {
	case "json", "compact":
	case "table":
		p.tw = tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
		fmt.Fprintln(p.tw, "TIMESTAMP\tNODE\tSOURCE\tDESTINATION\tTYPE\tVERDICT\tSUMMARY\tPOLICIES")
	default:
		return nil, fmt.Errorf("output %q: want json, table or compact", format)
	}
	return p, nil
}

var jsonOpts = protojson.MarshalOptions{UseProtoNames: true}

// Print writes one response.
func (p *Printer) Print(r *observerpb.GetFlowsResponse) error {
	if lost := r.GetLostEvents(); lost != nil && p.format != "json" {
		_, err := fmt.Fprintf(p.out, "EVENTS LOST: %s %d (node %s)\n", lost.GetSource(), lost.GetNumEventsLost(), r.GetNodeName())
		return err
	}
	f := r.GetFlow()
	if f == nil && p.format != "json" {
		return nil
	}
	switch p.format {
	case "json":
		b, err := jsonOpts.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(p.out, "%s\n", b)
		return err
	case "table":
		_, err := fmt.Fprintf(p.tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stamp(f), f.GetNodeName(),
			peerText(f.GetSource(), f.GetIP().GetSource(), srcPort(f)), peerText(f.GetDestination(), f.GetIP().GetDestination(), dstPort(f)),
			point(f), verdictText(f), f.GetSummary(), policyText(f))
		return err
	}
	line := fmt.Sprintf("%s [%s]: %s -> %s %s %s (%s)", stamp(f), f.GetNodeName(),
		peerText(f.GetSource(), f.GetIP().GetSource(), srcPort(f)), peerText(f.GetDestination(), f.GetIP().GetDestination(), dstPort(f)),
		point(f), verdictText(f), f.GetSummary())
	if pol := policyText(f); pol != "" {
		line += " by " + pol
	}
	_, err := fmt.Fprintln(p.out, line)
	return err
}

// Close flushes the table.
func (p *Printer) Close() error {
	if p.tw != nil {
		return p.tw.Flush()
	}
	return nil
}

func stamp(f *flowpb.Flow) string { return f.GetTime().AsTime().Local().Format("Jan _2 15:04:05.000") }

func srcPort(f *flowpb.Flow) uint32 { s, _ := ports(f); return s }
func dstPort(f *flowpb.Flow) uint32 { _, d := ports(f); return d }

// peerText is ns/pod:port (ID:n), or the address for what is not a pod.
func peerText(ep *flowpb.Endpoint, ip string, port uint32) string {
	name := ip
	if ep.GetPodName() != "" {
		name = ep.GetNamespace() + "/" + ep.GetPodName()
	}
	if port != 0 {
		name = fmt.Sprintf("%s:%d", name, port)
	}
	return fmt.Sprintf("%s (ID:%d)", name, ep.GetIdentity())
}

func point(f *flowpb.Flow) string {
	switch {
	case f.GetEventType().GetType() == eventPolicyVerdict:
		return "policy-verdict:" + strings.ToLower(f.GetTrafficDirection().String())
	case f.GetVerdict() == flowpb.Verdict_DROPPED:
		return strings.ToLower(f.GetTrafficDirection().String()) + "-drop"
	case f.GetTraceObservationPoint() == flowpb.TraceObservationPoint_FROM_ENDPOINT:
		return "from-endpoint"
	}
	return "to-endpoint"
}

func verdictText(f *flowpb.Flow) string {
	if f.GetVerdict() == flowpb.Verdict_DROPPED && f.GetDropReasonDesc() != flowpb.DropReason_DROP_REASON_UNKNOWN {
		return "DROPPED " + f.GetDropReasonDesc().String()
	}
	return f.GetVerdict().String()
}

// policyText names the policies that allowed or denied the flow.
func policyText(f *flowpb.Flow) string {
	var names []string
	for _, ps := range [][]*flowpb.Policy{f.GetIngressAllowedBy(), f.GetEgressAllowedBy(), f.GetIngressDeniedBy(), f.GetEgressDeniedBy()} {
		for _, p := range ps {
			n := p.GetKind() + "/" + p.GetName()
			if p.GetNamespace() != "" {
				n = p.GetKind() + "/" + p.GetNamespace() + "/" + p.GetName()
			}
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}
