package main

// The stand-in worker: internal/daemon/worker's TLS and proxy handling
// (boundary.md §4.2, §4.4), with its controller reduced to in-memory state.

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"nhooyr.io/websocket"
)

// state is what the controller would hold for one session.
type state struct {
	session
	cert   tls.Certificate
	leaf   *x509.Certificate
	status string // pending, active, canceling
	tofu   string
	used   int32
}

type worker struct {
	mu       sync.Mutex
	sessions map[string]*state
	out      sync.Mutex
}

// event prints one line for the harness; lines never interleave.
func (w *worker) event(format string, args ...interface{}) {
	w.out.Lock()
	defer w.out.Unlock()
	fmt.Printf(format+"\n", args...)
}

func (w *worker) lookup(id string) *state {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sessions[id]
}

func runWorker(args []string) {
	flags := flag.NewFlagSet("worker", flag.ExitOnError)
	listen := flags.String("listen", "127.0.0.1:0", "address to listen on")
	flags.Parse(args)

	w := &worker{sessions: map[string]*state{}}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go w.readSessions()
	base := &tls.Config{MinVersion: tls.VersionTLS13, GetConfigForClient: w.configFor}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/proxy", w.proxy)
	srv := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0)}
	w.event("listening %s", ln.Addr())
	srv.Serve(tls.NewListener(ln, base))
}

// readSessions adds the sessions given on stdin; the harness closing stdin
// (or dying) ends the worker.
func (w *worker) readSessions() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var s state
		if err := json.Unmarshal(in.Bytes(), &s.session); err != nil {
			w.event("bad-session %v", err)
			continue
		}
		cert, leaf, err := s.identity()
		if err != nil {
			w.event("bad-session %v", err)
			continue
		}
		s.cert, s.leaf, s.status = cert, leaf, "pending"
		w.mu.Lock()
		w.sessions[s.ID] = &s
		w.mu.Unlock()
		w.event("session %s", s.ID)
	}
	os.Exit(0)
}

// configFor picks the session from SNI, else from ALPN; an error here makes
// crypto/tls send an internal_error alert, as the real worker does.
func (w *worker) configFor(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	id := ""
	if strings.HasPrefix(hello.ServerName, "s_") {
		id = hello.ServerName
	} else {
		for _, p := range hello.SupportedProtos {
			if strings.HasPrefix(p, "s_") {
				id = p
				break
			}
		}
	}
	s := w.lookup(id)
	if s == nil {
		w.event("tls-refused %q", id)
		return nil, errors.New("unknown session")
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{s.cert},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{"http/1.1"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytesEqual(cs.PeerCertificates[0].Raw, s.Certificate) {
				return errors.New("client certificate is not the session certificate")
			}
			roots := x509.NewCertPool()
			roots.AddCert(s.leaf)
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots:     roots,
				DNSName:   s.ID,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
			})
			return err
		},
	}, nil
}

func bytesEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

func (w *worker) proxy(rw http.ResponseWriter, r *http.Request) {
	var s *state
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		for _, name := range r.TLS.PeerCertificates[0].DNSNames {
			if strings.HasPrefix(name, "s_") {
				s = w.lookup(name)
				break
			}
		}
	}
	if s == nil {
		w.event("upgrade-refused 500")
		rw.WriteHeader(http.StatusInternalServerError)
		return
	}
	conn, err := websocket.Accept(rw, r, &websocket.AcceptOptions{Subprotocols: []string{subprotocol}})
	if err != nil {
		w.event("upgrade-failed %s %v", s.ID, err)
		return
	}
	if conn.Subprotocol() != subprotocol {
		conn.Close(websocket.StatusProtocolError, "unsupported subprotocol")
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), s.Expiration)
	defer cancel()
	refuse := func(code websocket.StatusCode, reason string) {
		w.event("handshake %s close %d %s", s.ID, int(code), reason)
		conn.Close(code, reason)
	}
	_, msg, err := conn.Read(ctx)
	if err != nil {
		w.event("handshake %s gone %v", s.ID, err)
		return
	}
	hello, err := parseClientHandshake(msg)
	if err != nil {
		refuse(websocket.StatusPolicyViolation, "invalid handshake received")
		return
	}
	if len(hello.tofuToken) != 20 {
		refuse(websocket.StatusUnsupportedData, "invalid tofu token")
		return
	}
	if hello.command == 1 {
		w.mu.Lock()
		s.status = "canceling"
		w.mu.Unlock()
		w.event("canceled %s", s.ID)
		refuse(websocket.StatusNormalClosure, "session canceled")
		return
	}
	result, code, reason := w.admit(s, hello.tofuToken)
	if reason != "" {
		refuse(code, reason)
		return
	}
	if err := conn.Write(ctx, websocket.MessageBinary, result.marshal()); err != nil {
		w.event("handshake %s close 1002 unable to send handshake result", s.ID)
		return
	}
	w.event("handshake %s ok left %d", s.ID, result.connectionsLeft)
	w.splice(ctx, s, conn)
}

// admit applies rules 4-7 of boundary.md §4.4 to the in-memory state.
func (w *worker) admit(s *state, tofu string) (handshakeResult, websocket.StatusCode, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case s.tofu != "" && subtle.ConstantTimeCompare([]byte(s.tofu), []byte(tofu)) != 1:
		return handshakeResult{}, websocket.StatusPolicyViolation, "tofu token not allowed"
	case s.tofu == "" && s.status != "pending":
		return handshakeResult{}, websocket.StatusInternalError, "refusing to activate session"
	case s.tofu == "":
		s.tofu, s.status = tofu, "active"
		w.event("activated %s", s.ID)
	}
	if s.status != "active" || !time.Now().Before(s.Expiration) ||
		(s.ConnectionLimit >= 0 && s.used >= s.ConnectionLimit) {
		return handshakeResult{}, websocket.StatusInternalError, "unable to authorize connection"
	}
	s.used++
	left := int32(-1)
	if s.ConnectionLimit >= 0 {
		left = s.ConnectionLimit - s.used
	}
	return handshakeResult{s.Expiration, s.ConnectionLimit, left}, 0, ""
}

// splice copies through websocket.NetConn, as the real worker's TCP proxy
// does; its default 32 KiB read limit is what older workers enforce.
func (w *worker) splice(ctx context.Context, s *state, conn *websocket.Conn) {
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Scheme != "tcp" {
		w.event("handshake %s close 1002 unable to parse endpoint", s.ID)
		conn.Close(websocket.StatusProtocolError, "unable to parse endpoint")
		return
	}
	tcp, err := net.Dial("tcp", u.Host)
	if err != nil {
		w.event("handshake %s close 3000 unable to setup proxying", s.ID)
		conn.Close(websocket.StatusCode(3000), "unable to setup proxying")
		return
	}
	nc := websocket.NetConn(ctx, conn, websocket.MessageBinary)
	var up, down int64
	done := make(chan struct{}, 2)
	go func() { up, _ = io.Copy(tcp, nc); tcp.Close(); done <- struct{}{} }()
	go func() { down, _ = io.Copy(nc, tcp); done <- struct{}{} }()
	<-done
	tcp.Close()
	conn.Close(websocket.StatusNormalClosure, "done")
	<-done
	w.event("connection %s up %d down %d", s.ID, up, down)
}
