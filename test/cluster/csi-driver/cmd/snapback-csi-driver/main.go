// Command snapback-csi-driver is a test CSI driver for the Snapback
// project: volumes and snapshots are directories under --data-dir.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"snapback.local/test-cluster/csi-driver/driver"
)

func main() {
	var (
		endpoint    = flag.String("endpoint", "", "CSI endpoint, unix:///abs/path/csi.sock (required; a stale socket is removed)")
		name        = flag.String("driver-name", driver.DefaultName, "CSI driver name")
		nodeID      = flag.String("node-id", "", "node id (required)")
		dataDir     = flag.String("data-dir", "", "directory holding all volumes, snapshots and state (required)")
		capacity    = flag.String("capacity", "20Gi", "total capacity: bytes or a quantity such as 20Gi, 500Mi, 10G")
		topologyKey = flag.String("topology-key", driver.DefaultTopologyKey, "topology segment key; the node's segment is {key: node-id}")
		regDir      = flag.String("registration-dir", "", "kubelet plugins_registry dir; when set, serve the kubelet plugin registration API there")
	)
	flag.Parse()
	logger := log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	if flag.NArg() > 0 {
		logger.Fatalf("unexpected arguments: %v", flag.Args())
	}
	if *endpoint == "" || *nodeID == "" || *dataDir == "" {
		fmt.Fprintln(os.Stderr, "--endpoint, --node-id and --data-dir are required")
		flag.Usage()
		os.Exit(2)
	}
	capBytes, err := parseQuantity(*capacity)
	if err != nil {
		logger.Fatalf("--capacity: %v", err)
	}
	d, err := driver.New(driver.Config{
		Name:            *name,
		NodeID:          *nodeID,
		DataDir:         *dataDir,
		CapacityBytes:   capBytes,
		TopologyKey:     *topologyKey,
		Endpoint:        *endpoint,
		RegistrationDir: *regDir,
		Logger:          logger,
	})
	if err != nil {
		logger.Fatal(err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if err := d.Start(); err != nil {
		logger.Fatal(err)
	}
	sig := <-sigs
	logger.Printf("received %s, stopping", sig)
	d.Stop()
}

var quantitySuffixes = []struct {
	suffix string
	mult   int64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// parseQuantity parses plain bytes or an integer with a Kubernetes-style
// binary (Ki, Mi, Gi, Ti) or decimal (k, M, G, T) suffix.
func parseQuantity(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, q := range quantitySuffixes {
		if strings.HasSuffix(s, q.suffix) {
			s, mult = strings.TrimSuffix(s, q.suffix), q.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid quantity %q", s)
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("quantity %q overflows", s)
	}
	return n * mult, nil
}
