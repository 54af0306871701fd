package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown / bind mounts)")
	}
}

func newTestDriver(t *testing.T, dataDir string, capacity int64) *Driver {
	t.Helper()
	d, err := New(Config{
		NodeID:        "node-a",
		DataDir:       dataDir,
		CapacityBytes: capacity,
		Endpoint:      "unix://" + filepath.Join(t.TempDir(), "csi.sock"),
		Logger:        log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

func volReq(name string, size int64, params map[string]string) *csi.CreateVolumeRequest {
	return &csi.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: size},
		VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)},
		Parameters:         params,
	}
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("got code %s (err %v), want %s", got, err, want)
	}
}

// fileAttrs is what a copy must preserve for one path.
type fileAttrs struct {
	Mode    uint32
	UID     uint32
	GID     uint32
	Mtime   int64
	Content string
	Link    string
}

// snapshotTree records the attributes of every entry under root.
func snapshotTree(t *testing.T, root string) map[string]fileAttrs {
	t.Helper()
	out := map[string]fileAttrs{}
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		a := fileAttrs{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Nano()}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			a.Content = string(b)
		case unix.S_IFLNK:
			a.Link, _ = os.Readlink(p)
		}
		out[rel] = a
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func setMtime(t *testing.T, p string, when time.Time, nofollow bool) {
	t.Helper()
	ts := unix.NsecToTimespec(when.UnixNano())
	flags := 0
	if nofollow {
		flags = unix.AT_SYMLINK_NOFOLLOW
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, flags); err != nil {
		t.Fatal(err)
	}
}

// writePGLikeTree fills dir like a PostgreSQL data directory: owner 101,
// mode 0700, a symlink, a setgid dir, a hard link, a fifo and fixed mtimes.
func writePGLikeTree(t *testing.T, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "base", "1"), 0o700))
	must(os.WriteFile(filepath.Join(dir, "PG_VERSION"), []byte("16\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "base", "1", "1259"), bytes.Repeat([]byte{0xab}, 100000), 0o600))
	must(os.WriteFile(filepath.Join(dir, "postgresql.conf"), []byte("listen_addresses = '*'\n"), 0o644))
	must(os.Symlink("base/1", filepath.Join(dir, "link-rel")))
	must(os.Symlink("/nonexistent/pg_wal", filepath.Join(dir, "pg_wal")))
	must(os.Link(filepath.Join(dir, "PG_VERSION"), filepath.Join(dir, "hardlink")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o640))
	must(os.Mkdir(filepath.Join(dir, "shared"), 0o770))
	must(unix.Chmod(filepath.Join(dir, "shared"), 0o2770))
	must(os.WriteFile(filepath.Join(dir, "owned-by-other"), []byte("x"), 0o640))
	when := time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC)
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		uid, gid := 101, 101
		if filepath.Base(p) == "owned-by-other" {
			uid, gid = 1000, 2000
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
		return nil
	})
	must(err)
	must(unix.Chmod(filepath.Join(dir, "shared"), 0o2770)) // chown cleared setgid
	must(unix.Chmod(dir, 0o700))
	// mtimes last, children before parents.
	var paths []string
	must(filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		fi, err := os.Lstat(paths[i])
		must(err)
		setMtime(t, paths[i], when.Add(time.Duration(i)*time.Second), fi.Mode()&os.ModeSymlink != 0)
	}
}

