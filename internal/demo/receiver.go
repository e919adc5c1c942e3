package demo

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
)

// Receiver is a local HTTP endpoint that records what the analyzer sends
// it: webhook notifications (under /webhook, HMAC-verified with Secret) and
// the gateway calls of playbooks (under /gateway, standing in for an MCP
// gateway's admin API).
type Receiver struct {
	URL    string
	Secret string // webhook HMAC key
	srv    *http.Server

	mu       sync.Mutex
	received []Notification
}

// Notification is one request the receiver got.
type Notification struct {
	Path    string
	Headers http.Header
	Body    json.RawMessage
	// SignatureOK: the X-Mcpwatch-Signature header is the HMAC-SHA256 of
	// "<X-Mcpwatch-Timestamp>.<body>" with the receiver's secret.
	SignatureOK bool
}

// StartReceiver listens on a free loopback port.
func StartReceiver() (*Receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{URL: "http://" + l.Addr().String(), Secret: randomToken()}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 4<<20))
		r.mu.Lock()
		body := json.RawMessage(b)
		if !json.Valid(b) {
			body, _ = json.Marshal(string(b))
		}
		r.received = append(r.received, Notification{Path: req.URL.Path, Headers: req.Header.Clone(), Body: body,
			SignatureOK: validSignature(r.Secret, req.Header, b)})
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})}
	go r.srv.Serve(l)
	return r, nil
}

// Received returns a copy of what arrived so far.
func (r *Receiver) Received() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Notification(nil), r.received...)
}

// Close stops the server.
func (r *Receiver) Close() { r.srv.Close() }

func validSignature(secret string, h http.Header, body []byte) bool {
	ts, sig := h.Get("X-Mcpwatch-Timestamp"), h.Get("X-Mcpwatch-Signature")
	if ts == "" || sig == "" {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return hmac.Equal([]byte("sha256="+hex.EncodeToString(mac.Sum(nil))), []byte(sig))
}

// Webhooks returns the notifications received on /webhook.
func (r *Receiver) Webhooks() []Notification { return r.under("/webhook") }

// GatewayCalls returns the playbook requests received on /gateway.
func (r *Receiver) GatewayCalls() []Notification { return r.under("/gateway") }

func (r *Receiver) under(prefix string) []Notification {
	var out []Notification
	for _, n := range r.Received() {
		if len(n.Path) >= len(prefix) && n.Path[:len(prefix)] == prefix {
			out = append(out, n)
		}
	}
	return out
}
