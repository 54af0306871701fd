// Command snapback-bench-go holds the benchmarks' Go baselines: what the client-go idiom achieves
// on the same cluster with the same identity as the operator.
//
//	snapback-bench-go reconcile -namespace NS -phases A,B,...,Z [-workers 8]
//	    A dynamic informer and a rate-limited workqueue that take each Restore in NS through
//	    the given phases, one status update per reconcile from the cached object, the way
//	    Snapback's reconciler does (finalizer first, then one write per phase). Runs until
//	    SIGTERM, then prints {"writes":..,"conflicts":..} on stdout.
//	snapback-bench-go cache [-namespace NS] [-settle 2s]
//	    Caches every Backup and Restore (of NS) in informers, then prints the sync time,
//	    the object count and the process's RSS and Go heap after a GC, and exits.
//
// The kubeconfig comes from $KUBECONFIG.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

const finalizer = "snapback.dev/restore-cleanup"

var (
	restores = schema.GroupVersionResource{Group: "snapback.dev", Version: "v1alpha1", Resource: "restores"}
	backups  = schema.GroupVersionResource{Group: "snapback.dev", Version: "v1alpha1", Resource: "backups"}
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: %s reconcile|cache [flags]", os.Args[0]))
	}
	config, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		fail(err)
	}
	// The operator's client has no client-side rate limit either: the server's fairness queues
	// are the limit under test.
	config.QPS, config.Burst = -1, 0
	config.UserAgent = "snapback-bench-go"
	client, err := dynamic.NewForConfig(config)
	if err != nil {
		fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch os.Args[1] {
	case "reconcile":
		err = reconcileCommand(ctx, client, os.Args[2:])
	case "cache":
		err = cacheCommand(ctx, client, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "snapback-bench-go:", err)
	os.Exit(1)
}

type reconciler struct {
	client    dynamic.NamespaceableResourceInterface
	lister    cache.GenericLister
	queue     workqueue.TypedRateLimitingInterface[string]
	phases    []string
	writes    atomic.Int64
	conflicts atomic.Int64
}

func reconcileCommand(ctx context.Context, client *dynamic.DynamicClient, args []string) error {
	flags := flag.NewFlagSet("reconcile", flag.ExitOnError)
	namespace := flags.String("namespace", "", "namespace of the Restores")
	phaseList := flags.String("phases", "", "comma-separated phases, the last one terminal")
	workers := flags.Int("workers", 8, "reconcile workers")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *namespace == "" || *phaseList == "" {
		return fmt.Errorf("-namespace and -phases are required")
	}

	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, *namespace, nil)
	informer := factory.ForResource(restores)
	r := &reconciler{
		client: client.Resource(restores),
		lister: informer.Lister(),
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.DefaultTypedControllerRateLimiter[string]()),
		phases: strings.Split(*phaseList, ","),
	}
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			r.queue.Add(key)
		}
	}
	if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	for range *workers {
		go r.run(ctx)
	}
	fmt.Fprintln(os.Stderr, "ready")
	<-ctx.Done()
	r.queue.ShutDown()
	return json.NewEncoder(os.Stdout).Encode(map[string]int64{
		"writes": r.writes.Load(), "conflicts": r.conflicts.Load(),
	})
}

func (r *reconciler) run(ctx context.Context) {
	for {
		key, shutdown := r.queue.Get()
		if shutdown {
			return
		}
		err := r.reconcile(ctx, key)
		switch {
		case apierrors.IsConflict(err):
			r.conflicts.Add(1)
			r.queue.AddRateLimited(key)
		case err != nil && ctx.Err() == nil:
			fmt.Fprintln(os.Stderr, key, err)
			r.queue.AddRateLimited(key)
		default:
			r.queue.Forget(key)
		}
		r.queue.Done(key)
	}
}

// reconcile takes one step: the finalizer, or the next phase; nothing once the last phase is set.
func (r *reconciler) reconcile(ctx context.Context, key string) error {
	obj, err := r.lister.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	restore := obj.(*unstructured.Unstructured).DeepCopy()
	client := r.client.Namespace(restore.GetNamespace())
	if !slices.Contains(restore.GetFinalizers(), finalizer) {
		// A merge patch guarded by the resourceVersion, as Snapback sets it (and as its RBAC allows).
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"finalizers":      append(restore.GetFinalizers(), finalizer),
			"resourceVersion": restore.GetResourceVersion(),
		}})
		if err != nil {
			return err
		}
		_, err = client.Patch(ctx, restore.GetName(), types.MergePatchType, patch, metav1.PatchOptions{})
		r.writes.Add(1)
		return err
	}
	phase, _, _ := unstructured.NestedString(restore.Object, "status", "phase")
	index := slices.Index(r.phases, phase)
	if index == len(r.phases)-1 {
		return nil
	}
	next := r.phases[index+1] // index -1 (no phase yet) starts at the first phase
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
	_, err = client.UpdateStatus(ctx, restore, metav1.UpdateOptions{})
	r.writes.Add(1)
	return err
}

func cacheCommand(ctx context.Context, client *dynamic.DynamicClient, args []string) error {
	flags := flag.NewFlagSet("cache", flag.ExitOnError)
	namespace := flags.String("namespace", "", "namespace to cache (empty: all)")
	settle := flags.Duration("settle", 2*time.Second, "idle time before memory is read")
	if err := flags.Parse(args); err != nil {
		return err
	}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(client, 0, *namespace, nil)
	informers := []cache.SharedIndexInformer{
		factory.ForResource(backups).Informer(), factory.ForResource(restores).Informer(),
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	synced := time.Since(processStart())
	time.Sleep(*settle)
	runtime.GC()
	var memory runtime.MemStats
	runtime.ReadMemStats(&memory)
	objects := 0
	for _, informer := range informers {
		objects += len(informer.GetStore().ListKeys())
	}
	rss, err := residentBytes()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"objects": objects, "syncSeconds": synced.Seconds(),
		"rssBytes": rss, "heapBytes": memory.HeapAlloc,
	})
}

// processStart reads the process's start time from /proc (field 22 of stat, in clock ticks
// since boot), so that sync times count from process start as for the Node processes.
func processStart() time.Time {
	stat, err1 := os.ReadFile("/proc/self/stat")
	uptime, err2 := os.ReadFile("/proc/uptime")
	if err1 != nil || err2 != nil {
		return time.Now()
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	ticks, _ := strconv.ParseFloat(fields[19], 64)
	up, _ := strconv.ParseFloat(strings.Fields(string(uptime))[0], 64)
	return time.Now().Add(-time.Duration((up - ticks/100) * float64(time.Second)))
}

// residentBytes reads VmRSS from /proc/self/status.
func residentBytes() (int64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if value, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/self/status")
}
