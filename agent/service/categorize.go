package service

// categorized is kube-proxy's CategorizeEndpoints result for one service port.
type categorized struct {
	// cluster are the endpoints for "Cluster" traffic policy (nil when the
	// port never uses it), local those for "Local" (nil likewise).
	cluster, local []Backend
	// hasAny is true when the service has a usable endpoint anywhere in the
	// cluster, which decides REJECT (none) against DROP (none here).
	hasAny bool
}

// categorize follows kube-proxy's CategorizeEndpoints (pkg/proxy/topology.go):
//   - Cluster endpoints are the ready ones (narrowed by topology hints when
//     they apply); if there are none, every serving-terminating endpoint.
//   - Local endpoints are the local ready ones; if there are none, the local
//     serving-terminating ones. The fallback is decided for each list apart.
//   - A non-serving endpoint is never used.
//
// Topology: when every ready endpoint carries a zone hint and at least one is
// hinted for this node's zone, cluster endpoints are those hinted for it
// (kube-proxy's PreferSameZone mode; the hints are only written when the
// service asks for them). Node hints (PreferSameNode) do not exist in the
// k8s.io/api version this module pins and are not handled.
func categorize(eps []endpoint, usesCluster, usesLocal bool, zone string) categorized {
	var c categorized
	if len(eps) == 0 {
		return c
	}
	if usesCluster {
		byZone := zoneHintsApply(eps, zone)
		for _, e := range eps {
			if e.ready && (!byZone || e.zoneHints[zone]) {
				c.cluster = append(c.cluster, e.backend(false))
			}
		}
		if len(c.cluster) == 0 {
			for _, e := range eps {
				if e.serving && e.terminating {
					c.cluster = append(c.cluster, e.backend(true))
				}
			}
		}
		c.hasAny = len(c.cluster) > 0
	}
	if !usesLocal {
		return c
	}
	var localReady, localTerminating bool
	for _, e := range eps {
		switch {
		case e.ready:
			c.hasAny = true
			localReady = localReady || e.local
		case e.serving && e.terminating:
			c.hasAny = true
			localTerminating = localTerminating || e.local
		}
	}
	for _, e := range eps {
		switch {
		case !e.local:
		case localReady && e.ready:
			c.local = append(c.local, e.backend(false))
		case !localReady && localTerminating && e.serving && e.terminating:
			c.local = append(c.local, e.backend(true))
		}
	}
	return c
}

// zoneHintsApply is kube-proxy's topologyModeFromHints reduced to zones:
// true when there is a ready endpoint, every ready endpoint has a zone hint,
// and one of them is for zone.
func zoneHintsApply(eps []endpoint, zone string) bool {
	anyReady, forZone := false, false
	for _, e := range eps {
		if !e.ready {
			continue
		}
		anyReady = true
		if len(e.zoneHints) == 0 {
			return false
		}
		forZone = forZone || e.zoneHints[zone]
	}
	return anyReady && forZone && zone != ""
}
