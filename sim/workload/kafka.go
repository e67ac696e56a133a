package workload

import (
	"net"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// kafkaCluster closes a kfake cluster as an io.Closer.
type kafkaCluster struct{ c *kfake.Cluster }

func (k kafkaCluster) Close() error { k.c.Close(); return nil }

// startKafka serves a Kafka broker on one port: franz-go's kfake, a real
// implementation of the protocol, with topics created on first use. It is
// one broker whose metadata names 127.0.0.1, so probes send single
// requests on the connection they opened.
func (s *Server) startKafka(i int, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(port)
	var once sync.Once
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(n), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1),
		kfake.ListenFn(func(network, a string) (net.Listener, error) {
			_, p, _ := net.SplitHostPort(a)
			ln, err := net.Listen(network, net.JoinHostPort(host, p))
			if err == nil {
				once.Do(func() { s.addrs[i] = ln.Addr() })
			}
			return ln, err
		}))
	if err != nil {
		return err
	}
	s.closers = append(s.closers, kafkaCluster{c})
	return nil
}
