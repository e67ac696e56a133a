package cni

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ipamStore hands out pod addresses, host-local style: one file per
// allocated address in dir, named by the address and holding
// "containerID\nifname". A file is created with O_EXCL under an flock on
// dir/lock, so concurrent ADDs on one node (the kubelet runs them in
// parallel) never hand out one address twice, and the state survives the
// plugin process, which lives for one call only.
type ipamStore struct {
	dir     string
	cidrs   []netip.Prefix
	gateway netip.Addr
}

const (
	ipamLockFile = "lock"
	// ipamLastFile remembers the last address handed out, so allocation goes
	// round the range instead of reusing the address a pod just gave back:
	// the agent and peers may still hold state (ipcache, conntrack) for it.
	ipamLastFile = "last_reserved_ip"
)

func newIPAMStore(c *Config) *ipamStore {
	return &ipamStore{dir: c.IPAMDir, cidrs: c.PodCIDRs, gateway: c.Gateway}
}

// errAddressTaken is returned when a requested address belongs to another
// container.
var errAddressTaken = errors.New("address taken")

// Allocate returns the address for (containerID, ifname). A container that
// already has one gets it again, so a retried ADD is harmless. want, if
// valid, is the address the pod asked for (KESTREL_IP).
func (s *ipamStore) Allocate(containerID, ifname string, want netip.Addr) (netip.Addr, error) {
	unlock, err := s.lock()
	if err != nil {
		return netip.Addr{}, err
	}
	defer unlock()

	records, err := s.records()
	if err != nil {
		return netip.Addr{}, err
	}
	for ip, r := range records {
		if r.containerID != containerID || r.ifname != ifname {
			continue
		}
		if want.IsValid() && want != ip {
			return netip.Addr{}, fmt.Errorf("ipam: container %s already holds %s, cannot switch to requested KESTREL_IP %s", containerID, ip, want)
		}
		return ip, nil
	}

	if want.IsValid() {
		if err := s.usable(want); err != nil {
			return netip.Addr{}, fmt.Errorf("ipam: requested KESTREL_IP %s: %w", want, err)
		}
		if r, ok := records[want]; ok {
			return netip.Addr{}, fmt.Errorf("ipam: requested KESTREL_IP %s is taken by container %s: %w", want, r.containerID, errAddressTaken)
		}
		if err := s.reserve(want, containerID, ifname); err != nil {
			return netip.Addr{}, err
		}
		return want, nil
	}

	last := s.last()
	for _, ip := range s.candidates(last) {
		if _, ok := records[ip]; ok {
			continue
		}
		err := s.reserve(ip, containerID, ifname)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return netip.Addr{}, err
		}
		// Losing the hint only costs the round-robin order.
		_ = os.WriteFile(filepath.Join(s.dir, ipamLastFile), []byte(ip.String()), 0o644)
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("ipam: no free address left in podCIDRs %s (%d in use in %s)", s.cidrList(), len(records), s.dir)
}

// Lookup returns the address recorded for (containerID, ifname).
func (s *ipamStore) Lookup(containerID, ifname string) (netip.Addr, bool, error) {
	records, err := s.records()
	if err != nil {
		return netip.Addr{}, false, err
	}
	for ip, r := range records {
		if r.containerID == containerID && r.ifname == ifname {
			return ip, true, nil
		}
	}
	return netip.Addr{}, false, nil
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
		switch ip {
		case p.Addr():
			return fmt.Errorf("it is the network address of %s", p)
		case broadcast(p):
			return fmt.Errorf("it is the broadcast address of %s", p)
		case s.gateway:
			return errors.New("it is the gateway")
		}
		return nil
	}
	return fmt.Errorf("it is outside podCIDRs %s", s.cidrList())
}

// candidates lists every usable address, starting after last.
func (s *ipamStore) candidates(last netip.Addr) []netip.Addr {
	var all []netip.Addr
	start := 0
	for _, p := range s.cidrs {
		for ip := p.Addr().Next(); ip.IsValid() && ip != broadcast(p); ip = ip.Next() {
			if ip == s.gateway {
				continue
			}
			all = append(all, ip)
			if ip == last {
				start = len(all)
			}
		}
	}
	return append(all[start:], all[:start]...)
}

func (s *ipamStore) last() netip.Addr {
	b, err := os.ReadFile(filepath.Join(s.dir, ipamLastFile))
	if err != nil {
		return netip.Addr{}
	}
	ip, _ := netip.ParseAddr(strings.TrimSpace(string(b)))
	return ip
}

func (s *ipamStore) cidrList() string {
	names := make([]string, len(s.cidrs))
	for i, p := range s.cidrs {
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
