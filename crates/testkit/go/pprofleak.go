// A Go service with net/http/pprof that leaks goroutines: each one blocks forever in
// leakyWait on a channel nobody sends to (incident 002's shape). Prints "ready PORT" once
// listening and N goroutines are leaked. `pprofleak N RATE`: then RATE more a second, each
// started by handle, as a request handler would.
package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"strconv"
	"time"
)

func leakyWait(reply chan int) {
	<-reply
}

func handle() {
	go leakyWait(make(chan int))
}

func main() {
	n := 50
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	for i := 0; i < n; i++ {
		go leakyWait(make(chan int))
	}
	if len(os.Args) > 2 {
		rate, _ := strconv.Atoi(os.Args[2])
		if rate > 0 {
			go func() {
				for range time.Tick(time.Second / time.Duration(rate)) {
					handle()
				}
			}()
		}
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", listener.Addr().(*net.TCPAddr).Port)
	http.Serve(listener, nil)
}
