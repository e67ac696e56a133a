package datapath

import (
	"encoding/binary"
	"net/netip"
)

// The C side stores an address as four 32-bit words holding the bytes in
// network order (IPv4 in the first word), which in Go's little-endian view of
// the struct means each word is the native-endian reading of 4 address bytes.
func addrWords(a netip.Addr) (w [4]uint32, family uint8) {
	if a.Is4() || a.Is4In6() {
		b := a.Unmap().As4()
		w[0] = binary.NativeEndian.Uint32(b[:])
		return w, 4
	}
	b := a.As16()
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(b[i*4:])
	}
	return w, 6
}

func wordsAddr(w [4]uint32, family uint8) netip.Addr {
	var b [16]byte
	for i := range w {
		binary.NativeEndian.PutUint32(b[i*4:], w[i])
	}
	if family == 4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	if family == 6 {
		return netip.AddrFrom16(b)
	}
	return netip.Addr{}
}
