package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var supportedAccessModes = map[csi.VolumeCapability_AccessMode_Mode]bool{
	csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER:        true,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY:   true,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER: true,
	csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:  true,
}

// checkCapability returns a human-readable reason why cap is unsupported,
// or "" when it is supported.
func checkCapability(c *csi.VolumeCapability) string {
	if c == nil {
		return "volume capability is empty"
	}
	if c.GetBlock() != nil {
		return "block access type is not supported (this driver provides filesystem volumes only; use the mount access type)"
	}
	if c.GetMount() == nil {
		return "access type must be mount"
	}
	mode := c.GetAccessMode().GetMode()
	if c.GetAccessMode() == nil || mode == csi.VolumeCapability_AccessMode_UNKNOWN {
		return "access mode is required"
	}
	if !supportedAccessModes[mode] {
		return fmt.Sprintf("access mode %s is not supported (single-node modes only)", mode)
	}
	return ""
}

func validateCapabilities(caps []*csi.VolumeCapability) error {
	if len(caps) == 0 {
		return status.Error(codes.InvalidArgument, "volume capabilities are required")
	}
	for _, c := range caps {
		if reason := checkCapability(c); reason != "" {
			return status.Error(codes.InvalidArgument, reason)
		}
	}
	return nil
}

func (d *Driver) nodeSegment() map[string]string {
	return map[string]string{d.cfg.TopologyKey: d.cfg.NodeID}
}

func (d *Driver) isThisNode(t *csi.Topology) bool {
	v, ok := t.GetSegments()[d.cfg.TopologyKey]
	return ok && v == d.cfg.NodeID
}

// checkTopology verifies this node can satisfy the requirements: it looks
// at the preferred topologies first, then the requisite ones. When a
// requisite list is given and excludes this node, the volume cannot be
// provisioned here.
func (d *Driver) checkTopology(req *csi.TopologyRequirement) error {
	if req == nil {
		return nil
	}
	for _, t := range req.GetPreferred() {
		if d.isThisNode(t) {
			return nil
		}
	}
	for _, t := range req.GetRequisite() {
		if d.isThisNode(t) {
			return nil
		}
	}
	if len(req.GetRequisite()) == 0 {
		return nil // only preferences given; they are not binding
	}
	return status.Errorf(codes.ResourceExhausted, "accessibility requirements exclude this driver's only segment {%s: %s}", d.cfg.TopologyKey, d.cfg.NodeID)
}

func (d *Driver) csiVolume(m *VolumeMeta) *csi.Volume {
	v := &csi.Volume{
		VolumeId:      m.ID,
		CapacityBytes: m.CapacityBytes,
	}
	if len(m.AccessibleTopology) > 0 {
		v.AccessibleTopology = []*csi.Topology{{Segments: m.AccessibleTopology}}
	}
	if cs := m.ContentSource; cs != nil {
		switch cs.Type {
		case "snapshot":
			v.ContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
				Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: cs.ID}}}
		case "volume":
			v.ContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
				Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: cs.ID}}}
		}
	}
	return v
}

func csiSnapshot(m *SnapshotMeta) *csi.Snapshot {
	return &csi.Snapshot{
		SnapshotId:     m.ID,
		SourceVolumeId: m.SourceVolumeID,
		SizeBytes:      m.SizeBytes,
		CreationTime:   timestamppb.New(m.CreatedAt),
		ReadyToUse:     true,
	}
}

func roundUp(n, unit int64) int64 {
	return (n + unit - 1) / unit * unit
}

func requestedSource(req *csi.CreateVolumeRequest) (*ContentSource, error) {
	src := req.GetVolumeContentSource()
	if src == nil {
		return nil, nil
	}
	switch {
	case src.GetSnapshot() != nil:
		id := src.GetSnapshot().GetSnapshotId()
		if id == "" {
			return nil, status.Error(codes.InvalidArgument, "volume content source snapshot id is empty")
		}
		return &ContentSource{Type: "snapshot", ID: id}, nil
	case src.GetVolume() != nil:
		id := src.GetVolume().GetVolumeId()
		if id == "" {
			return nil, status.Error(codes.InvalidArgument, "volume content source volume id is empty")
		}
		return &ContentSource{Type: "volume", ID: id}, nil
	}
	return nil, status.Error(codes.InvalidArgument, "unsupported volume content source type")
}

