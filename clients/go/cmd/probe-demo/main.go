package main
import ("fmt"; "memproof.dev/clients/go/memproofprobe"; "runtime/metrics")
var keep [][]byte
func main(){ memproofprobe.Start(); for i:=0;i<64;i++ { keep = append(keep, make([]byte, 1<<20)) }
 s := []metrics.Sample{{Name:"/memory/classes/heap/objects:bytes"}}; metrics.Read(s)
 memproofprobe.Phase("hold"); memproofprobe.Metric("runtime_heap_bytes", s[0].Value.Uint64()); memproofprobe.Finish(); fmt.Println(len(keep)) }
