package demo

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
)

// Receiver is a local HTTP endpoint that records webhook notifications (the
// analyzer's webhook receiver points at it).
type Receiver struct {
	URL string
	srv *http.Server

	mu       sync.Mutex
	received []Notification
}

// Notification is one request the receiver got.
type Notification struct {
	Path    string
	Headers http.Header
	Body    json.RawMessage
}

// StartReceiver listens on a free loopback port.
func StartReceiver() (*Receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Receiver{URL: "http://" + l.Addr().String()}
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(req.Body, 4<<20))
		r.mu.Lock()
		body := json.RawMessage(b)
		if !json.Valid(b) {
			body, _ = json.Marshal(string(b))
		}
		r.received = append(r.received, Notification{Path: req.URL.Path, Headers: req.Header.Clone(), Body: body})
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
