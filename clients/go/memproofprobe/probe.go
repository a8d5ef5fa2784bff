// Package memproofprobe is memproof's probe client for Go: heap samples, phases and metrics on memproof's probe
// protocol (version 1).
//
// Copy this one package into your module (standard library only) and call:
//
//	memproofprobe.Start()             // first thing: says hello and samples the heap on a goroutine
//	memproofprobe.Phase("load")       // a phase lasts until the next one
//	memproofprobe.Metric("rows", 12000)
//	memproofprobe.Finish()            // last thing: the final heap figures
//
// Run it under `cargo xtask measure --probe -- ./app`. The heap is runtime/metrics'
// "/memory/classes/heap/objects:bytes": the bytes of heap objects, live or not yet swept, read at each sample and at
// each phase mark, so the peak is the highest figure read. The totals are "/gc/heap/allocs:bytes" and
// "/gc/heap/allocs:objects". The channel is the file descriptor named by MEMPROOF_PROBE_FD; without it every call
// does nothing. Go's heap never goes through malloc, so `measure --heap preload` cannot see it: this package can.
package memproofprobe

import (
	"encoding/json"
	"os"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// ProtocolVersion is the version of memproof's probe protocol this package speaks.
const ProtocolVersion = 1

const (
	probeFdEnv      = "MEMPROOF_PROBE_FD"
	sampleMsEnv     = "MEMPROOF_SAMPLE_MS"
	defaultSampleMs = 10
	heapObjects     = "/memory/classes/heap/objects:bytes"
	allocBytes      = "/gc/heap/allocs:bytes"
	allocObjects    = "/gc/heap/allocs:objects"
)

var (
	mu      sync.Mutex
	channel *os.File
	peak    uint64
	stop    chan struct{}
	done    chan struct{}
)

// monoNs is CLOCK_MONOTONIC in nanoseconds, the clock memproof puts every line on (time.Now's monotonic reading
// counts from the process's start, so it cannot be compared with another process's).
func monoNs() uint64 {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1 /* CLOCK_MONOTONIC */, uintptr(unsafe.Pointer(&ts)), 0)
	return uint64(ts.Sec)*1_000_000_000 + uint64(ts.Nsec)
}

func send(line []byte) {
	if channel == nil {
		return
	}
	_, _ = channel.Write(append(line, '\n')) // memproof gone: nobody is listening
}

func read(names ...string) []uint64 {
	samples := make([]metrics.Sample, len(names))
	for i, name := range names {
		samples[i].Name = name
	}
	metrics.Read(samples)
	values := make([]uint64, len(names))
	for i, sample := range samples {
		if sample.Value.Kind() == metrics.KindUint64 {
			values[i] = sample.Value.Uint64()
		}
	}
	return values
}

// sample sends the heap now; the caller holds mu.
func sample() uint64 {
	heap := read(heapObjects)[0]
	if heap > peak {
		peak = heap
	}
	send([]byte(`{"type":"heap","mono_ns":` + strconv.FormatUint(monoNs(), 10) + `,"heap_bytes":` + strconv.FormatUint(heap, 10) + `}`))
	return heap
}

// Start connects to memproof's channel and samples the heap on a goroutine.
func Start() {
	mu.Lock()
	defer mu.Unlock()
	if channel != nil {
		return
	}
	fd, err := strconv.Atoi(os.Getenv(probeFdEnv))
	os.Unsetenv(probeFdEnv) // a program this one starts does not speak for it
	if err != nil || fd < 0 {
		return
	}
	syscall.CloseOnExec(fd) // programs this one starts do not speak for it
	channel = os.NewFile(uintptr(fd), "memproof-probe")
	interval := time.Duration(defaultSampleMs) * time.Millisecond
	if ms, err := strconv.Atoi(os.Getenv(sampleMsEnv)); err == nil && ms > 0 {
		interval = time.Duration(ms) * time.Millisecond
	}
	hello, _ := json.Marshal(map[string]any{"type": "hello", "protocol": ProtocolVersion, "pid": os.Getpid(), "meter": "go-runtime-metrics"})
	send(hello)
	sample()
	stop, done = make(chan struct{}), make(chan struct{})
	go func(stop, done chan struct{}) {
		defer close(done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ticker.C:
				mu.Lock()
				sample()
				mu.Unlock()
			}
		}
	}(stop, done)
}

// Phase marks the start of a phase; the heap is read first, so the figure at the mark is in the timeline.
func Phase(name string) {
	mu.Lock()
	defer mu.Unlock()
	if channel == nil {
		return
	}
	sample()
	quoted, _ := json.Marshal(name)
	send([]byte(`{"type":"phase","name":` + string(quoted) + `,"mono_ns":` + strconv.FormatUint(monoNs(), 10) + `}`))
}

// Metric reports one of the program's own figures (any JSON value); a later report of the same name replaces it.
func Metric(name string, value any) {
	mu.Lock()
	defer mu.Unlock()
	if channel == nil {
		return
	}
	line, err := json.Marshal(map[string]any{"type": "metric", "name": name, "value": value})
	if err == nil {
		send(line)
	}
}

// Finish stops the sampler and sends the final figures. Later calls do nothing.
func Finish() {
	mu.Lock()
	if channel == nil {
		mu.Unlock()
		return
	}
	close(stop)
	mu.Unlock()
	<-done
	mu.Lock()
	defer mu.Unlock()
	end := sample()
	totals := read(allocBytes, allocObjects)
	final, _ := json.Marshal(map[string]any{
		"type": "final", "peak_heap_bytes": peak, "end_heap_bytes": end,
		"total_alloc_bytes": totals[0], "alloc_count": totals[1], "mono_ns": monoNs(),
	})
	send(final)
	channel = nil
}