func TestCopyTreePreservesMetadata(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	src := filepath.Join(base, "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writePGLikeTree(t, src)
	before := snapshotTree(t, src)

	dst := filepath.Join(base, "dst")
	if err := copyTree(context.Background(), src, dst); err != nil {
		t.Fatal(err)
	}
	got := snapshotTree(t, dst)
	if !reflect.DeepEqual(before, got) {
		for k, v := range before {
			if got[k] != v {
				t.Errorf("%s: src %+v, copy %+v", k, v, got[k])
			}
		}
		t.Fatalf("copy differs (%d vs %d entries)", len(before), len(got))
	}
	// Spot-check the things PostgreSQL cares about, explicitly.
	root := got["."]
	if root.UID != 101 || root.GID != 101 || root.Mode&0o7777 != 0o700 {
		t.Fatalf("root: %+v, want uid/gid 101 mode 0700", root)
	}
	if got["pg_wal"].Link != "/nonexistent/pg_wal" || got["pg_wal"].UID != 101 {
		t.Fatalf("dangling symlink not preserved: %+v", got["pg_wal"])
	}
	if got["shared"].Mode&0o7777 != 0o2770 {
		t.Fatalf("setgid dir mode %o", got["shared"].Mode&0o7777)
	}
	if got["owned-by-other"].UID != 1000 || got["owned-by-other"].GID != 2000 {
		t.Fatalf("owner not preserved: %+v", got["owned-by-other"])
	}
	if got["fifo"].Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Fatalf("fifo type not preserved: %o", got["fifo"].Mode)
	}
	var a, b unix.Stat_t
	if err := unix.Stat(filepath.Join(dst, "PG_VERSION"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join(dst, "hardlink"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino {
		t.Fatalf("hard link became two files")
	}
	// The copy is independent of the source.
	if err := os.WriteFile(filepath.Join(src, "PG_VERSION"), []byte("17\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, _ := os.ReadFile(filepath.Join(dst, "PG_VERSION")); string(c) != "16\n" {
		t.Fatalf("copy shares data with source: %q", c)
	}
}

func TestCopyTreeCancelled(t *testing.T) {
	base := t.TempDir()
	if err := os.WriteFile(filepath.Join(base, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := copyTree(ctx, base, filepath.Join(t.TempDir(), "dst")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestFailureInjectionCountPersistsAcrossRestart(t *testing.T) {
	dataDir := t.TempDir()
	params := map[string]string{faultPrefix + opCreateVolume: "Unavailable:2", "csi.storage.k8s.io/pvc/name": "p"}
	ctx := context.Background()

	d1 := newTestDriver(t, dataDir, 10*gib)
	_, err := d1.CreateVolume(ctx, volReq("pvc-1", 10*mib, params))
	wantCode(t, err, codes.Unavailable)
	if !strings.Contains(status.Convert(err).Message(), "injected") {
		t.Fatalf("message does not say the failure was injected: %v", err)
	}

	// A new driver instance on the same data dir continues the count.
	d2 := newTestDriver(t, dataDir, 10*gib)
	_, err = d2.CreateVolume(ctx, volReq("pvc-1", 10*mib, params))
	wantCode(t, err, codes.Unavailable)
	resp, err := d2.CreateVolume(ctx, volReq("pvc-1", 10*mib, params))
	if err != nil {
		t.Fatalf("third call: %v", err)
	}
	if _, err := os.Stat(d2.store.volumeDir(resp.GetVolume().GetVolumeId())); err != nil {
		t.Fatalf("volume dir missing: %v", err)
	}
	// Later calls keep succeeding (idempotent).
	again, err := d2.CreateVolume(ctx, volReq("pvc-1", 10*mib, params))
	if err != nil || again.GetVolume().GetVolumeId() != resp.GetVolume().GetVolumeId() {
		t.Fatalf("fourth call: %v %v", again, err)
	}
	// The count is per name.
	_, err = d2.CreateVolume(ctx, volReq("pvc-2", 10*mib, params))
	wantCode(t, err, codes.Unavailable)

	// Without a count every call fails.
	snapParams := map[string]string{faultPrefix + opCreateSnapshot: "ResourceExhausted"}
	for range 3 {
		_, err = d2.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: resp.GetVolume().GetVolumeId(), Parameters: snapParams})
		wantCode(t, err, codes.ResourceExhausted)
	}
	snaps, _ := d2.store.listSnapshots()
	if len(snaps) != 0 {
		t.Fatalf("failed CreateSnapshot left %d snapshots", len(snaps))
	}
}

func TestFaultParameterValidation(t *testing.T) {
	d := newTestDriver(t, t.TempDir(), 10*gib)
	ctx := context.Background()
	bad := []map[string]string{
		{faultPrefix + opCreateVolume: "Bogus"},
		{faultPrefix + opCreateVolume: "OK"},
		{faultPrefix + opCreateVolume: "Unavailable:x"},
		{faultPrefix + opCreateVolume: "Unavailable:0"},
		{delayPrefix + opCreateVolume: "soon"},
		{faultPrefix + opCreateSnapshot: "Unavailable"}, // wrong op for a StorageClass
		{"type": "fast"},
	}
	for _, p := range bad {
		_, err := d.CreateVolume(ctx, volReq("v", mib, p))
		wantCode(t, err, codes.InvalidArgument)
	}
	_, err := d.CreateVolume(ctx, volReq("v", mib, map[string]string{"unknown-key": "1"}))
	if !strings.Contains(status.Convert(err).Message(), "unknown-key") {
		t.Fatalf("error does not name the parameter: %v", err)
	}
	_, err = d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s", SourceVolumeId: "vol-x", Parameters: map[string]string{delayPrefix + opCreateSnapshot: "-1s"}})
	wantCode(t, err, codes.InvalidArgument)
}

func TestDelayHonoursCancellation(t *testing.T) {
	d := newTestDriver(t, t.TempDir(), 10*gib)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := d.CreateVolume(ctx, volReq("slow", mib, map[string]string{delayPrefix + opCreateVolume: "1m"}))
	wantCode(t, err, codes.DeadlineExceeded)
	if time.Since(start) > 5*time.Second {
		t.Fatalf("delay ignored cancellation")
	}
	start = time.Now()
	if _, err := d.CreateVolume(context.Background(), volReq("slow", mib, map[string]string{delayPrefix + opCreateVolume: "300ms"})); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatalf("delay not applied")
	}
}

func TestSnapshotRestoreAndClonePreserveContent(t *testing.T) {
	requireRoot(t)
	d := newTestDriver(t, t.TempDir(), 10*gib)
	ctx := context.Background()
	src, err := d.CreateVolume(ctx, volReq("pg-data", 100*mib, nil))
	if err != nil {
		t.Fatal(err)
	}
	srcID := src.GetVolume().GetVolumeId()
	srcDir := d.store.volumeDir(srcID)
	writePGLikeTree(t, srcDir)
	want := snapshotTree(t, srcDir)

	snap, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: srcID})
	if err != nil {
		t.Fatal(err)
	}
	s := snap.GetSnapshot()
	if !s.GetReadyToUse() || s.GetSizeBytes() != 100*mib || s.GetSourceVolumeId() != srcID {
		t.Fatalf("snapshot %+v", s)
	}
	// Same name + same source is idempotent; different source is refused.
	again, err := d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: srcID})
	if err != nil || again.GetSnapshot().GetSnapshotId() != s.GetSnapshotId() {
		t.Fatalf("idempotent CreateSnapshot: %v %v", again, err)
	}
	other, err := d.CreateVolume(ctx, volReq("other", mib, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "snap-1", SourceVolumeId: other.GetVolume().GetVolumeId()})
	wantCode(t, err, codes.AlreadyExists)

	// Change the source after the snapshot: the snapshot must not change.
	if err := os.WriteFile(filepath.Join(srcDir, "PG_VERSION"), []byte("99\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(srcDir, "postgresql.conf")); err != nil {
		t.Fatal(err)
	}

	restoreReq := volReq("restored", 0, nil)
	restoreReq.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: s.GetSnapshotId()}}}
	restored, err := d.CreateVolume(ctx, restoreReq)
	if err != nil {
		t.Fatal(err)
	}
	rv := restored.GetVolume()
	if rv.GetCapacityBytes() != 100*mib {
		t.Fatalf("restored capacity %d, want the snapshot size", rv.GetCapacityBytes())
	}
	if rv.GetContentSource().GetSnapshot().GetSnapshotId() != s.GetSnapshotId() {
		t.Fatalf("content source not reported: %+v", rv.GetContentSource())
	}
	if got := snapshotTree(t, d.store.volumeDir(rv.GetVolumeId())); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored volume differs from the snapshotted content:\n got %v\nwant %v", got, want)
	}

	// A restore smaller than the snapshot is refused.
	small := volReq("too-small", 10*mib, nil)
	small.VolumeContentSource = restoreReq.VolumeContentSource
	_, err = d.CreateVolume(ctx, small)
	wantCode(t, err, codes.OutOfRange)

	// Clone copies the current content of the source volume.
	cloneReq := volReq("clone", 100*mib, nil)
	cloneReq.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: srcID}}}
	clone, err := d.CreateVolume(ctx, cloneReq)
	if err != nil {
		t.Fatal(err)
	}
	if got, now := snapshotTree(t, d.store.volumeDir(clone.GetVolume().GetVolumeId())), snapshotTree(t, srcDir); !reflect.DeepEqual(got, now) {
		t.Fatalf("clone differs from source")
	}

	// Sources that do not exist.
	missing := volReq("missing", mib, nil)
	missing.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "snap-00000000000000000000000000000000"}}}
	_, err = d.CreateVolume(ctx, missing)
	wantCode(t, err, codes.NotFound)

	// Deleting the source volume leaves the snapshot restorable.
	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: srcID}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(srcDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume dir still there: %v", err)
	}
	restoreReq.Name = "restored-2"
	r2, err := d.CreateVolume(ctx, restoreReq)
	if err != nil {
		t.Fatal(err)
	}
	if got := snapshotTree(t, d.store.volumeDir(r2.GetVolume().GetVolumeId())); !reflect.DeepEqual(got, want) {
		t.Fatalf("second restore differs")
	}
}

