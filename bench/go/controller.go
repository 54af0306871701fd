package main

// What the restore and backup baselines share: the flags, informers of the reconciled objects and
// of the objects they made feeding one rate-limited workqueue, workers that retry with backoff,
// the finalizer, and the count of writes printed at SIGTERM.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync/atomic"

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

// controller is one baseline controller over a namespace: informers of every object of it (all)
// and of the objects the controller made, labelled with their owner's name (owned); the queue;
// and what it counted.
type controller struct {
	client     dynamic.Interface
	workers    int
	all        dynamicinformer.DynamicSharedInformerFactory
	owned      dynamicinformer.DynamicSharedInformerFactory
	ownerLabel string
	queue      workqueue.TypedRateLimitingInterface[string]
	writes     atomic.Int64
	conflicts  atomic.Int64
}

// newController parses the command's -namespace and -workers.
func newController(client dynamic.Interface, command, ownerLabel string, args []string) (*controller, error) {
	flags := flag.NewFlagSet(command, flag.ExitOnError)
	namespace := flags.String("namespace", "", "namespace of the objects to reconcile")
	workers := flags.Int("workers", 8, "reconcile workers")
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	if *namespace == "" {
		return nil, fmt.Errorf("-namespace is required")
	}
	return &controller{
		client:  client,
		workers: *workers,
		all:     dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, *namespace, nil),
		// Like Snapback's, the caches of dependencies hold only the objects the controller made.
		owned: dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, *namespace,
			func(options *metav1.ListOptions) { options.LabelSelector = ownerLabel }),
		ownerLabel: ownerLabel,
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.DefaultTypedControllerRateLimiter[string]()),
	}, nil
}

// watch names the reconciled resource and the made ones whose changes bring their owner back.
type watch struct {
	reconciled schema.GroupVersionResource
	made       []schema.GroupVersionResource
}

// run wires the informers, waits for their caches, prints "ready" on stderr, runs the workers
// until ctx ends, then prints the counts on stdout.
func (c *controller) run(ctx context.Context, w watch, reconcile func(context.Context, string) error) error {
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	enqueueOwner := func(obj any) {
		if object, ok := obj.(*unstructured.Unstructured); ok {
			if owner := object.GetLabels()[c.ownerLabel]; owner != "" {
				c.queue.Add(object.GetNamespace() + "/" + owner)
			}
		}
	}
	handlers := map[cache.SharedIndexInformer]func(any){c.all.ForResource(w.reconciled).Informer(): enqueue}
	for _, resource := range w.made {
		handlers[c.owned.ForResource(resource).Informer()] = enqueueOwner
	}
	for informer, handle := range handlers {
		if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    handle,
			UpdateFunc: func(_, obj any) { handle(obj) },
		}); err != nil {
			return err
		}
	}
	for _, factory := range []dynamicinformer.DynamicSharedInformerFactory{c.all, c.owned} {
		factory.Start(ctx.Done())
		factory.WaitForCacheSync(ctx.Done())
	}
	for range c.workers {
		go c.work(ctx, reconcile)
	}
	fmt.Fprintln(os.Stderr, "ready")
	<-ctx.Done()
	c.queue.ShutDown()
	return json.NewEncoder(os.Stdout).Encode(map[string]int64{"writes": c.writes.Load(), "conflicts": c.conflicts.Load()})
}

func (c *controller) work(ctx context.Context, reconcile func(context.Context, string) error) {
	for {
		key, shutdown := c.queue.Get()
		if shutdown {
			return
		}
		err := reconcile(ctx, key)
		switch {
		case apierrors.IsConflict(err):
			c.conflicts.Add(1)
			c.queue.AddRateLimited(key)
		case err != nil && ctx.Err() == nil:
			fmt.Fprintln(os.Stderr, key, err)
			c.queue.AddRateLimited(key)
		default:
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

// addFinalizer adds `name` with a merge patch guarded by the resourceVersion, as Snapback sets it
// (and as its RBAC allows); false when it was there already.
func (c *controller) addFinalizer(ctx context.Context, resource schema.GroupVersionResource, object *unstructured.Unstructured, name string) (bool, error) {
	if slices.Contains(object.GetFinalizers(), name) {
		return false, nil
	}
	return true, c.mergePatch(ctx, resource, object.GetNamespace(), object.GetName(), map[string]any{"metadata": map[string]any{
		"finalizers":      append(object.GetFinalizers(), name),
		"resourceVersion": object.GetResourceVersion(),
	}})
}

// mergePatch sends one JSON merge patch, counted.
func (c *controller) mergePatch(ctx context.Context, resource schema.GroupVersionResource, namespace, name string, patch map[string]any) error {
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	c.writes.Add(1)
	_, err = c.client.Resource(resource).Namespace(namespace).
		Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{})
	return err
}
