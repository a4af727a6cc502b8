// A Go service with net/http/pprof whose cache only grows (incident 004's shape in Go): 50
// times a second remember() keeps a new 64 KiB buffer forever, while each request also
// makes short-lived garbage, so the collector runs often and the heap profile is fresh.
// Prints "ready PORT" once listening.
package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"time"
)

var cache [][]byte
var sink []byte

func remember(n int) {
	cache = append(cache, make([]byte, n))
}

func churn() {
	for i := 0; i < 5; i++ {
		sink = make([]byte, 100_000)
	}
}

func main() {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		for {
			remember(64 << 10)
			churn()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	fmt.Printf("ready %d\n", listener.Addr().(*net.TCPAddr).Port)
	http.Serve(listener, nil)
}
