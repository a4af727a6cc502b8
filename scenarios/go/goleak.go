// Incident 002 in miniature: a service that leaks a goroutine per request and dies every
// minute, with the reason only on stderr.
//
// Every 200 ms a "request" starts a goroutine that waits forever for a reply that never
// comes. Goroutines are not OS threads, and the agent does not scrape go_goroutines yet,
// so each leaked goroutine waits on its own pipe: two fds per goroutine, which the sampler
// sees as fds of kind "pipe". After 60 s the process fails the way the incident's did:
// "fatal error" on stderr and exit status 2.
package main

import (
	"fmt"
	"os"
	"time"
)

func handle(leaked *int) {
	reader, writer, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pipe: %v\n", err)
		return
	}
	*leaked++
	go func() {
		// The bug: nobody ever writes the reply or closes the writer.
		buffer := make([]byte, 1)
		reader.Read(buffer)
		writer.Close()
	}()
}

func main() {
	fmt.Println("ready")
	started := time.Now()
	leaked := 0
	ticker := time.NewTicker(200 * time.Millisecond)
	for range ticker.C {
		handle(&leaked)
		if time.Since(started) >= 60*time.Second {
			fmt.Fprintf(os.Stderr, "fatal error: all goroutines are asleep - %d waiting on replies\n", leaked)
			os.Exit(2)
		}
	}
}
