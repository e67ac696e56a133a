package datapath

import (
	"fmt"
	"hash/fnv"
	"net/netip"
)

// maglevPrimes are the table sizes a service may have: primes, so that every
// skip is coprime with the size and each backend's permutation visits every
// entry. A table of at least 100 times the backends keeps the share each
// backend gets within about 1% of the others, and limits how many flows move
// when a backend goes (Maglev, Eisenbud et al., NSDI 2016).
var maglevPrimes = []uint32{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071}

// MaglevMaxTable is the largest Maglev table a service can have.
const MaglevMaxTable = 131071

// maglevSize is the table size for n backends: the given size, checked, or
// the smallest listed prime of at least 100n (the largest for services of
// more than 1310 backends).
func maglevSize(given uint32, n int) (uint32, error) {
	if given != 0 {
		for _, p := range maglevPrimes {
			if p == given {
				if int(given) < n {
					return 0, fmt.Errorf("maglev table size %d is smaller than the %d backends", given, n)
				}
				return given, nil
			}
		}
		return 0, fmt.Errorf("maglev table size %d: want one of %v", given, maglevPrimes)
	}
	for _, p := range maglevPrimes {
		if uint64(p) >= 100*uint64(n) {
			return p, nil
		}
	}
	return MaglevMaxTable, nil
}

// maglevHash hashes a backend with a seed; the two seeds give its offset
// and skip. FNV-1a: stable across restarts and agents, so every node builds
// the same table for the same backends.
func maglevHash(b netip.AddrPort, seed byte) uint64 {
	h := fnv.New64a()
	h.Write([]byte{seed})
	a := b.Addr().As16()
	h.Write(a[:])
	h.Write([]byte{byte(b.Port() >> 8), byte(b.Port())})
	return h.Sum64()
}

// maglevTable fills a table of size m (prime) with indexes into backends:
// each backend in turn takes the next entry of its own permutation that is
// still free, until all are taken. A backend's permutation depends only on
// the backend, so removing one backend moves its entries and few others.
func maglevTable(backends []netip.AddrPort, m uint32) []uint32 {
	n := len(backends)
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	for i, b := range backends {
		offset[i] = maglevHash(b, 0) % uint64(m)
		skip[i] = maglevHash(b, 1)%uint64(m-1) + 1
	}
	table := make([]uint32, m)
	taken := make([]bool, m)
	filled := uint32(0)
	for filled < m {
		for i := range n {
			c := (offset[i] + next[i]*skip[i]) % uint64(m)
			for taken[c] {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % uint64(m)
			}
			table[c] = uint32(i)
			taken[c] = true
			next[i]++
			filled++
			if filled == m {
				break
			}
		}
	}
	return table
}
