package cni

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// ipamStore hands out pod addresses, host-local style: one file per
// allocated address in dir, named by the address and holding
// "containerID\nifname". A file is created with O_EXCL under an flock on
// dir/lock, so concurrent ADDs on one node (the kubelet runs them in
// parallel) never hand out one address twice, and the state survives the
// plugin process, which lives for one call only. A pod gets one address of
// each family the pod CIDRs hold.
type ipamStore struct {
	dir     string
	cidrs   []netip.Prefix
	gateway netip.Addr // the IPv4 gateway, never handed out
}

const (
	ipamLockFile = "lock"
	// ipamLastFile (+ ".ipv4" or ".ipv6") remembers the last address handed
	// out in a family, so allocation goes round the range instead of reusing
	// the address a pod just gave back: the agent and peers may still hold
	// state (ipcache, conntrack) for it.
	ipamLastFile = "last_reserved_ip"
)

func newIPAMStore(c *Config) *ipamStore {
	return &ipamStore{dir: c.IPAMDir, cidrs: c.PodCIDRs, gateway: c.Gateway}
}

// errAddressTaken is returned when a requested address belongs to another
// container.
var errAddressTaken = errors.New("address taken")

// Allocate returns the addresses of (containerID, ifname), IPv4 first: one
// per family of the pod CIDRs. A container that already has them gets them
// again, so a retried ADD is harmless. want holds the addresses the pod
// asked for (KESTREL_IP), at most one per family. Either every family gets
// its address or none is reserved.
func (s *ipamStore) Allocate(containerID, ifname string, want []netip.Addr) (out []netip.Addr, err error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()

	records, err := s.records()
	if err != nil {
		return nil, err
	}
	held := map[bool]netip.Addr{}
	for ip, r := range records {
		if r.containerID == containerID && r.ifname == ifname {
			held[ip.Is6()] = ip
		}
	}
	wanted := map[bool]netip.Addr{}
	for _, w := range want {
		if len(s.family(w.Is6())) == 0 {
			return nil, fmt.Errorf("ipam: requested KESTREL_IP %s: no %s range in podCIDRs %s", w, family(w), s.cidrList(s.cidrs))
		}
		wanted[w.Is6()] = w
	}
	var reserved []netip.Addr
	defer func() {
		if err != nil {
			for _, ip := range reserved {
				os.Remove(filepath.Join(s.dir, ip.String()))
			}
		}
	}()
	for _, v6 := range []bool{false, true} {
		cidrs := s.family(v6)
		if len(cidrs) == 0 {
			continue
		}
		w, asked := wanted[v6]
		if ip, ok := held[v6]; ok {
			if asked && w != ip {
				return nil, fmt.Errorf("ipam: container %s already holds %s, cannot switch to requested KESTREL_IP %s", containerID, ip, w)
			}
			out = append(out, ip)
			continue
		}
		if asked {
			if err := s.usable(w); err != nil {
				return nil, fmt.Errorf("ipam: requested KESTREL_IP %s: %w", w, err)
			}
			if r, ok := records[w]; ok {
				return nil, fmt.Errorf("ipam: requested KESTREL_IP %s is taken by container %s: %w", w, r.containerID, errAddressTaken)
			}
			if err := s.reserve(w, containerID, ifname); err != nil {
				return nil, err
			}
			reserved = append(reserved, w)
			out = append(out, w)
			continue
		}
		ip, err := s.pick(records, cidrs, containerID, ifname)
		if err != nil {
			return nil, err
		}
		reserved = append(reserved, ip)
		out = append(out, ip)
	}
	return out, nil
}

// pick reserves the first free address after the family's last one. At
// most len(records) addresses are taken, so len(records)+1 steps find a
// free one unless the range is full; the walk never lists a whole range,
// which for an IPv6 /64 could not end.
func (s *ipamStore) pick(records map[netip.Addr]ipamRecord, cidrs []netip.Prefix, containerID, ifname string) (netip.Addr, error) {
	v6 := cidrs[0].Addr().Is6()
	lastFile := filepath.Join(s.dir, ipamLastFile+"."+strings.ToLower(family(cidrs[0].Addr())))
	first := s.next(cidrs, readAddr(lastFile))
	ip := first
	for range len(records) + 1 {
		if _, taken := records[ip]; !taken {
			err := s.reserve(ip, containerID, ifname)
			if err == nil {
				// Losing the hint only costs the round-robin order.
				_ = os.WriteFile(lastFile, []byte(ip.String()), 0o644)
				return ip, nil
			}
			if !errors.Is(err, fs.ErrExist) {
				return netip.Addr{}, err
			}
		}
		if ip = s.next(cidrs, ip); ip == first {
			break
		}
	}
	return netip.Addr{}, fmt.Errorf("ipam: no free %s address left in podCIDRs %s (%d in use in %s)",
		family(cidrs[0].Addr()), s.cidrList(cidrs), countFamily(records, v6), s.dir)
}

