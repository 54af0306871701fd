package driver

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// On-disk layout under the data dir:
//
//	volumes/<volume-id>/          volume content
//	volumes/<volume-id>.json      volume metadata (its presence marks the volume as existing)
//	snapshots/<snapshot-id>/      snapshot content (full copy)
//	snapshots/<snapshot-id>.json  snapshot metadata
//	publications/<volume-id>.json node publications of a volume (target path -> details)
//	faults/<op>-<hash>.count      failure-injection call counters
//	tmp/                          in-progress copies (removed at start-up)
//
// A metadata file is written (atomically) only after its directory is
// complete, so a crash never leaves something that looks like a finished
// volume or snapshot.

const (
	volumesDir      = "volumes"
	snapshotsDir    = "snapshots"
	publicationsDir = "publications"
	faultsDir       = "faults"
	tmpDir          = "tmp"

	volumeIDPrefix   = "vol-"
	snapshotIDPrefix = "snap-"
)

var idPattern = regexp.MustCompile(`^(vol|snap)-[0-9a-f]{32}$`)

// ContentSource records what a volume was created from.
type ContentSource struct {
	Type string `json:"type"` // "snapshot" or "volume"
	ID   string `json:"id"`
}

// VolumeMeta is the persisted description of a volume.
type VolumeMeta struct {
	ID                 string            `json:"id"`
	Name               string            `json:"name"`
	CapacityBytes      int64             `json:"capacityBytes"`
	ContentSource      *ContentSource    `json:"contentSource,omitempty"`
	AccessibleTopology map[string]string `json:"accessibleTopology,omitempty"`
	CreatedAt          time.Time         `json:"createdAt"`
}

// SnapshotMeta is the persisted description of a snapshot.
type SnapshotMeta struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	SourceVolumeID string    `json:"sourceVolumeId"`
	SizeBytes      int64     `json:"sizeBytes"`
	CreatedAt      time.Time `json:"createdAt"`
}

// Publication is one bind mount of a volume on this node.
type Publication struct {
	Readonly   bool   `json:"readonly"`
	AccessMode string `json:"accessMode"`
}

func hashName(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:16])
}

func volumeIDForName(name string) string   { return volumeIDPrefix + hashName(name) }
func snapshotIDForName(name string) string { return snapshotIDPrefix + hashName(name) }

func validVolumeID(id string) bool {
	return strings.HasPrefix(id, volumeIDPrefix) && idPattern.MatchString(id)
}

func validSnapshotID(id string) bool {
	return strings.HasPrefix(id, snapshotIDPrefix) && idPattern.MatchString(id)
}

type store struct {
	root string
}

func (s *store) path(parts ...string) string {
	return filepath.Join(append([]string{s.root}, parts...)...)
}

func (s *store) volumeDir(id string) string    { return s.path(volumesDir, id) }
func (s *store) volumeMeta(id string) string   { return s.path(volumesDir, id+".json") }
func (s *store) snapshotDir(id string) string  { return s.path(snapshotsDir, id) }
func (s *store) snapshotMeta(id string) string { return s.path(snapshotsDir, id+".json") }
func (s *store) publications(id string) string { return s.path(publicationsDir, id+".json") }

// init creates the layout and removes leftovers of interrupted operations.
func (s *store) init() error {
	if err := os.RemoveAll(s.path(tmpDir)); err != nil {
		return fmt.Errorf("clean tmp dir: %w", err)
	}
	for _, d := range []string{volumesDir, snapshotsDir, publicationsDir, faultsDir, tmpDir} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return err
		}
	}
	// Directories without metadata are leftovers of a crash between the
	// rename of the copied directory and the metadata write, or of a
	// delete interrupted after the metadata removal.
	for _, d := range []string{volumesDir, snapshotsDir} {
		entries, err := os.ReadDir(s.path(d))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !e.IsDir() || !idPattern.MatchString(e.Name()) {
				continue
			}
			if _, err := os.Stat(s.path(d, e.Name()+".json")); errors.Is(err, os.ErrNotExist) {
				if err := os.RemoveAll(s.path(d, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// tempDir returns a fresh directory under tmp/ for building content.
func (s *store) tempDir(prefix string) (string, error) {
	return os.MkdirTemp(s.path(tmpDir), prefix+"-")
}

// writeJSONAtomic writes v to path via a temp file, fsync and rename.
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readJSON returns (false, nil) when the file does not exist.
func readJSON(path string, v any) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("parse %s: %w", path, err)
	}
	return true, nil
}

func (s *store) getVolume(id string) (*VolumeMeta, error) {
	if !validVolumeID(id) {
		return nil, nil
	}
	var m VolumeMeta
	found, err := readJSON(s.volumeMeta(id), &m)
	if err != nil || !found {
		return nil, err
	}
	return &m, nil
}

func (s *store) getSnapshot(id string) (*SnapshotMeta, error) {
	if !validSnapshotID(id) {
		return nil, nil
	}
	var m SnapshotMeta
	found, err := readJSON(s.snapshotMeta(id), &m)
	if err != nil || !found {
		return nil, err
	}
	return &m, nil
}

// metaIDs lists the ids having a metadata file in dir, sorted.
func (s *store) metaIDs(dir string) ([]string, error) {
	entries, err := os.ReadDir(s.path(dir))
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		id := strings.TrimSuffix(name, ".json")
		if idPattern.MatchString(id) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

func (s *store) listVolumes() ([]*VolumeMeta, error) {
	ids, err := s.metaIDs(volumesDir)
	if err != nil {
		return nil, err
	}
	var out []*VolumeMeta
	for _, id := range ids {
		m, err := s.getVolume(id)
		if err != nil {
			return nil, err
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *store) listSnapshots() ([]*SnapshotMeta, error) {
	ids, err := s.metaIDs(snapshotsDir)
	if err != nil {
		return nil, err
	}
	var out []*SnapshotMeta
	for _, id := range ids {
		m, err := s.getSnapshot(id)
		if err != nil {
			return nil, err
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out, nil
}

func (s *store) allocatedBytes() (int64, error) {
	vols, err := s.listVolumes()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, v := range vols {
		total += v.CapacityBytes
	}
	return total, nil
}

// removeEntry deletes the metadata first (so the item stops existing
// atomically), then its directory.
func removeEntry(metaPath, dir string) error {
	if err := os.Remove(metaPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := syncDir(filepath.Dir(metaPath)); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

func (s *store) getPublications(volID string) (map[string]Publication, error) {
	pubs := map[string]Publication{}
	if _, err := readJSON(s.publications(volID), &pubs); err != nil {
		return nil, err
	}
	return pubs, nil
}

func (s *store) putPublications(volID string, pubs map[string]Publication) error {
	if len(pubs) == 0 {
		err := os.Remove(s.publications(volID))
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return writeJSONAtomic(s.publications(volID), pubs)
}