func TestCapacity(t *testing.T) {
	d := newTestDriver(t, t.TempDir(), 100*mib)
	ctx := context.Background()
	v1, err := d.CreateVolume(ctx, volReq("a", 60*mib, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.CreateVolume(ctx, volReq("b", 60*mib, nil))
	wantCode(t, err, codes.ResourceExhausted)
	_, err = d.CreateVolume(ctx, volReq("huge", 200*mib, nil))
	wantCode(t, err, codes.OutOfRange)

	gc, err := d.GetCapacity(ctx, &csi.GetCapacityRequest{})
	if err != nil || gc.GetAvailableCapacity() != 40*mib {
		t.Fatalf("GetCapacity: %v %v, want 40Mi", gc, err)
	}
	gc, err = d.GetCapacity(ctx, &csi.GetCapacityRequest{AccessibleTopology: &csi.Topology{Segments: map[string]string{DefaultTopologyKey: "node-a"}}})
	if err != nil || gc.GetAvailableCapacity() != 40*mib {
		t.Fatalf("GetCapacity(this node): %v %v", gc, err)
	}
	gc, err = d.GetCapacity(ctx, &csi.GetCapacityRequest{AccessibleTopology: &csi.Topology{Segments: map[string]string{DefaultTopologyKey: "node-b"}}})
	if err != nil || gc.GetAvailableCapacity() != 0 {
		t.Fatalf("GetCapacity(other node): %v %v, want 0", gc, err)
	}

	// Rounding up to MiB, and limit_bytes honoured.
	r := volReq("c", 1, nil)
	r.CapacityRange.LimitBytes = 1000
	v, err := d.CreateVolume(ctx, r)
	if err != nil || v.GetVolume().GetCapacityBytes() != 1000 {
		t.Fatalf("limit not honoured: %v %v", v, err)
	}
	v, err = d.CreateVolume(ctx, volReq("d", mib+1, nil))
	if err != nil || v.GetVolume().GetCapacityBytes() != 2*mib {
		t.Fatalf("rounding: %v %v", v, err)
	}
	// Same name, incompatible size.
	_, err = d.CreateVolume(ctx, volReq("d", 10*mib, nil))
	wantCode(t, err, codes.AlreadyExists)

	if _, err := d.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v1.GetVolume().GetVolumeId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.CreateVolume(ctx, volReq("b", 60*mib, nil)); err != nil {
		t.Fatalf("after freeing capacity: %v", err)
	}
}

func TestTopologyAndCapabilities(t *testing.T) {
	d := newTestDriver(t, t.TempDir(), gib)
	ctx := context.Background()
	seg := func(n string) *csi.Topology { return &csi.Topology{Segments: map[string]string{DefaultTopologyKey: n}} }

	r := volReq("elsewhere", mib, nil)
	r.AccessibilityRequirements = &csi.TopologyRequirement{Requisite: []*csi.Topology{seg("node-b")}, Preferred: []*csi.Topology{seg("node-b")}}
	_, err := d.CreateVolume(ctx, r)
	wantCode(t, err, codes.ResourceExhausted)

	r = volReq("here", mib, nil)
	r.AccessibilityRequirements = &csi.TopologyRequirement{Requisite: []*csi.Topology{seg("node-b"), seg("node-a")}}
	v, err := d.CreateVolume(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	at := v.GetVolume().GetAccessibleTopology()
	if len(at) != 1 || !reflect.DeepEqual(at[0].GetSegments(), map[string]string{DefaultTopologyKey: "node-a"}) {
		t.Fatalf("accessible topology %v", at)
	}

	block := volReq("block", mib, nil)
	block.VolumeCapabilities = []*csi.VolumeCapability{{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}}
	_, err = d.CreateVolume(ctx, block)
	wantCode(t, err, codes.InvalidArgument)
	if !strings.Contains(status.Convert(err).Message(), "block") {
		t.Fatalf("block refusal unclear: %v", err)
	}
	multi := volReq("multi", mib, nil)
	multi.VolumeCapabilities = []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}
	_, err = d.CreateVolume(ctx, multi)
	wantCode(t, err, codes.InvalidArgument)

	vv, err := d.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: v.GetVolume().GetVolumeId(), VolumeCapabilities: block.VolumeCapabilities})
	if err != nil || vv.GetConfirmed() != nil || vv.GetMessage() == "" {
		t.Fatalf("ValidateVolumeCapabilities(block): %v %v", vv, err)
	}
}

