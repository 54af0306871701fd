package driver

import (
	"io"
	"log"
	"os"
	"path/filepath"
	"testing"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
)

func TestSanity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("csi-sanity needs root (bind mounts)")
	}
	base := t.TempDir()
	sock := filepath.Join(base, "csi.sock")
	logger := log.New(io.Discard, "", 0)
	if os.Getenv("SANITY_VERBOSE") != "" {
		logger = log.New(os.Stderr, "driver: ", log.Lmicroseconds)
	}
	d, err := New(Config{
		NodeID:        "sanity-node",
		DataDir:       filepath.Join(base, "data"),
		CapacityBytes: 100 * gib,
		Endpoint:      "unix://" + sock,
		Logger:        logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)

	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + sock
	cfg.TargetPath = filepath.Join(base, "target")
	cfg.StagingPath = filepath.Join(base, "staging")
	cfg.TestVolumeSize = 64 * mib
	cfg.IdempotentCount = 5
	// Exercise the parameter parser on every create: zero delay, and the
	// sidecars' metadata parameters, which must be accepted.
	cfg.TestVolumeParameters = map[string]string{
		delayPrefix + opCreateVolume:       "0s",
		"csi.storage.k8s.io/pvc/name":      "sanity",
		"csi.storage.k8s.io/pvc/namespace": "default",
	}
	cfg.TestSnapshotParameters = map[string]string{
		delayPrefix + opCreateSnapshot:           "0s",
		"csi.storage.k8s.io/volumesnapshot/name": "sanity",
	}
	sanity.Test(t, cfg)
}
