package driver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeGetInfo implements csi.NodeServer.
func (d *Driver) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{
		NodeId:             d.cfg.NodeID,
		AccessibleTopology: &csi.Topology{Segments: d.nodeSegment()},
	}, nil
}

// NodeGetCapabilities implements csi.NodeServer.
func (d *Driver) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	var caps []*csi.NodeServiceCapability
	for _, t := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	} {
		caps = append(caps, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{
			Rpc: &csi.NodeServiceCapability_RPC{Type: t}}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}

// NodePublishVolume bind-mounts the volume directory on the target path.
func (d *Driver) NodePublishVolume(_ context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id is required")
	}
	if target == "" {
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	}
	if req.GetVolumeCapability() == nil {
		return nil, status.Error(codes.InvalidArgument, "volume capability is required")
	}
	if reason := checkCapability(req.GetVolumeCapability()); reason != "" {
		return nil, status.Error(codes.InvalidArgument, reason)
	}
	if !filepath.IsAbs(target) {
		return nil, status.Errorf(codes.InvalidArgument, "target path %q must be absolute", target)
	}
	target = filepath.Clean(target)
	mode := req.GetVolumeCapability().GetAccessMode().GetMode()
	readonly := req.GetReadonly() || mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY

	d.mu.Lock()
	defer d.mu.Unlock()

	vol, err := d.store.getVolume(id)
	if err != nil {
		return nil, internal("read volume: %v", err)
	}
	if vol == nil {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", id)
	}
	pubs, err := d.store.getPublications(id)
	if err != nil {
		return nil, internal("read publications: %v", err)
	}
	mounted, err := isMountPoint(target)
	if err != nil {
		return nil, internal("check mount %s: %v", target, err)
	}
	if p, ok := pubs[target]; ok && mounted {
		if p.Readonly != readonly || p.AccessMode != mode.String() {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q is already published at %s with readonly=%v mode=%s", id, target, p.Readonly, p.AccessMode)
		}
		return &csi.NodePublishVolumeResponse{}, nil
	}
	if mounted {
		return nil, status.Errorf(codes.AlreadyExists, "target path %s is already a mount point (not of volume %q)", target, id)
	}
	for t, p := range pubs {
		if t == target {
			continue
		}
		m, err := isMountPoint(t)
		if err != nil {
			return nil, internal("check mount %s: %v", t, err)
		}
		if !m {
			delete(pubs, t) // stale record
			continue
		}
		if mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER ||
			p.AccessMode == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER.String() {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %q is already published at %s and SINGLE_NODE_SINGLE_WRITER allows only one publication", id, t)
		}
	}

	if err := os.MkdirAll(target, 0o750); err != nil {
		return nil, internal("create target %s: %v", target, err)
	}
	// Record before mounting: a record without a mount is detected as
	// stale, a mount without a record would be mistaken for a foreign one.
	pubs[target] = Publication{Readonly: readonly, AccessMode: mode.String()}
	if err := d.store.putPublications(id, pubs); err != nil {
		return nil, internal("write publications: %v", err)
	}
	if err := bindMount(d.store.volumeDir(id), target, readonly); err != nil {
		delete(pubs, target)
		_ = d.store.putPublications(id, pubs)
		return nil, internal("%v", err)
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

func bindMount(src, target string, readonly bool) error {
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", src, target, err)
	}
	if readonly {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			_ = unix.Unmount(target, 0)
			return fmt.Errorf("remount %s read-only: %w", target, err)
		}
	}
	return nil
}

// NodeUnpublishVolume unmounts the target (if mounted) and removes it.
func (d *Driver) NodeUnpublishVolume(_ context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id is required")
	}
	if target == "" {
		return nil, status.Error(codes.InvalidArgument, "target path is required")
	}
	target = filepath.Clean(target)

	d.mu.Lock()
	defer d.mu.Unlock()

	for range 10 {
		mounted, err := isMountPoint(target)
		if err != nil {
			return nil, internal("check mount %s: %v", target, err)
		}
		if !mounted {
			break
		}
		if err := unix.Unmount(target, 0); err != nil {
			return nil, internal("unmount %s: %v", target, err)
		}
	}
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, internal("remove target %s: %v", target, err)
	}
	if validVolumeID(id) {
		pubs, err := d.store.getPublications(id)
		if err != nil {
			return nil, internal("read publications: %v", err)
		}
		if _, ok := pubs[target]; ok {
			delete(pubs, target)
			if err := d.store.putPublications(id, pubs); err != nil {
				return nil, internal("write publications: %v", err)
			}
		}
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// NodeGetVolumeStats reports the volume's usage (walked) against its
// capacity, and the inode usage.
func (d *Driver) NodeGetVolumeStats(_ context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	id, path := req.GetVolumeId(), req.GetVolumePath()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id is required")
	}
	if path == "" {
		return nil, status.Error(codes.InvalidArgument, "volume path is required")
	}
	vol, err := d.store.getVolume(id)
	if err != nil {
		return nil, internal("read volume: %v", err)
	}
	if vol == nil {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", id)
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, status.Errorf(codes.NotFound, "volume path %s does not exist", path)
		}
		return nil, internal("stat %s: %v", path, err)
	}
	used, inodes, err := diskUsage(d.store.volumeDir(id))
	if err != nil {
		return nil, internal("walk volume %s: %v", id, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(path, &fs); err != nil {
		return nil, internal("statfs %s: %v", path, err)
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: vol.CapacityBytes, Used: used, Available: max(vol.CapacityBytes-used, 0)},
		{Unit: csi.VolumeUsage_INODES, Total: int64(fs.Files), Used: inodes, Available: int64(fs.Ffree)},
	}}, nil
}

// isMountPoint reports whether path is the mount point of an entry in
// /proc/self/mountinfo. (Bind mounts from the same filesystem share the
// device number, so comparing st_dev with the parent does not work.)
func isMountPoint(path string) (bool, error) {
	if resolved, err := filepath.EvalSymlinks(path); err == nil {
		path = resolved
	} else if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		if unescapeMountPath(fields[4]) == path {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountPath decodes the octal escapes (\040 etc.) used in mountinfo.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