func TestStartupCleansLeftovers(t *testing.T) {
	dataDir := t.TempDir()
	d := newTestDriver(t, dataDir, gib)
	id := volumeIDForName("half")
	// A crash after the rename but before the metadata write.
	if err := os.Mkdir(d.store.volumeDir(id), 0o755); err != nil {
		t.Fatal(err)
	}
	// A crash mid-copy.
	if err := os.MkdirAll(filepath.Join(dataDir, tmpDir, "vol-123", "content"), 0o755); err != nil {
		t.Fatal(err)
	}
	vols, _ := d.store.listVolumes()
	if len(vols) != 0 {
		t.Fatalf("a directory without metadata is listed as a volume")
	}
	newTestDriver(t, dataDir, gib)
	if _, err := os.Stat(d.store.volumeDir(id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover volume dir not removed: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dataDir, tmpDir)); len(entries) != 0 {
		t.Fatalf("tmp not cleaned: %v", entries)
	}
}

func TestPublishReadonlyAndUnpublish(t *testing.T) {
	requireRoot(t)
	d := newTestDriver(t, t.TempDir(), gib)
	ctx := context.Background()
	v, err := d.CreateVolume(ctx, volReq("pub", mib, nil))
	if err != nil {
		t.Fatal(err)
	}
	id := v.GetVolume().GetVolumeId()
	if err := os.WriteFile(filepath.Join(d.store.volumeDir(id), "hello"), []byte("world"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	rw, ro := filepath.Join(base, "rw"), filepath.Join(base, "ro")
	pub := func(target string, readonly bool) error {
		_, err := d.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
			VolumeId: id, TargetPath: target, Readonly: readonly,
			VolumeCapability: mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER),
		})
		return err
	}
	unpub := func(target string) {
		t.Helper()
		if _, err := d.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}); err != nil {
			t.Fatal(err)
		}
	}
	defer func() { _ = unix.Unmount(rw, unix.MNT_DETACH); _ = unix.Unmount(ro, unix.MNT_DETACH) }()

	for range 2 { // idempotent
		if err := pub(rw, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub(ro, true); err != nil {
		t.Fatal(err)
	}
	wantCode(t, pub(rw, true), codes.AlreadyExists)
	if c, err := os.ReadFile(filepath.Join(ro, "hello")); err != nil || string(c) != "world" {
		t.Fatalf("read via ro mount: %q %v", c, err)
	}
	if err := os.WriteFile(filepath.Join(ro, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write to readonly mount: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(rw, "written"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d.store.volumeDir(id), "written")); err != nil {
		t.Fatalf("write through rw mount not in volume: %v", err)
	}

	st, err := d.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: rw})
	if err != nil {
		t.Fatal(err)
	}
	if u := st.GetUsage()[0]; u.GetTotal() != mib || u.GetUsed() <= 0 {
		t.Fatalf("stats %+v", st.GetUsage())
	}

	for range 2 { // idempotent
		unpub(rw)
		unpub(ro)
	}
	for _, p := range []string{rw, ro} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s not removed: %v", p, err)
		}
	}
	if m, _ := isMountPoint(rw); m {
		t.Fatal("still mounted")
	}
	if _, err := os.Stat(filepath.Join(d.store.volumeDir(id), "hello")); err != nil {
		t.Fatalf("volume content lost on unpublish: %v", err)
	}
}

