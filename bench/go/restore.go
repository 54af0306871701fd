package main

// The same-work baseline: the restore workflow Snapback runs, written the client-go way. Each
// Restore of the namespace goes through Snapback's phases with Snapback's writes: the finalizer,
// one status update per phase, a PVC from the Backup's snapshot, the StatefulSet from the Backup's
// manifest in restore mode, and the patch to normal mode. Dependencies (the PVC bound, the
// StatefulSet healthy) come from informers, as Snapback's do; nothing is read from the API server
// on the way.

import (
	"context"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
)

const (
	finalizer    = "snapback.dev/restore-cleanup"
	restoreLabel = "snapback.dev/restore"
	modeKey      = "snapback.dev/mode"
)

var (
	restores     = schema.GroupVersionResource{Group: "snapback.dev", Version: "v1alpha1", Resource: "restores"}
	backups      = schema.GroupVersionResource{Group: "snapback.dev", Version: "v1alpha1", Resource: "backups"}
	claims       = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	statefulSets = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	// Snapback's happy path, in order.
	phases = []string{
		"Initializing", "Pending", "RestoringCloudSnap", "RestoringDataServiceDeploymentCR",
		"RestoringDataServiceDeployment", "DataServiceDeploymentEnteringNormalMode", "Successful",
	}
)

type workflow struct {
	*controller
	restores cache.GenericLister
	backups  cache.GenericLister
	claims   cache.GenericLister
	sets     cache.GenericLister
}

func reconcileCommand(ctx context.Context, client *dynamic.DynamicClient, args []string) error {
	c, err := newController(client, "reconcile", restoreLabel, args)
	if err != nil {
		return err
	}
	w := &workflow{
		controller: c,
		restores:   c.all.ForResource(restores).Lister(),
		// Read from its cache only: ForResource registers the informer, run starts it.
		backups: c.all.ForResource(backups).Lister(),
		claims:  c.owned.ForResource(claims).Lister(),
		sets:    c.owned.ForResource(statefulSets).Lister(),
	}
	return c.run(ctx, watch{reconciled: restores, made: []schema.GroupVersionResource{claims, statefulSets}}, w.reconcile)
}

// reconcile takes one step: the finalizer, or the work of the restore's phase and, when that work
// is done, the next phase. Nothing once Successful.
func (w *workflow) reconcile(ctx context.Context, key string) error {
	obj, err := w.restores.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	restore := obj.(*unstructured.Unstructured).DeepCopy()
	namespace, name := restore.GetNamespace(), restore.GetName()
	if added, err := w.addFinalizer(ctx, restores, restore, finalizer); added || err != nil {
		return err
	}
	phase, _, _ := unstructured.NestedString(restore.Object, "status", "phase")
	deployment, _, _ := unstructured.NestedString(restore.Object, "spec", "destination", "deploymentName")
	backupName, _, _ := unstructured.NestedString(restore.Object, "spec", "source", "backupName")
	switch phase {
	case "", "Initializing", "Pending":
		return w.advance(ctx, restore)
	case "RestoringCloudSnap":
		backup, err := w.backup(namespace, backupName)
		if err != nil {
			return err
		}
		claimName := "data-" + deployment + "-0"
		claim, err := w.claims.Get(namespace + "/" + claimName)
		if apierrors.IsNotFound(err) {
			return w.create(ctx, claims, namespace, claimFromSnapshot(backup, namespace, claimName, name))
		}
		if err != nil {
			return err
		}
		if bound, _, _ := unstructured.NestedString(claim.(*unstructured.Unstructured).Object, "status", "phase"); bound == "Bound" {
			return w.advance(ctx, restore)
		}
		return nil
	case "RestoringDataServiceDeploymentCR":
		backup, err := w.backup(namespace, backupName)
		if err != nil {
			return err
		}
		if err := w.create(ctx, statefulSets, namespace, restoreMode(backup, namespace, deployment, name)); err != nil {
			return err
		}
		return w.advance(ctx, restore)
	case "RestoringDataServiceDeployment", "DataServiceDeploymentEnteringNormalMode":
		obj, err := w.sets.Get(namespace + "/" + deployment)
		if apierrors.IsNotFound(err) {
			return nil // not cached yet: its event brings the restore back
		}
		if err != nil {
			return err
		}
		set := obj.(*unstructured.Unstructured)
		switched := set.GetAnnotations()[modeKey] == "normal"
		restoring := phase == "RestoringDataServiceDeployment"
		// As Snapback does: restore mode healthy, the switch to normal mode goes with the write that
		// enters the next phase; that phase sends it again only if the cache shows it unsent.
		switch {
		case !switched && (!restoring || healthy(set)):
			backup, err := w.backup(namespace, backupName)
			if err != nil {
				return err
			}
			if err := w.normalMode(ctx, backup, namespace, deployment); err != nil {
				return err
			}
			if restoring {
				return w.advance(ctx, restore)
			}
		case switched && (restoring || healthy(set)):
			return w.advance(ctx, restore)
		}
		return nil
	}
	return nil
}

func (w *workflow) backup(namespace, name string) (*unstructured.Unstructured, error) {
	obj, err := w.backups.Get(namespace + "/" + name)
	if err != nil {
		return nil, err
	}
	return obj.(*unstructured.Unstructured), nil
}

