package main

// The same-work baseline for backups: each Backup of the namespace goes through Snapback's backup
// workflow with Snapback's requests. The finalizer; the StatefulSet, its claims, the snapshot
// classes and the claims' StorageClass read from the API server, as Snapback reads them; a
// VolumeSnapshot per claim, then, in the same reconcile, the status InProgress with the volumes and
// the manifest; and, once every snapshot is ready (seen by an informer, as Snapback sees it), each
// content read for its handle and the status Completed.

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

const (
	backupFinalizer = "snapback.dev/backup-protection"
	backupLabel     = "snapback.dev/backup"
	defaultClass    = "snapshot.storage.kubernetes.io/is-default-class"
)

var (
	snapshots        = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}
	snapshotContents = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotcontents"}
	snapshotClasses  = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotclasses"}
	storageClasses   = schema.GroupVersionResource{Group: "storage.k8s.io", Version: "v1", Resource: "storageclasses"}
)

type backupWorkflow struct {
	*controller
	backups   cache.GenericLister
	snapshots cache.GenericLister
}

func backupCommand(ctx context.Context, client *dynamic.DynamicClient, args []string) error {
	c, err := newController(client, "backup", backupLabel, args)
	if err != nil {
		return err
	}
	w := &backupWorkflow{
		controller: c,
		backups:    c.all.ForResource(backups).Lister(),
		snapshots:  c.owned.ForResource(snapshots).Lister(),
	}
	return c.run(ctx, watch{reconciled: backups, made: []schema.GroupVersionResource{snapshots}}, w.reconcile)
}

// reconcile takes one step: the finalizer, the capture, or the snapshots and, once all are ready,
// Completed. Nothing once Completed.
func (w *backupWorkflow) reconcile(ctx context.Context, key string) error {
	obj, err := w.backups.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	backup := obj.(*unstructured.Unstructured).DeepCopy()
	if added, err := w.addFinalizer(ctx, backups, backup, backupFinalizer); added || err != nil {
		return err
	}
	phase, _, _ := unstructured.NestedString(backup.Object, "status", "phase")
	switch phase {
	case "":
		return w.capture(ctx, backup)
	case "InProgress":
		return w.snapshot(ctx, backup)
	}
	return nil
}

