// gothreads: a Go program that leaks OS threads and files, for the creation-site tests
// (issue 14). "threads": every 20 ms a goroutine locks its OS thread and blocks forever,
// so the runtime starts one more OS thread; "files": every 20 ms openLog opens a file and
// keeps it. Prints "ready" first.
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

var kept []*os.File

func pinWorker() {
	go func() {
		runtime.LockOSThread()
		select {}
	}()
}

func openLog() {
	f, err := os.Open("/dev/null")
	if err == nil {
		kept = append(kept, f)
	}
}

func main() {
	mode := "threads"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	fmt.Println("ready")
	for {
		if mode == "files" {
			openLog()
		} else {
			pinWorker()
		}
		time.Sleep(20 * time.Millisecond)
	}
}
