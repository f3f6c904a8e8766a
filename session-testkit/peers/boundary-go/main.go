// Command boundary-go speaks Boundary's connect proxy protocol on the stack
// of the real Boundary (<= 0.13) worker and client: Go crypto/tls,
// nhooyr.io/websocket 1.8.7 (whose NetConn keeps the 32 KiB read limit) and
// protowire. It exists so that session-testkit's Rust fake worker and our
// Rust client are each checked against an implementation that is not ours
// (boundary.md §4, tunnel-peers.md §3).
//
//	boundary-go worker -listen 127.0.0.1:0
//	boundary-go client -worker ADDR -session FILE.json -tofu T [-cancel]
//	                   [-send N] [-write-size K] [-no-cert] [-no-alpn-session]
//	                   [-sni NAME]
//
// Sessions (worker: one JSON line each on stdin; client: the -session file)
// are {"session_id", "certificate" (DER, base64), "private_key" (PKCS#8,
// base64), "connection_limit", "expiration" (RFC 3339), "endpoint"
// ("tcp://host:port")}.
//
// Build: GO111MODULE=off GOPATH=/usr/share/gocode go build -o OUT .
// (Debian: golang-go golang-nhooyr-websocket-dev golang-google-protobuf-dev).
package main

import (
	"crypto"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

const subprotocol = "boundary-tcp-proxy-v1"

// session is one session as the worker or the client is given it.
type session struct {
	ID              string    `json:"session_id"`
	Certificate     []byte    `json:"certificate"`
	PrivateKey      []byte    `json:"private_key"`
	ConnectionLimit int32     `json:"connection_limit"`
	Expiration      time.Time `json:"expiration"`
	Endpoint        string    `json:"endpoint"`
}

// identity is the session certificate with its key, as both sides present
// it. rcgen writes PKCS#8 v2 (public key appended); if Go's parser refuses
// it, the seed sits at bytes 16..48 in both versions (boundary.md §3).
func (s *session) identity() (tls.Certificate, *x509.Certificate, error) {
	leaf, err := x509.ParseCertificate(s.Certificate)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("session certificate: %w", err)
	}
	var key crypto.PrivateKey
	if parsed, err := x509.ParsePKCS8PrivateKey(s.PrivateKey); err == nil {
		key = parsed
	} else if len(s.PrivateKey) >= 48 {
		key = ed25519.NewKeyFromSeed(s.PrivateKey[16:48])
	} else {
		return tls.Certificate{}, nil, fmt.Errorf("session key: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{s.Certificate}, PrivateKey: key, Leaf: leaf}, leaf, nil
}

// clientHandshake is worker.proxy.v1.ClientHandshake.
type clientHandshake struct {
	tofuToken string // field 10
	command   uint64 // field 20; 1 = SESSION_CANCEL
}

func (h clientHandshake) marshal() []byte {
	var b []byte
	if h.tofuToken != "" {
		b = protowire.AppendTag(b, 10, protowire.BytesType)
		b = protowire.AppendString(b, h.tofuToken)
	}
	if h.command != 0 {
		b = protowire.AppendTag(b, 20, protowire.VarintType)
		b = protowire.AppendVarint(b, h.command)
	}
	return b
}

func parseClientHandshake(b []byte) (clientHandshake, error) {
	var h clientHandshake
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 10 && typ == protowire.BytesType:
			h.tofuToken = string(v)
		case num == 20 && typ == protowire.VarintType:
			h.command = n
		}
		return nil
	})
	return h, err
}

// handshakeResult is worker.proxy.v1.HandshakeResult.
type handshakeResult struct {
	expiration      time.Time // field 10, google.protobuf.Timestamp
	connectionLimit int32     // field 20
	connectionsLeft int32     // field 30
}

func (r handshakeResult) marshal() []byte {
	var ts []byte
	if s := r.expiration.Unix(); s != 0 {
		ts = protowire.AppendTag(ts, 1, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(s))
	}
	if n := r.expiration.Nanosecond(); n != 0 {
		ts = protowire.AppendTag(ts, 2, protowire.VarintType)
		ts = protowire.AppendVarint(ts, uint64(int64(n)))
	}
	b := protowire.AppendTag(nil, 10, protowire.BytesType)
	b = protowire.AppendBytes(b, ts)
	// int32 fields: negative values are sign-extended to 10-byte varints.
	if r.connectionLimit != 0 {
		b = protowire.AppendTag(b, 20, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(r.connectionLimit)))
	}
	if r.connectionsLeft != 0 {
		b = protowire.AppendTag(b, 30, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(r.connectionsLeft)))
	}
	return b
}

func parseHandshakeResult(b []byte) (handshakeResult, error) {
	var r handshakeResult
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch {
		case num == 10 && typ == protowire.BytesType:
			var secs, nanos int64
			if err := eachField(v, func(num protowire.Number, typ protowire.Type, _ []byte, n uint64) error {
				if typ == protowire.VarintType && num == 1 {
					secs = int64(n)
				} else if typ == protowire.VarintType && num == 2 {
					nanos = int64(int32(n))
				}
				return nil
			}); err != nil {
				return err
			}
			r.expiration = time.Unix(secs, nanos).UTC()
		case num == 20 && typ == protowire.VarintType:
			r.connectionLimit = int32(n)
		case num == 30 && typ == protowire.VarintType:
			r.connectionsLeft = int32(n)
		}
		return nil
	})
	return r, err
}

// eachField walks a protobuf message, skipping unknown fields as proto3
// parsers do.
func eachField(b []byte, f func(protowire.Number, protowire.Type, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var bytes []byte
		var varint uint64
		switch typ {
		case protowire.BytesType:
			bytes, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			varint, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, bytes, varint); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: boundary-go worker|client [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "worker":
		runWorker(os.Args[2:])
	case "client":
		runClient(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
}
