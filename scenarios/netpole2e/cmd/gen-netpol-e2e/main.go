// Command gen-netpol-e2e writes the netpol-e2e scenario suite from the corpus.
package main

import (
	"flag"
	"log"
	"os"
	"path/filepath"

	"github.com/kestrelnet/kestrel/scenarios/netpole2e"
)

func main() {
	corpus := flag.String("corpus", "testdata/netpol-e2e-cases.yaml", "the e2e cases as data")
	out := flag.String("out", "../library/netpol-e2e", "directory to (re)write")
	flag.Parse()
	data, err := os.ReadFile(*corpus)
	if err != nil {
		log.Fatal(err)
	}
	files, err := netpole2e.Generate(data)
	if err != nil {
		log.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(*out, "*.yaml"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			log.Fatal(err)
		}
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(*out, name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