// advance writes the next phase, with its phaseHistory entry, in one status update from the
// cached object (stale: 409, retried).
func (w *workflow) advance(ctx context.Context, restore *unstructured.Unstructured) error {
	phase, _, _ := unstructured.NestedString(restore.Object, "status", "phase")
	next := phases[slices.Index(phases, phase)+1] // no phase yet (-1) starts at the first
	history, _, _ := unstructured.NestedSlice(restore.Object, "status", "phaseHistory")
	history = append(history, map[string]any{
		"phase": next, "enteredAt": time.Now().UTC().Format(time.RFC3339Nano),
	})
	if err := unstructured.SetNestedField(restore.Object, next, "status", "phase"); err != nil {
		return err
	}
	if err := unstructured.SetNestedSlice(restore.Object, history, "status", "phaseHistory"); err != nil {
		return err
	}
	w.writes.Add(1)
	_, err := w.client.Resource(restores).Namespace(restore.GetNamespace()).
		UpdateStatus(ctx, restore, metav1.UpdateOptions{})
	return err
}

// create makes an object; one that exists already (a step repeated) is taken as made.
func (w *workflow) create(ctx context.Context, resource schema.GroupVersionResource, namespace string, object map[string]any) error {
	w.writes.Add(1)
	_, err := w.client.Resource(resource).Namespace(namespace).
		Create(ctx, &unstructured.Unstructured{Object: object}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func (w *workflow) normalMode(ctx context.Context, backup *unstructured.Unstructured, namespace, deployment string) error {
	replicas, _, _ := unstructured.NestedInt64(backup.Object, "status", "manifest", "spec", "replicas")
	mode := map[string]any{modeKey: "normal"}
	return w.mergePatch(ctx, statefulSets, namespace, deployment, map[string]any{
		"metadata": map[string]any{"annotations": mode},
		"spec": map[string]any{
			"replicas": replicas,
			"template": map[string]any{"metadata": map[string]any{"annotations": mode}},
		},
	})
}

// claimFromSnapshot is the PVC of ordinal 0, made from the Backup's first snapshot with the
// manifest's claim template.
func claimFromSnapshot(backup *unstructured.Unstructured, namespace, name, restore string) map[string]any {
	snapshot := ""
	if volumes, _, _ := unstructured.NestedSlice(backup.Object, "status", "volumes"); len(volumes) > 0 {
		snapshot, _, _ = unstructured.NestedString(volumes[0].(map[string]any), "volumeSnapshotName")
	}
	templates, _, _ := unstructured.NestedSlice(backup.Object, "status", "manifest", "spec", "volumeClaimTemplates")
	spec := map[string]any{}
	if len(templates) > 0 {
		spec, _, _ = unstructured.NestedMap(templates[0].(map[string]any), "spec")
	}
	spec["dataSource"] = map[string]any{
		"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": snapshot,
	}
	return map[string]any{
		"apiVersion": "v1", "kind": "PersistentVolumeClaim",
		"metadata": map[string]any{
			"name": name, "namespace": namespace, "labels": map[string]any{restoreLabel: restore},
		},
		"spec": spec,
	}
}

// restoreMode is the Backup's manifest renamed to the destination, one replica, in restore mode.
func restoreMode(backup *unstructured.Unstructured, namespace, deployment, restore string) map[string]any {
	manifest, _, _ := unstructured.NestedMap(backup.Object, "status", "manifest")
	source, _, _ := unstructured.NestedString(manifest, "metadata", "name")
	rename := func(path ...string) {
		labels, _, _ := unstructured.NestedStringMap(manifest, path...)
		for key, value := range labels {
			if value == source {
				labels[key] = deployment
			}
		}
		if labels != nil {
			_ = unstructured.SetNestedStringMap(manifest, labels, path...)
		}
	}
	rename("metadata", "labels")
	rename("spec", "selector", "matchLabels")
	rename("spec", "template", "metadata", "labels")
	labels, _, _ := unstructured.NestedStringMap(manifest, "metadata", "labels")
	if labels == nil {
		labels = map[string]string{}
	}
	labels[restoreLabel] = restore
	_ = unstructured.SetNestedStringMap(manifest, labels, "metadata", "labels")
	_ = unstructured.SetNestedField(manifest, deployment, "metadata", "name")
	_ = unstructured.SetNestedField(manifest, namespace, "metadata", "namespace")
	_ = unstructured.SetNestedField(manifest, "restore", "metadata", "annotations", modeKey)
	_ = unstructured.SetNestedField(manifest, "restore", "spec", "template", "metadata", "annotations", modeKey)
	_ = unstructured.SetNestedField(manifest, int64(1), "spec", "replicas")
	if service, _, _ := unstructured.NestedString(manifest, "spec", "serviceName"); service == source {
		_ = unstructured.SetNestedField(manifest, deployment, "spec", "serviceName")
	}
	return manifest
}

// healthy is Snapback's StatefulSet health: the latest spec observed, every replica ready and
// updated, no rolling update in progress.
func healthy(set *unstructured.Unstructured) bool {
	number := func(path ...string) int64 {
		value, _, _ := unstructured.NestedInt64(set.Object, path...)
		return value
	}
	text := func(path ...string) string {
		value, _, _ := unstructured.NestedString(set.Object, path...)
		return value
	}
	want, found, _ := unstructured.NestedInt64(set.Object, "spec", "replicas")
	if !found {
		want = 1
	}
	return number("status", "observedGeneration") >= set.GetGeneration() &&
		number("status", "readyReplicas") == want &&
		number("status", "updatedReplicas") == want &&
		number("status", "replicas") == want &&
		(text("status", "updateRevision") == "" ||
			text("status", "currentRevision") == text("status", "updateRevision"))
}