// capture reads the StatefulSet, its claims, the snapshot classes and the claims' StorageClass,
// creates the snapshots and writes InProgress with the volumes snapshotted and the manifest.
func (w *backupWorkflow) capture(ctx context.Context, backup *unstructured.Unstructured) error {
	namespace := backup.GetNamespace()
	deployment, _, _ := unstructured.NestedString(backup.Object, "spec", "deployment", "name")
	set, err := w.client.Resource(statefulSets).Namespace(namespace).Get(ctx, deployment, metav1.GetOptions{})
	if err != nil {
		return err
	}
	replicas, _, _ := unstructured.NestedInt64(set.Object, "spec", "replicas")
	templates, _, _ := unstructured.NestedSlice(set.Object, "spec", "volumeClaimTemplates")
	var claimNames []string
	for ordinal := range replicas {
		for _, template := range templates {
			name, _, _ := unstructured.NestedString(template.(map[string]any), "metadata", "name")
			claimNames = append(claimNames, fmt.Sprintf("%s-%s-%d", name, deployment, ordinal))
		}
	}
	className := ""
	for _, claimName := range claimNames {
		claim, err := w.client.Resource(claims).Namespace(namespace).Get(ctx, claimName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		className, _, _ = unstructured.NestedString(claim.Object, "spec", "storageClassName")
	}
	classes, err := w.client.Resource(snapshotClasses).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	storageClass, err := w.client.Resource(storageClasses).Get(ctx, className, metav1.GetOptions{})
	if err != nil {
		return err
	}
	driver, _, _ := unstructured.NestedString(storageClass.Object, "provisioner")
	chosen := ""
	for _, class := range classes.Items {
		classDriver, _, _ := unstructured.NestedString(class.Object, "driver")
		if classDriver == driver && class.GetAnnotations()[defaultClass] == "true" {
			chosen = class.GetName()
		}
	}
	volumes := make([]any, 0, len(claimNames))
	for _, claimName := range claimNames {
		volumes = append(volumes, map[string]any{
			"pvcName": claimName, "volumeSnapshotName": backup.GetName() + "-" + claimName,
			"driver": driver, "volumeSnapshotClassName": chosen,
		})
	}
	spec, _, _ := unstructured.NestedMap(set.Object, "spec")
	now := time.Now().UTC().Format(time.RFC3339)
	status := map[string]any{
		"phase": "InProgress", "startTime": now, "volumes": volumes,
		"manifest": map[string]any{
			"apiVersion": "apps/v1", "kind": "StatefulSet",
			"metadata": map[string]any{"name": set.GetName(), "labels": toAny(set.GetLabels())},
			"spec":     spec,
		},
		"conditions": []any{readyCondition("False", "SnapshotsInProgress", fmt.Sprintf("0/%d snapshot(s) of StatefulSet %s ready", len(volumes), deployment), now)},
	}
	// As Snapback does, the snapshots are requested before the status that says so is written.
	for _, volume := range volumes {
		if err := w.createSnapshot(ctx, backup, volume.(map[string]any)); err != nil {
			return err
		}
	}
	return w.updateStatus(ctx, backup, status)
}

// createSnapshot creates the volume's VolumeSnapshot, labelled with its backup; one that exists is
// taken as made.
func (w *backupWorkflow) createSnapshot(ctx context.Context, backup *unstructured.Unstructured, volume map[string]any) error {
	namespace := backup.GetNamespace()
	w.writes.Add(1)
	_, err := w.client.Resource(snapshots).Namespace(namespace).Create(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
		"metadata": map[string]any{"name": volume["volumeSnapshotName"], "namespace": namespace, "labels": map[string]any{backupLabel: backup.GetName()}},
		"spec": map[string]any{
			"source":                  map[string]any{"persistentVolumeClaimName": volume["pvcName"]},
			"volumeSnapshotClassName": volume["volumeSnapshotClassName"],
		},
	}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// snapshot creates the VolumeSnapshots not seen yet and, when every one is ready, reads each
// content's handle and writes Completed.
func (w *backupWorkflow) snapshot(ctx context.Context, backup *unstructured.Unstructured) error {
	namespace := backup.GetNamespace()
	volumes, _, _ := unstructured.NestedSlice(backup.Object, "status", "volumes")
	ready := 0
	for _, v := range volumes {
		volume := v.(map[string]any)
		name := volume["volumeSnapshotName"].(string)
		obj, err := w.snapshots.Get(namespace + "/" + name)
		if apierrors.IsNotFound(err) {
			// Not cached yet: made by the capture, or lost since.
			if err := w.createSnapshot(ctx, backup, volume); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if isReady, _, _ := unstructured.NestedBool(obj.(*unstructured.Unstructured).Object, "status", "readyToUse"); isReady {
			ready++
		}
	}
	if ready < len(volumes) {
		return nil // a snapshot's event brings the backup back
	}
	var size int64
	for _, v := range volumes {
		volume := v.(map[string]any)
		obj, err := w.snapshots.Get(namespace + "/" + volume["volumeSnapshotName"].(string))
		if err != nil {
			return err
		}
		contentName, _, _ := unstructured.NestedString(obj.(*unstructured.Unstructured).Object, "status", "boundVolumeSnapshotContentName")
		content, err := w.client.Resource(snapshotContents).Get(ctx, contentName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		handle, _, _ := unstructured.NestedString(content.Object, "status", "snapshotHandle")
		bytes, _, _ := unstructured.NestedInt64(content.Object, "status", "restoreSize")
		volume["cloudSnapId"], volume["sizeBytes"] = handle, bytes
		size += bytes
	}
	status, _, _ := unstructured.NestedMap(backup.Object, "status")
	now := time.Now().UTC().Format(time.RFC3339)
	status["phase"], status["completionTime"], status["volumes"], status["fileSize"] = "Completed", now, volumes, size
	status["conditions"] = []any{readyCondition("True", "Completed", fmt.Sprintf("%d snapshot(s) ready, %d bytes", len(volumes), size), now)}
	return w.updateStatus(ctx, backup, status)
}

func (w *backupWorkflow) updateStatus(ctx context.Context, backup *unstructured.Unstructured, status map[string]any) error {
	backup.Object["status"] = status
	w.writes.Add(1)
	_, err := w.client.Resource(backups).Namespace(backup.GetNamespace()).UpdateStatus(ctx, backup, metav1.UpdateOptions{})
	return err
}

func readyCondition(status, reason, message, now string) map[string]any {
	return map[string]any{"type": "Ready", "status": status, "reason": reason, "message": message, "lastTransitionTime": now}
}

func toAny(labels map[string]string) map[string]any {
	out := make(map[string]any, len(labels))
	for key, value := range labels {
		out[key] = value
	}
	return out
}
