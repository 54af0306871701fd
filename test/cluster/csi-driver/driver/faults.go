package driver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Failure-injection parameter keys. The parameters arrive in
// CreateVolumeRequest.parameters (StorageClass) and
// CreateSnapshotRequest.parameters (VolumeSnapshotClass).
const (
	faultPrefix = "fail.csi.snapback.test/"
	delayPrefix = "delay.csi.snapback.test/"

	opCreateVolume   = "create-volume"
	opCreateSnapshot = "create-snapshot"

	// Parameters added by the sidecars with --extra-create-metadata.
	sidecarPrefix = "csi.storage.k8s.io/"
)

// faultSpec is the parsed failure injection for one operation.
type faultSpec struct {
	code  codes.Code
	count int // 0: every call fails
	delay time.Duration
	set   bool // code is set
}

var codeByName = func() map[string]codes.Code {
	m := map[string]codes.Code{}
	for c := codes.Code(1); c <= codes.Unauthenticated; c++ {
		m[c.String()] = c
	}
	return m
}()

// parseFaultParams validates params for op and returns the fault spec.
// Unknown parameters (except the sidecars' csi.storage.k8s.io/ ones) are
// refused with InvalidArgument.
func parseFaultParams(op string, params map[string]string) (faultSpec, error) {
	var spec faultSpec
	for k, v := range params {
		switch {
		case strings.HasPrefix(k, sidecarPrefix):
		case k == faultPrefix+op:
			code, count, err := parseFailValue(v)
			if err != nil {
				return spec, status.Errorf(codes.InvalidArgument, "parameter %q: %v", k, err)
			}
			spec.code, spec.count, spec.set = code, count, true
		case k == delayPrefix+op:
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return spec, status.Errorf(codes.InvalidArgument, "parameter %q: invalid duration %q (want a Go duration such as 3s)", k, v)
			}
			spec.delay = d
		default:
			return spec, status.Errorf(codes.InvalidArgument, "unknown parameter %q (supported: %s%s, %s%s, %s*)", k, faultPrefix, op, delayPrefix, op, sidecarPrefix)
		}
	}
	return spec, nil
}

func parseFailValue(v string) (codes.Code, int, error) {
	name, countStr, hasCount := strings.Cut(v, ":")
	code, ok := codeByName[name]
	if !ok {
		return 0, 0, fmt.Errorf("invalid value %q: %q is not a non-OK gRPC code name (e.g. Unavailable, InvalidArgument)", v, name)
	}
	if !hasCount {
		return code, 0, nil
	}
	n, err := strconv.Atoi(countStr)
	if err != nil || n < 1 {
		return 0, 0, fmt.Errorf("invalid value %q: count must be a positive integer", v)
	}
	return code, n, nil
}

// sleep waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// maybeFail returns the injected error if this call should fail. For
// "<Code>:<N>" the number of failed calls per (op, name) is kept on disk
// so it survives a driver restart. Must be called with the driver lock held.
func (d *Driver) maybeFail(op, name string, spec faultSpec) error {
	if !spec.set {
		return nil
	}
	if spec.count == 0 {
		return status.Errorf(spec.code, "injected failure: %s%s=%s for %q", faultPrefix, op, spec.code, name)
	}
	path := filepath.Join(d.store.path(faultsDir), op+"-"+hashName(name)+".count")
	failed := 0
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		failed, err = strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			return status.Errorf(codes.Internal, "corrupt fault counter %s: %v", path, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return status.Errorf(codes.Internal, "read fault counter: %v", err)
	}
	if failed >= spec.count {
		return nil
	}
	failed++
	if err := writeFileAtomic(path, []byte(strconv.Itoa(failed)+"\n")); err != nil {
		return status.Errorf(codes.Internal, "write fault counter: %v", err)
	}
	return status.Errorf(spec.code, "injected failure %d of %d: %s%s=%s:%d for %q", failed, spec.count, faultPrefix, op, spec.code, spec.count, name)
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// lockAfterFaults is the opening of every call that takes fault parameters: it waits the injected
// delay (outside the lock, so a slow call blocks no other), takes the driver's lock and injects the
// failure for name. On success the caller holds the lock and releases it with the returned unlock.
func (d *Driver) lockAfterFaults(ctx context.Context, op, name string, spec faultSpec) (func(), error) {
	if err := sleepCtx(ctx, spec.delay); err != nil {
		return nil, err
	}
	d.mu.Lock()
	if err := d.maybeFail(op, name, spec); err != nil {
		d.mu.Unlock()
		return nil, err
	}
	return d.mu.Unlock, nil
}
