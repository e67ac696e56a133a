package datapath

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/ringbuf"
)

// Event is one verdict the datapath reported.
type Event struct {
	Time        time.Duration // since boot (bpf_ktime_get_ns)
	Src, Dst    netip.Addr
	SrcPort     uint16 // 0 for ICMP
	DstPort     uint16 // the ICMP type for ICMP
	Protocol    uint8
	Direction   Direction
	Verdict     Verdict
	Reason      DropReason
	MatchType   MatchType
	CT          CTStatus
	TCPFlags    uint8
	EndpointID  uint32
	SrcIdentity uint32
	DstIdentity uint32
	Cookie      uint32
	ProxyPort   uint16
	Length      uint32
	// NodeDevice is set for events from the node's own device (NodePort,
	// masquerade); EndpointID is then 0.
	NodeDevice bool
}

func (e Event) String() string {
	s := fmt.Sprintf("%s %s %s:%d -> %s:%d proto=%d id %d->%d ct=%s match=%s",
		e.Direction, e.Verdict, e.Src, e.SrcPort, e.Dst, e.DstPort, e.Protocol, e.SrcIdentity, e.DstIdentity, e.CT, e.MatchType)
	if e.Verdict == VerdictDropped {
		s += " reason=" + e.Reason.String()
	}
	return s
}

func decodeEvent(raw []byte) (Event, error) {
	var c lxcFlowEvent
	if len(raw) < int(unsafe.Sizeof(c)) {
		return Event{}, fmt.Errorf("flow event of %d bytes, want %d", len(raw), unsafe.Sizeof(c))
	}
	c = *(*lxcFlowEvent)(unsafe.Pointer(&raw[0]))
	return Event{
		Time:        time.Duration(c.TimestampNs),
		Src:         wordsAddr(c.Saddr.Addr, c.Family),
		Dst:         wordsAddr(c.Daddr.Addr, c.Family),
		SrcPort:     c.Sport,
		DstPort:     c.Dport,
		Protocol:    c.Proto,
		Direction:   Direction(c.Direction),
		Verdict:     Verdict(c.Verdict),
		Reason:      DropReason(c.DropReason),
		MatchType:   MatchType(c.MatchType),
		CT:          CTStatus(c.CtStatus),
		TCPFlags:    c.TcpFlags,
		EndpointID:  c.EndpointId,
		SrcIdentity: c.SrcIdentity,
		DstIdentity: c.DstIdentity,
		Cookie:      c.Cookie,
		ProxyPort:   c.ProxyPort,
		Length:      c.Length,
		NodeDevice:  c.Point == uint8(lxcObservationPointPOINT_NODE_DEVICE),
	}, nil
}

// drainEvents returns the events already in the ring buffer without waiting.
// Callers hold d.mu.
func (d *Datapath) drainEvents() ([]Event, error) {
	var out []Event
	var rec ringbuf.Record
	d.events.SetDeadline(time.Now())
	for {
		if err := d.events.ReadInto(&rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return out, nil
			}
			return out, fmt.Errorf("read flow events: %w", err)
		}
		ev, err := decodeEvent(rec.RawSample)
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

// eventPollInterval bounds how long an event can wait unread: the programs
// wake the reader only once a batch is pending, so it also polls.
const eventPollInterval = 100 * time.Millisecond

// ReadEvent blocks until the next event arrives (for a live agent), or until
// the datapath is closed. It holds the ring buffer while it waits, so it must
// not be used on a datapath whose Run is also in use.
func (d *Datapath) ReadEvent() (Event, error) {
	for {
		d.events.SetDeadline(time.Now().Add(eventPollInterval))
		rec, err := d.events.Read()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return Event{}, err
		}
		return decodeEvent(rec.RawSample)
	}
}
