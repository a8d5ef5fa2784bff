// Command probe-demo is a program with a known heap, for memproofprobe's test and README: it holds SIZE bytes
// (os.Args[1]) and reports what the Go runtime itself says its heap objects are while it holds them.
package main

import (
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"

	"memproof.dev/clients/go/memproofprobe"
)

var held []byte

func main() {
	memproofprobe.Start()
	size, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe-demo: SIZE must be a number of bytes")
		os.Exit(2)
	}
	memproofprobe.Phase("allocate")
	held = make([]byte, size)
	for i := range held {
		held[i] = 1
	}
	memproofprobe.Phase("hold")
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	memproofprobe.Metric("runtime_heap_bytes", sample[0].Value.Uint64())
	memproofprobe.Metric("held_bytes", len(held))
	held = nil
	memproofprobe.Phase("release")
	memproofprobe.Finish()
}
