package main

// The same-work baseline: the restore workflow Snapback runs, written the client-go way. Each
// Restore of the namespace goes through Snapback's phases with Snapback's writes: the finalizer,
// one status update per phase, a PVC from the Backup's snapshot, the StatefulSet from the Backup's
// manifest in restore mode, and the patch to normal mode. Dependencies (the PVC bound, the
// StatefulSet healthy) come from informers, as Snapback's do; nothing is read from the API server
// on the way.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
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
	client    dynamic.Interface
	restores  cache.GenericLister
	backups   cache.GenericLister
	claims    cache.GenericLister
	sets      cache.GenericLister
	queue     workqueue.TypedRateLimitingInterface[string]
	writes    atomic.Int64
	conflicts atomic.Int64
}

func reconcileCommand(ctx context.Context, client *dynamic.DynamicClient, args []string) error {
	flags := flag.NewFlagSet("reconcile", flag.ExitOnError)
	namespace := flags.String("namespace", "", "namespace of the Restores and their Backup")
	workers := flags.Int("workers", 8, "reconcile workers")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *namespace == "" {
		return fmt.Errorf("-namespace is required")
	}
	all := dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, *namespace, nil)
	// Like Snapback's, the caches of dependencies hold only the objects restores made.
	owned := dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, *namespace,
		func(options *metav1.ListOptions) { options.LabelSelector = restoreLabel })
	w := &workflow{
		client:   client,
		restores: all.ForResource(restores).Lister(),
		// Read from its cache only: ForResource registers the informer, all.Start runs it.
		backups: all.ForResource(backups).Lister(),
		claims:  owned.ForResource(claims).Lister(),
		sets:    owned.ForResource(statefulSets).Lister(),
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.DefaultTypedControllerRateLimiter[string]()),
	}
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			w.queue.Add(key)
		}
	}
	enqueueOwner := func(obj any) {
		if object, ok := obj.(*unstructured.Unstructured); ok {
			if owner := object.GetLabels()[restoreLabel]; owner != "" {
				w.queue.Add(object.GetNamespace() + "/" + owner)
			}
		}
	}
	handlers := []struct {
		informer cache.SharedIndexInformer
		enqueue  func(any)
	}{
		{all.ForResource(restores).Informer(), enqueue},
		{owned.ForResource(claims).Informer(), enqueueOwner},
		{owned.ForResource(statefulSets).Informer(), enqueueOwner},
	}
	for _, h := range handlers {
		if _, err := h.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    h.enqueue,
			UpdateFunc: func(_, obj any) { h.enqueue(obj) },
		}); err != nil {
			return err
		}
	}
	all.Start(ctx.Done())
	owned.Start(ctx.Done())
	all.WaitForCacheSync(ctx.Done())
	owned.WaitForCacheSync(ctx.Done())
	for range *workers {
		go w.run(ctx)
	}
	fmt.Fprintln(os.Stderr, "ready")
	<-ctx.Done()
	w.queue.ShutDown()
	return json.NewEncoder(os.Stdout).Encode(map[string]int64{
		"writes": w.writes.Load(), "conflicts": w.conflicts.Load(),
	})
}

func (w *workflow) run(ctx context.Context) {
	for {
		key, shutdown := w.queue.Get()
		if shutdown {
			return
		}
		err := w.reconcile(ctx, key)
		switch {
		case apierrors.IsConflict(err):
			w.conflicts.Add(1)
			w.queue.AddRateLimited(key)
		case err != nil && ctx.Err() == nil:
			fmt.Fprintln(os.Stderr, key, err)
			w.queue.AddRateLimited(key)
		default:
			w.queue.Forget(key)
		}
		w.queue.Done(key)
	}
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
	if !slices.Contains(restore.GetFinalizers(), finalizer) {
		// A merge patch guarded by the resourceVersion, as Snapback sets it (and as its RBAC allows).
		return w.mergePatch(ctx, restores, namespace, name, map[string]any{"metadata": map[string]any{
			"finalizers":      append(restore.GetFinalizers(), finalizer),
			"resourceVersion": restore.GetResourceVersion(),
		}})
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

// mergePatch sends one JSON merge patch, counted as a write.
func (w *workflow) mergePatch(ctx context.Context, resource schema.GroupVersionResource, namespace, name string, patch map[string]any) error {
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	w.writes.Add(1)
	_, err = w.client.Resource(resource).Namespace(namespace).
		Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{})
	return err
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
