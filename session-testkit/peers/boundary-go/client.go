package main

// The client: what `boundary connect` does for one proxied connection
// (boundary.md §4.1-§4.2, §4.6), reporting each step's outcome as one JSON
// line so a test can assert on close codes and reason texts.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"nhooyr.io/websocket"
)

// outcome is the one JSON line the client prints.
type outcome struct {
	// Stage reached: tls, upgrade, handshake, data, done.
	Stage           string `json:"stage"`
	Error           string `json:"error,omitempty"`
	CloseCode       int    `json:"close_code,omitempty"`
	CloseReason     string `json:"close_reason,omitempty"`
	ALPN            string `json:"alpn,omitempty"`
	Expiration      string `json:"expiration,omitempty"`
	ConnectionLimit int32  `json:"connection_limit"`
	ConnectionsLeft int32  `json:"connections_left"`
	Echoed          int    `json:"echoed"`
}

func (o *outcome) fail(stage string, err error) {
	o.Stage = stage
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		o.CloseCode, o.CloseReason = int(ce.Code), ce.Reason
	}
	if err != nil {
		o.Error = err.Error()
	}
}

func runClient(args []string) {
	flags := flag.NewFlagSet("client", flag.ExitOnError)
	workerAddr := flags.String("worker", "", "worker host:port")
	sessionFile := flags.String("session", "", "session JSON file")
	tofu := flags.String("tofu", "", "TOFU token")
	cancelIt := flags.Bool("cancel", false, "send SESSION_CANCEL")
	send := flags.Int("send", 0, "bytes to send and expect echoed")
	writeSize := flags.Int("write-size", 16*1024, "bytes per write (one message each)")
	noCert := flags.Bool("no-cert", false, "present no client certificate")
	noALPN := flags.Bool("no-alpn-session", false, "offer only http/1.1 in ALPN")
	sni := flags.String("sni", "", "server name to send (none by default, as for an IP literal)")
	flags.Parse(args)

	var o outcome
	defer func() {
		line, _ := json.Marshal(o)
		fmt.Println(string(line))
	}()
	raw, err := os.ReadFile(*sessionFile)
	if err != nil {
		o.fail("setup", err)
		return
	}
	var s session
	if err := json.Unmarshal(raw, &s); err != nil {
		o.fail("setup", err)
		return
	}
	cert, _, err := s.identity()
	if err != nil {
		o.fail("setup", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Not WebPKI: the worker must present the session certificate itself.
	config := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		MaxVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true,
		ServerName:         *sni,
		NextProtos:         []string{"http/1.1", s.ID},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, s.Certificate) {
				return errors.New("worker certificate is not the session certificate")
			}
			return nil
		},
	}
	if *noALPN {
		config.NextProtos = []string{"http/1.1"}
	}
	if !*noCert {
		config.Certificates = []tls.Certificate{cert}
	}
	tcp, err := net.Dial("tcp", *workerAddr)
	if err != nil {
		o.fail("tls", err)
		return
	}
	conn := tls.Client(tcp, config)
	if err := conn.HandshakeContext(ctx); err != nil {
		o.fail("tls", err)
		return
	}
	o.ALPN = conn.ConnectionState().NegotiatedProtocol

	// The upgrade runs over the TLS connection already made; the scheme is
	// ws because TLS is underneath.
	transport := &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil },
	}
	ws, _, err := websocket.Dial(ctx, "ws://"+*workerAddr+"/v1/proxy", &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: transport},
		Subprotocols: []string{subprotocol},
	})
	if err != nil {
		o.fail("upgrade", err)
		return
	}
	if ws.Subprotocol() != subprotocol {
		o.fail("upgrade", fmt.Errorf("worker answered subprotocol %q", ws.Subprotocol()))
		ws.Close(websocket.StatusProtocolError, "")
		return
	}

	hello := clientHandshake{tofuToken: *tofu}
	if *cancelIt {
		hello.command = 1
	}
	if err := ws.Write(ctx, websocket.MessageBinary, hello.marshal()); err != nil {
		o.fail("handshake", err)
		return
	}
	_, msg, err := ws.Read(ctx)
	if err != nil {
		o.fail("handshake", err)
		return
	}
	result, err := parseHandshakeResult(msg)
	if err != nil {
		o.fail("handshake", err)
		return
	}
	o.Stage = "handshake"
	o.Expiration = result.expiration.Format(time.RFC3339Nano)
	o.ConnectionLimit, o.ConnectionsLeft = result.connectionLimit, result.connectionsLeft
	if *send == 0 {
		ws.Close(websocket.StatusNormalClosure, "")
		return
	}

	// Each NetConn write is one binary message, so -write-size decides the
	// message size the worker sees.
	nc := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	payload := make([]byte, *send)
	for i := range payload {
		payload[i] = byte(i * 7 % 251)
	}
	go func() {
		for rest := payload; len(rest) > 0; {
			n := *writeSize
			if n > len(rest) {
				n = len(rest)
			}
			if _, err := nc.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
	}()
	echo := make([]byte, *send)
	n, err := io.ReadFull(nc, echo)
	o.Echoed = n
	if err != nil {
		// NetConn hides the close frame; ask the Conn for it.
		_, _, rerr := ws.Read(ctx)
		if rerr != nil && websocket.CloseStatus(rerr) != -1 {
			err = rerr
		}
		o.fail("data", err)
		return
	}
	if !bytes.Equal(echo, payload) {
		o.fail("data", errors.New("echo differs from what was sent"))
		return
	}
	o.Stage = "done"
	ws.Close(websocket.StatusNormalClosure, "")
}