func internal(format string, args ...any) error {
	return status.Errorf(codes.Internal, format, args...)
}

// CreateVolume implements csi.ControllerServer.
func (d *Driver) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	name := req.GetName()
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if err := validateCapabilities(req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	spec, err := parseFaultParams(opCreateVolume, req.GetParameters())
	if err != nil {
		return nil, err
	}
	required := req.GetCapacityRange().GetRequiredBytes()
	limit := req.GetCapacityRange().GetLimitBytes()
	if required < 0 || limit < 0 {
		return nil, status.Error(codes.InvalidArgument, "capacity range must not be negative")
	}
	if limit > 0 && limit < required {
		return nil, status.Errorf(codes.InvalidArgument, "limit_bytes %d is less than required_bytes %d", limit, required)
	}
	source, err := requestedSource(req)
	if err != nil {
		return nil, err
	}
	unlock, err := d.lockAfterFaults(ctx, opCreateVolume, name, spec)
	if err != nil {
		return nil, err
	}
	defer unlock()

	id := volumeIDForName(name)
	existing, err := d.store.getVolume(id)
	if err != nil {
		return nil, internal("read volume %s: %v", id, err)
	}
	if existing != nil {
		if existing.CapacityBytes < required || (limit > 0 && existing.CapacityBytes > limit) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q exists with capacity %d, incompatible with required %d / limit %d", name, existing.CapacityBytes, required, limit)
		}
		if !sameSource(existing.ContentSource, source) {
			return nil, status.Errorf(codes.AlreadyExists, "volume %q exists with a different content source", name)
		}
		return &csi.CreateVolumeResponse{Volume: d.csiVolume(existing)}, nil
	}

	if err := d.checkTopology(req.GetAccessibilityRequirements()); err != nil {
		return nil, err
	}

	var srcDir string
	var srcSize int64
	if source != nil {
		switch source.Type {
		case "snapshot":
			snap, err := d.store.getSnapshot(source.ID)
			if err != nil {
				return nil, internal("read snapshot %s: %v", source.ID, err)
			}
			if snap == nil {
				return nil, status.Errorf(codes.NotFound, "source snapshot %q not found", source.ID)
			}
			srcDir, srcSize = d.store.snapshotDir(snap.ID), snap.SizeBytes
		case "volume":
			vol, err := d.store.getVolume(source.ID)
			if err != nil {
				return nil, internal("read volume %s: %v", source.ID, err)
			}
			if vol == nil {
				return nil, status.Errorf(codes.NotFound, "source volume %q not found", source.ID)
			}
			srcDir, srcSize = d.store.volumeDir(vol.ID), vol.CapacityBytes
		}
	}

	base := required
	if base == 0 {
		base = gib
		if srcSize > 0 {
			base = srcSize
		}
	}
	capacity := roundUp(base, mib)
	if limit > 0 && capacity > limit {
		capacity = limit
	}
	if srcSize > capacity {
		return nil, status.Errorf(codes.OutOfRange, "requested capacity %d is smaller than the source's size %d", capacity, srcSize)
	}
	if capacity > d.cfg.CapacityBytes {
		return nil, status.Errorf(codes.OutOfRange, "requested capacity %d exceeds the driver's total capacity %d", capacity, d.cfg.CapacityBytes)
	}
	allocated, err := d.store.allocatedBytes()
	if err != nil {
		return nil, internal("compute allocated capacity: %v", err)
	}
	if allocated+capacity > d.cfg.CapacityBytes {
		return nil, status.Errorf(codes.ResourceExhausted, "insufficient capacity: %d bytes requested, %d of %d available", capacity, d.cfg.CapacityBytes-allocated, d.cfg.CapacityBytes)
	}

	if err := d.materialise(ctx, "vol", srcDir, d.store.volumeDir(id)); err != nil {
		return nil, err
	}
	meta := &VolumeMeta{
		ID:                 id,
		Name:               name,
		CapacityBytes:      capacity,
		ContentSource:      source,
		AccessibleTopology: d.nodeSegment(),
		CreatedAt:          time.Now().UTC(),
	}
	if err := writeJSONAtomic(d.store.volumeMeta(id), meta); err != nil {
		_ = os.RemoveAll(d.store.volumeDir(id))
		return nil, internal("write volume metadata: %v", err)
	}
	return &csi.CreateVolumeResponse{Volume: d.csiVolume(meta)}, nil
}