// next is the usable address after a in cidrs (all of one family), going
// round to the first range after the last. An a outside them starts at the
// beginning. Every range has a usable address (parseConfig sees to it), so
// the loop ends within a range's few unusable addresses.
func (s *ipamStore) next(cidrs []netip.Prefix, a netip.Addr) netip.Addr {
	i := slices.IndexFunc(cidrs, func(p netip.Prefix) bool { return p.Contains(a) })
	if i < 0 {
		i, a = 0, cidrs[0].Addr()
	}
	for {
		a = a.Next()
		if !a.IsValid() || !cidrs[i].Contains(a) {
			i = (i + 1) % len(cidrs)
			a = cidrs[i].Addr()
			continue
		}
		if s.usable(a) == nil {
			return a
		}
	}
}

// Lookup returns the addresses recorded for (containerID, ifname), IPv4 first.
func (s *ipamStore) Lookup(containerID, ifname string) ([]netip.Addr, error) {
	records, err := s.records()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for ip, r := range records {
		if r.containerID == containerID && r.ifname == ifname {
			out = append(out, ip)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out, nil
}

// Release frees every address recorded for (containerID, ifname). Freeing
// nothing is not an error: DEL may come for an ADD that never happened.
func (s *ipamStore) Release(containerID, ifname string) error {
	if _, err := os.Stat(s.dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	records, err := s.records()
	if err != nil {
		return err
	}
	var errs []error
	for ip, r := range records {
		if r.containerID != containerID || r.ifname != ifname {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, ip.String())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("ipam: release %s: %w", ip, err))
		}
	}
	return errors.Join(errs...)
}

func (s *ipamStore) lock() (unlock func(), err error) {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(s.dir, ipamLockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ipam: lock %s: %w", f.Name(), err)
	}
	// Closing the file drops the flock.
	return func() { f.Close() }, nil
}

type ipamRecord struct{ containerID, ifname string }

// records reads the allocation files; other files (the lock, the hint) are
// skipped because their names are not addresses.
func (s *ipamStore) records() (map[netip.Addr]ipamRecord, error) {
	out := map[netip.Addr]ipamRecord{}
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	for _, e := range entries {
		ip, err := netip.ParseAddr(e.Name())
		if err != nil || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ipam: %w", err)
		}
		id, ifname, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		out[ip] = ipamRecord{containerID: strings.TrimSpace(id), ifname: strings.TrimSpace(ifname)}
	}
	return out, nil
}

func (s *ipamStore) reserve(ip netip.Addr, containerID, ifname string) error {
	path := filepath.Join(s.dir, ip.String())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("ipam: reserve %s: %w", ip, err)
	}
	_, err = f.WriteString(containerID + "\n" + ifname)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("ipam: reserve %s: %w", ip, err)
	}
	return nil
}

// usable says why ip cannot be given to a pod, if it cannot.
func (s *ipamStore) usable(ip netip.Addr) error {
	for _, p := range s.cidrs {
		if !p.Contains(ip) {
			continue
		}
		switch {
		case ip == p.Addr() && ip.Is6():
			return fmt.Errorf("it is the subnet-router anycast address of %s", p)
		case ip == p.Addr():
			return fmt.Errorf("it is the network address of %s", p)
		case ip.Is4() && ip == broadcast(p):
			return fmt.Errorf("it is the broadcast address of %s", p)
		case ip == s.gateway:
			return errors.New("it is the gateway")
		}
		return nil
	}
	return fmt.Errorf("it is outside podCIDRs %s", s.cidrList(s.cidrs))
}

// family returns the pod CIDRs of one family.
func (s *ipamStore) family(v6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s.cidrs {
		if p.Addr().Is6() == v6 {
			out = append(out, p)
		}
	}
	return out
}

func countFamily(records map[netip.Addr]ipamRecord, v6 bool) int {
	n := 0
	for ip := range records {
		if ip.Is6() == v6 {
			n++
		}
	}
	return n
}

func readAddr(path string) netip.Addr {
	b, err := os.ReadFile(path)
	if err != nil {
		return netip.Addr{}
	}
	ip, _ := netip.ParseAddr(strings.TrimSpace(string(b)))
	return ip
}

func (s *ipamStore) cidrList(cidrs []netip.Prefix) string {
	names := make([]string, len(cidrs))
	for i, p := range cidrs {
		names[i] = p.String()
	}
	return strings.Join(names, ", ")
}

// broadcast returns the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
