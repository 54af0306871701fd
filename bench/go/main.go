// Command snapback-bench-go holds the benchmarks' Go baselines: what the client-go idiom achieves
// on the same cluster with the same identity as the operator.
//
//	snapback-bench-go reconcile -namespace NS [-workers 8]
//	    Dynamic informers and a rate-limited workqueue that take each Restore in NS through
//	    Snapback's whole workflow with Snapback's writes (restore.go). Runs until SIGTERM, then
//	    prints {"writes":..,"conflicts":..} on stdout.
//	snapback-bench-go backup -namespace NS [-workers 8]
//	    The same for each Backup of NS: Snapback's backup workflow with Snapback's requests
//	    (backup.go).
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: %s reconcile|backup|cache [flags]", os.Args[0]))
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
	case "backup":
		err = backupCommand(ctx, client, os.Args[2:])
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