func sameSource(a, b *ContentSource) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// materialise builds dst: a copy of srcDir, or an empty directory when
// srcDir is "". The content is built under tmp/ and renamed into place.
func (d *Driver) materialise(ctx context.Context, kind, srcDir, dst string) error {
	tmp, err := d.store.tempDir(kind)
	if err != nil {
		return internal("create temp dir: %v", err)
	}
	defer os.RemoveAll(tmp)
	content := filepath.Join(tmp, "content")
	if srcDir == "" {
		if err := os.Mkdir(content, 0o755); err != nil {
			return internal("create volume dir: %v", err)
		}
		if err := os.Chmod(content, 0o755); err != nil {
			return internal("chmod volume dir: %v", err)
		}
	} else if err := copyTree(ctx, srcDir, content); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return status.FromContextError(ctxErr).Err()
		}
		return internal("copy %s: %v", srcDir, err)
	}
	// A directory without metadata is a leftover from a crash; replace it.
	if err := os.RemoveAll(dst); err != nil {
		return internal("remove leftover %s: %v", dst, err)
	}
	if err := os.Rename(content, dst); err != nil {
		return internal("move %s into place: %v", dst, err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return internal("sync: %v", err)
	}
	return nil
}

// DeleteVolume implements csi.ControllerServer.
func (d *Driver) DeleteVolume(_ context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id is required")
	}
	if !validVolumeID(id) {
		return &csi.DeleteVolumeResponse{}, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := removeEntry(d.store.volumeMeta(id), d.store.volumeDir(id)); err != nil {
		return nil, internal("delete volume %s: %v", id, err)
	}
	if err := os.Remove(d.store.publications(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, internal("delete publications of %s: %v", id, err)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// ValidateVolumeCapabilities implements csi.ControllerServer.
func (d *Driver) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "volume id is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume capabilities are required")
	}
	vol, err := d.store.getVolume(req.GetVolumeId())
	if err != nil {
		return nil, internal("read volume: %v", err)
	}
	if vol == nil {
		return nil, status.Errorf(codes.NotFound, "volume %q not found", req.GetVolumeId())
	}
	for _, c := range req.GetVolumeCapabilities() {
		if reason := checkCapability(c); reason != "" {
			return &csi.ValidateVolumeCapabilitiesResponse{Message: reason}, nil
		}
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// paginate returns the [start, end) window for a listing of n items.
func paginate(n int, token string, maxEntries int32) (start, end int, next string, err error) {
	if maxEntries < 0 {
		return 0, 0, "", status.Error(codes.InvalidArgument, "max_entries must not be negative")
	}
	if token != "" {
		start, err = strconv.Atoi(token)
		if err != nil || start < 0 || start > n {
			return 0, 0, "", status.Errorf(codes.Aborted, "invalid starting token %q", token)
		}
	}
	end = n
	if maxEntries > 0 && start+int(maxEntries) < n {
		end = start + int(maxEntries)
		next = strconv.Itoa(end)
	}
	return start, end, next, nil
}

// ListVolumes implements csi.ControllerServer.
func (d *Driver) ListVolumes(_ context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	vols, err := d.store.listVolumes()
	if err != nil {
		return nil, internal("list volumes: %v", err)
	}
	start, end, next, err := paginate(len(vols), req.GetStartingToken(), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	resp := &csi.ListVolumesResponse{NextToken: next}
	for _, v := range vols[start:end] {
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{Volume: d.csiVolume(v)})
	}
	return resp, nil
}

// GetCapacity implements csi.ControllerServer.
func (d *Driver) GetCapacity(_ context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	if t := req.GetAccessibleTopology(); t != nil && !d.isThisNode(t) {
		return &csi.GetCapacityResponse{}, nil
	}
	for _, c := range req.GetVolumeCapabilities() {
		if checkCapability(c) != "" {
			return &csi.GetCapacityResponse{}, nil
		}
	}
	if _, err := parseFaultParams(opCreateVolume, req.GetParameters()); err != nil {
		return nil, err
	}
	allocated, err := d.store.allocatedBytes()
	if err != nil {
		return nil, internal("compute allocated capacity: %v", err)
	}
	avail := max(d.cfg.CapacityBytes-allocated, 0)
	return &csi.GetCapacityResponse{
		AvailableCapacity: avail,
		MaximumVolumeSize: wrapperspb.Int64(avail),
	}, nil
}

// ControllerGetCapabilities implements csi.ControllerServer.
func (d *Driver) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, t := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
		csi.ControllerServiceCapability_RPC_GET_CAPACITY,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
		csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	} {
		caps = append(caps, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
			Rpc: &csi.ControllerServiceCapability_RPC{Type: t}}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// CreateSnapshot implements csi.ControllerServer. The snapshot is a full
// copy made synchronously, so it is ready to use when the call returns.
func (d *Driver) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	name, srcID := req.GetName(), req.GetSourceVolumeId()
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if srcID == "" {
		return nil, status.Error(codes.InvalidArgument, "source volume id is required")
	}
	spec, err := parseFaultParams(opCreateSnapshot, req.GetParameters())
	if err != nil {
		return nil, err
	}
	unlock, err := d.lockAfterFaults(ctx, opCreateSnapshot, name, spec)
	if err != nil {
		return nil, err
	}
	defer unlock()
	id := snapshotIDForName(name)
	existing, err := d.store.getSnapshot(id)
	if err != nil {
		return nil, internal("read snapshot %s: %v", id, err)
	}
	if existing != nil {
		if existing.SourceVolumeID != srcID {
			return nil, status.Errorf(codes.AlreadyExists, "snapshot %q exists with source volume %q, not %q", name, existing.SourceVolumeID, srcID)
		}
		return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(existing)}, nil
	}
	vol, err := d.store.getVolume(srcID)
	if err != nil {
		return nil, internal("read volume %s: %v", srcID, err)
	}
	if vol == nil {
		return nil, status.Errorf(codes.NotFound, "source volume %q not found", srcID)
	}
	if err := d.materialise(ctx, "snap", d.store.volumeDir(vol.ID), d.store.snapshotDir(id)); err != nil {
		return nil, err
	}
	meta := &SnapshotMeta{
		ID:             id,
		Name:           name,
		SourceVolumeID: vol.ID,
		SizeBytes:      vol.CapacityBytes,
		CreatedAt:      time.Now().UTC(),
	}
	if err := writeJSONAtomic(d.store.snapshotMeta(id), meta); err != nil {
		_ = os.RemoveAll(d.store.snapshotDir(id))
		return nil, internal("write snapshot metadata: %v", err)
	}
	return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(meta)}, nil
}

