package service

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Maglev builds a Maglev lookup table (Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI 2016, section 3.4) of length
// m for the named backends: entry i is the index in names of the backend that
// flows hashing to i go to.
//
// Each backend gets a preference list, a permutation of 0..m-1 given by an
// offset and a skip derived from two independent hashes of its name
// (offset = h1 mod m, skip = h2 mod (m-1) + 1, which is coprime to m because
// m is prime). Backends then take turns claiming their next preferred empty
// entry until the table is full, so each gets m/n entries within one, and
// removing a backend mostly moves only the entries it held.
//
// The names must be stable identities of the backends ("10.0.1.5:8080"), not
// their positions; the table depends on them and on their order only for
// ties. m must be a prime at least len(names); the paper and Cilium use
// m much larger than the backend count (DefaultMaglevTableSize is 16381),
// which keeps the imbalance and the disruption small.
func Maglev(names []string, m int) ([]int, error) {
	if m < 2 || !isPrime(m) {
		return nil, fmt.Errorf("maglev table size %d is not a prime", m)
	}
	n := len(names)
	if n == 0 {
		return nil, nil
	}
	if n > m {
		return nil, fmt.Errorf("maglev table size %d is smaller than the %d backends", m, n)
	}
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	seen := make(map[string]bool, n)
	for i, name := range names {
		if seen[name] {
			return nil, fmt.Errorf("maglev backend %q is listed twice", name)
		}
		seen[name] = true
		// One SHA-256 gives two independent 64-bit hashes; it runs once per
		// backend, not per entry, so its cost does not matter.
		sum := sha256.Sum256([]byte(name))
		offset[i] = binary.BigEndian.Uint64(sum[0:8]) % uint64(m)
		skip[i] = binary.BigEndian.Uint64(sum[8:16])%uint64(m-1) + 1
	}
	table := make([]int, m)
	for i := range table {
		table[i] = -1
	}
	next := make([]uint64, n)
	filled := 0
	for {
		for i := 0; i < n; i++ {
			c := (offset[i] + next[i]*skip[i]) % uint64(m)
			for table[c] >= 0 {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % uint64(m)
			}
			table[c] = i
			next[i]++
			filled++
			if filled == m {
				return table, nil
			}
		}
	}
}

func isPrime(m int) bool {
	if m < 2 {
		return false
	}
	for d := 2; d*d <= m; d++ {
		if m%d == 0 {
			return false
		}
	}
	return true
}