func TestRegistrationService(t *testing.T) {
	base := t.TempDir()
	regDir := filepath.Join(base, "plugins_registry")
	sock := filepath.Join(base, "csi.sock")
	d, err := New(Config{NodeID: "n", DataDir: filepath.Join(base, "data"), CapacityBytes: gib,
		Endpoint: "unix://" + sock, RegistrationDir: regDir, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	// A stale socket file is replaced.
	if err := os.MkdirAll(regDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	regSock := filepath.Join(regDir, DefaultName+"-reg.sock")
	conn, err := grpc.NewClient("unix://"+regSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := registerapi.NewRegistrationClient(conn).GetInfo(ctx, &registerapi.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s %s %s [1.0.0]", registerapi.CSIPlugin, DefaultName, sock)
	if got := fmt.Sprintf("%s %s %s %v", info.GetType(), info.GetName(), info.GetEndpoint(), info.GetSupportedVersions()); got != want {
		t.Fatalf("GetInfo = %s, want %s", got, want)
	}
	if _, err := registerapi.NewRegistrationClient(conn).NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: false, Error: "boom"}); err != nil {
		t.Fatal(err)
	}
	// The CSI endpoint answers too.
	csiConn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer csiConn.Close()
	pi, err := csi.NewIdentityClient(csiConn).GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil || pi.GetName() != DefaultName || pi.GetVendorVersion() != Version {
		t.Fatalf("GetPluginInfo: %v %v", pi, err)
	}
	d.Stop()
	for _, p := range []string{sock, regSock} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("socket %s not removed on stop: %v", p, err)
		}
	}
}