// DeleteSnapshot implements csi.ControllerServer.
func (d *Driver) DeleteSnapshot(_ context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot id is required")
	}
	if !validSnapshotID(id) {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := removeEntry(d.store.snapshotMeta(id), d.store.snapshotDir(id)); err != nil {
		return nil, internal("delete snapshot %s: %v", id, err)
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// ListSnapshots implements csi.ControllerServer.
func (d *Driver) ListSnapshots(_ context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	var snaps []*SnapshotMeta
	if id := req.GetSnapshotId(); id != "" {
		s, err := d.store.getSnapshot(id)
		if err != nil {
			return nil, internal("read snapshot: %v", err)
		}
		if s != nil {
			snaps = append(snaps, s)
		}
	} else {
		all, err := d.store.listSnapshots()
		if err != nil {
			return nil, internal("list snapshots: %v", err)
		}
		snaps = all
	}
	if src := req.GetSourceVolumeId(); src != "" {
		var filtered []*SnapshotMeta
		for _, s := range snaps {
			if s.SourceVolumeID == src {
				filtered = append(filtered, s)
			}
		}
		snaps = filtered
	}
	start, end, next, err := paginate(len(snaps), req.GetStartingToken(), req.GetMaxEntries())
	if err != nil {
		return nil, err
	}
	resp := &csi.ListSnapshotsResponse{NextToken: next}
	for _, s := range snaps[start:end] {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: csiSnapshot(s)})
	}
	return resp, nil
}
