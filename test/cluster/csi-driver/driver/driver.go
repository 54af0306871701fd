// Package driver implements a small CSI driver that stores volumes and
// snapshots as plain directories under a data dir. It is test
// infrastructure for Snapback: it plays a storage vendor's role for the
// real csi-provisioner / csi-snapshotter sidecars and kubelet.
package driver

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

const (
	// DefaultName is the default CSI driver name.
	DefaultName = "csi.snapback.test"
	// DefaultTopologyKey is the default topology segment key.
	DefaultTopologyKey = "topology.csi.snapback.test/node"
	// Version is reported by GetPluginInfo.
	Version = "v0.1.0"

	gib = int64(1) << 30
	mib = int64(1) << 20
)

// Config configures a Driver.
type Config struct {
	Name            string
	NodeID          string
	DataDir         string
	CapacityBytes   int64
	TopologyKey     string
	Endpoint        string // unix:///abs/path/csi.sock (or an absolute path)
	RegistrationDir string // optional kubelet plugins_registry dir
	Logger          *log.Logger
}

// Driver serves the CSI Identity, Controller and Node services.
type Driver struct {
	csi.UnimplementedIdentityServer
	csi.UnimplementedControllerServer
	csi.UnimplementedNodeServer

	cfg   Config
	store *store
	log   *log.Logger

	// mu serialises every mutating operation. Simplest correct choice:
	// the sidecars retry, and operations are short.
	mu sync.Mutex

	socketPath string
	regPath    string
	server     *grpc.Server
	regServer  *grpc.Server
	wg         sync.WaitGroup
}

// New validates cfg and prepares the data dir.
func New(cfg Config) (*Driver, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.TopologyKey == "" {
		cfg.TopologyKey = DefaultTopologyKey
	}
	if cfg.NodeID == "" {
		return nil, errors.New("node id is required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("data dir is required")
	}
	if cfg.CapacityBytes <= 0 {
		return nil, errors.New("capacity must be positive")
	}
	if cfg.Logger == nil {
		cfg.Logger = log.New(os.Stderr, "", log.LstdFlags|log.Lmicroseconds)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = dataDir
	socketPath, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	d := &Driver{cfg: cfg, store: &store{root: dataDir}, log: cfg.Logger, socketPath: socketPath}
	if err := d.store.init(); err != nil {
		return nil, fmt.Errorf("prepare data dir %s: %w", dataDir, err)
	}
	return d, nil
}

func parseEndpoint(ep string) (string, error) {
	p := ep
	switch {
	case strings.HasPrefix(ep, "unix://"):
		p = strings.TrimPrefix(ep, "unix://")
	case strings.HasPrefix(ep, "unix:"):
		p = strings.TrimPrefix(ep, "unix:")
	}
	if p == "" || !filepath.IsAbs(p) {
		return "", fmt.Errorf("endpoint %q: want unix:///absolute/path/csi.sock", ep)
	}
	return filepath.Clean(p), nil
}

// SocketPath returns the CSI endpoint socket path.
func (d *Driver) SocketPath() string { return d.socketPath }

func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return net.Listen("unix", path)
}

// Start listens on the endpoint (and the registration socket when
// configured) and serves in the background.
func (d *Driver) Start() error {
	lis, err := listenUnix(d.socketPath)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", d.socketPath, err)
	}
	d.server = grpc.NewServer(grpc.UnaryInterceptor(d.logCall))
	csi.RegisterIdentityServer(d.server, d)
	csi.RegisterControllerServer(d.server, d)
	csi.RegisterNodeServer(d.server, d)
	d.serve(d.server, lis)
	d.log.Printf("driver %s %s serving on %s (node %s, data dir %s, capacity %d bytes)",
		d.cfg.Name, Version, d.socketPath, d.cfg.NodeID, d.cfg.DataDir, d.cfg.CapacityBytes)

	if d.cfg.RegistrationDir != "" {
		d.regPath = filepath.Join(d.cfg.RegistrationDir, d.cfg.Name+"-reg.sock")
		rlis, err := listenUnix(d.regPath)
		if err != nil {
			d.Stop()
			return fmt.Errorf("listen on %s: %w", d.regPath, err)
		}
		d.regServer = grpc.NewServer(grpc.UnaryInterceptor(d.logCall))
		registerRegistration(d.regServer, d)
		d.serve(d.regServer, rlis)
		d.log.Printf("kubelet plugin registration serving on %s", d.regPath)
	}
	return nil
}

func (d *Driver) serve(s *grpc.Server, lis net.Listener) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := s.Serve(lis); err != nil {
			d.log.Printf("grpc server on %s: %v", lis.Addr(), err)
		}
	}()
}

// Stop stops serving gracefully (bounded) and removes the sockets.
func (d *Driver) Stop() {
	for _, s := range []*grpc.Server{d.regServer, d.server} {
		if s == nil {
			continue
		}
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			s.Stop()
		}
	}
	d.wg.Wait()
	for _, p := range []string{d.regPath, d.socketPath} {
		if p != "" {
			_ = os.Remove(p)
		}
	}
	d.log.Printf("driver stopped")
}

// logCall logs one line per gRPC call.
func (d *Driver) logCall(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	method := info.FullMethod
	if i := strings.LastIndex(method, "/"); i >= 0 {
		method = method[i+1:]
	}
	st, _ := status.FromError(err)
	line := fmt.Sprintf("%s %s -> %s (%s)", method, requestFields(req), st.Code(), time.Since(start).Round(time.Microsecond))
	if err != nil {
		line += ": " + st.Message()
	}
	d.log.Print(line)
	return resp, err
}

func requestFields(req any) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	switch r := req.(type) {
	case *csi.CreateVolumeRequest:
		add("name", r.GetName())
		add("required", fmt.Sprint(r.GetCapacityRange().GetRequiredBytes()))
		if s := r.GetVolumeContentSource(); s != nil {
			add("snapshot", s.GetSnapshot().GetSnapshotId())
			add("sourceVolume", s.GetVolume().GetVolumeId())
		}
		if len(r.GetParameters()) > 0 {
			add("params", fmt.Sprint(r.GetParameters()))
		}
	case *csi.DeleteVolumeRequest:
		add("volume", r.GetVolumeId())
	case *csi.CreateSnapshotRequest:
		add("name", r.GetName())
		add("sourceVolume", r.GetSourceVolumeId())
		if len(r.GetParameters()) > 0 {
			add("params", fmt.Sprint(r.GetParameters()))
		}
	case *csi.DeleteSnapshotRequest:
		add("snapshot", r.GetSnapshotId())
	case *csi.ListSnapshotsRequest:
		add("snapshot", r.GetSnapshotId())
		add("sourceVolume", r.GetSourceVolumeId())
		add("token", r.GetStartingToken())
	case *csi.ListVolumesRequest:
		add("token", r.GetStartingToken())
	case *csi.ValidateVolumeCapabilitiesRequest:
		add("volume", r.GetVolumeId())
	case *csi.GetCapacityRequest:
		if t := r.GetAccessibleTopology(); t != nil {
			add("topology", fmt.Sprint(t.GetSegments()))
		}
	case *csi.NodePublishVolumeRequest:
		add("volume", r.GetVolumeId())
		add("target", r.GetTargetPath())
		add("readonly", fmt.Sprint(r.GetReadonly()))
	case *csi.NodeUnpublishVolumeRequest:
		add("volume", r.GetVolumeId())
		add("target", r.GetTargetPath())
	case *csi.NodeGetVolumeStatsRequest:
		add("volume", r.GetVolumeId())
		add("path", r.GetVolumePath())
	}
	return strings.Join(parts, " ")
}
