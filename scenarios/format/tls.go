package format

// validateTLSProbe checks a probe's tls request: it goes with exchange:
// request, names a server, and carries no gRPC (an http request inside is
// fine).
func validateTLSProbe(p *Probe, bad func(string, ...any)) {
	if p.TLS == nil {
		return
	}
	if p.Exchange != "request" {
		bad("tls is given only with exchange: request")
	}
	if p.TLS.ServerName == "" {
		bad("tls needs serverName (the SNI the ClientHello sends)")
	}
	if p.GRPC != nil {
		bad("a tls request carries http inside, not grpc")
	}
}
