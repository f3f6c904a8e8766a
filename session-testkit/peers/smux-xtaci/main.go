// Command smux-xtaci is an smux v1 server built on xtaci/smux, the library
// the real SSM agent and session-manager-plugin use. The fake SSM agent of
// session-testkit can run it behind its data channel (SmuxServer::Xtaci), so
// that our client's hand-written smux is checked against the reference
// implementation and not only against a Rust crate.
//
// It speaks smux on stdin/stdout, dials -target for each stream the client
// opens and copies both ways. It reports on stderr, one line per event, for
// the fake to record:
//
//	stream <id>          a stream was accepted
//	connected <id>       its target was dialled
//	dial-failed <id>     the dial failed; the stream is closed (FIN)
//	session-closed: <e>  the smux session ended (keepalive timeout, stdin
//	                     closed, protocol error); the program exits with 3
//
// Build: GO111MODULE=off GOPATH=/usr/share/gocode go build -o OUT main.go
// (Debian: golang-go golang-github-xtaci-smux-dev).
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/xtaci/smux"
)

// stdio is the smux session's connection: the fake writes the client's
// Output payloads to stdin and reads ours from stdout.
type stdio struct{}

func (stdio) Read(p []byte) (int, error)  { return os.Stdin.Read(p) }
func (stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }
func (stdio) Close() error                { os.Stdin.Close(); return os.Stdout.Close() }

// Streams report concurrently; a lock keeps each line whole.
var stderr sync.Mutex

func report(format string, args ...interface{}) {
	stderr.Lock()
	defer stderr.Unlock()
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func main() {
	defaults := smux.DefaultConfig()
	target := flag.String("target", "", "HOST:PORT to dial for each stream")
	interval := flag.Duration("keepalive-interval", defaults.KeepAliveInterval, "NOP every")
	timeout := flag.Duration("keepalive-timeout", defaults.KeepAliveTimeout, "close the session after this long without input")
	noKeepalive := flag.Bool("no-keepalive", false, "send no NOPs and never time out")
	flag.Parse()
	if *target == "" {
		fmt.Fprintln(os.Stderr, "usage: smux-xtaci -target HOST:PORT [-keepalive-interval D] [-keepalive-timeout D] [-no-keepalive]")
		os.Exit(2)
	}

	config := defaults
	config.Version = 1 // the SSM agent speaks v1 (no per-stream window)
	config.KeepAliveInterval = *interval
	config.KeepAliveTimeout = *timeout
	config.KeepAliveDisabled = *noKeepalive
	session, err := smux.Server(stdio{}, config)
	if err != nil {
		report("bad config: %v", err)
		os.Exit(2)
	}
	for {
		stream, err := session.AcceptStream()
		if err != nil {
			report("session-closed: %v", err)
			os.Exit(3)
		}
		report("stream %d", stream.ID())
		go serve(stream, *target)
	}
}

// serve bridges one stream to a fresh TCP connection to target.
func serve(stream *smux.Stream, target string) {
	conn, err := net.Dial("tcp", target)
	if err != nil {
		report("dial-failed %d", stream.ID())
		stream.Close()
		return
	}
	report("connected %d", stream.ID())
	tcp := conn.(*net.TCPConn)
	upDone := make(chan struct{})
	go func() {
		// The client's FIN becomes a TCP half-close, so the target can
		// still answer what it was sent.
		io.Copy(tcp, stream)
		tcp.CloseWrite()
		close(upDone)
	}()
	// The target's EOF becomes our FIN. An xtaci stream has no half-close:
	// Close also ends reading, as it does in the real agent.
	io.Copy(stream, tcp)
	stream.Close()
	<-upDone
	tcp.Close()
}
