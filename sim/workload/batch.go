package workload

import "sync"

// ConnectAll runs every request at once in this process and returns their
// results in order. A probe runner that reaches a pod only through the API
// (exec, `kestrel sim connect --batch`) pays one process start for a whole
// row of a reachability matrix instead of one per cell; a dropped probe costs
// its timeout once, not once per cell.
func ConnectAll(reqs []ConnectRequest) []ConnectResult {
	out := make([]ConnectResult, len(reqs))
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = Connect(reqs[i])
		}()
	}
	wg.Wait()
	return out
}
