package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
)

// Message is one delivery to one receiver, as stored in the outbox.
type Message struct {
	// ID is the idempotency key: deterministic from receiver, incident,
	// version and action, so enqueueing the same change twice is a no-op.
	ID       string `json:"id"`
	Seq      int64  `json:"seq"` // enqueue order (unix nanos); delivery is ordered per receiver+incident
	Receiver string `json:"receiver"`
	Route    string `json:"route,omitempty"`
	// Action: "trigger" or "resolve".
	Action   string              `json:"action"`
	Change   incident.ChangeKind `json:"change"`
	Incident incident.Incident   `json:"incident"`
	Findings []event.Finding     `json:"findings"`
	// Note: extra text (e.g. from a playbook's notify step).
	Note        string    `json:"note,omitempty"`
	Source      string    `json:"source,omitempty"` // "route" or "playbook:<name>"
	Created     time.Time `json:"created"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
}

// outbox is a directory of one JSON file per pending message, written with
// write-temp + fsync + rename + fsync(dir), so a message survives kill -9 and
// power loss once Enqueue returns. Delivered messages leave a marker in
// done/ (so a replayed change is not re-sent); undeliverable ones move to
// failed/.
type outbox struct {
	dir string
}

var idRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

func openOutbox(dir string) (*outbox, error) {
	for _, d := range []string{"pending", "done", "failed", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("cannot create outbox dir: %w", err)
		}
	}
	return &outbox{dir: dir}, nil
}

func (o *outbox) path(sub, id string) string { return filepath.Join(o.dir, sub, id) }

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// add stores m durably; false if a message with this id is pending or done.
func (o *outbox) add(m *Message) (bool, error) {
	if !idRe.MatchString(m.ID) {
		return false, fmt.Errorf("cannot enqueue message: bad id %q", m.ID)
	}
	if exists(o.path("pending", m.ID+".json")) || exists(o.path("done", m.ID)) || exists(o.path("failed", m.ID+".json")) {
		return false, nil
	}
	return true, o.write("pending", m)
}

func (o *outbox) write(sub string, m *Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("cannot encode message: %w", err)
	}
	tmp := o.path("tmp", m.ID+".json")
	if err := writeSync(tmp, b); err != nil {
		return err
	}
	if err := os.Rename(tmp, o.path(sub, m.ID+".json")); err != nil {
		return fmt.Errorf("cannot move message into outbox: %w", err)
	}
	return syncDir(filepath.Join(o.dir, sub))
}

func writeSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("cannot create outbox file: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("cannot write outbox file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot fsync outbox file: %w", err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("cannot open outbox dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("cannot fsync outbox dir: %w", err)
	}
	return nil
}

// done marks m delivered: the marker first, then the pending file goes.
// A crash in between leaves both; load() then drops the pending copy.
func (o *outbox) done(id string) error {
	if err := writeSync(o.path("done", id), nil); err != nil {
		return err
	}
	if err := os.Remove(o.path("pending", id+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove delivered message: %w", err)
	}
	return nil
}

// fail moves m to failed/ (kept for inspection and manual replay).
func (o *outbox) fail(m *Message) error {
	if err := o.write("failed", m); err != nil {
		return err
	}
	if err := os.Remove(o.path("pending", m.ID+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove failed message: %w", err)
	}
	return nil
}

// load returns the pending messages in enqueue order.
func (o *outbox) load() ([]*Message, error) {
	entries, err := os.ReadDir(filepath.Join(o.dir, "pending"))
	if err != nil {
		return nil, fmt.Errorf("cannot read outbox: %w", err)
	}
	var out []*Message
	for _, e := range entries {
		p := filepath.Join(o.dir, "pending", e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("cannot read outbox message: %w", err)
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			// Cannot happen through rename; keep the bytes aside rather than loop on them.
			_ = os.Rename(p, filepath.Join(o.dir, "failed", e.Name()))
			continue
		}
		if exists(o.path("done", m.ID)) {
			_ = os.Remove(p)
			continue
		}
		out = append(out, &m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// pruneDone removes done markers older than age.
func (o *outbox) pruneDone(age time.Duration, now time.Time) {
	entries, err := os.ReadDir(filepath.Join(o.dir, "done"))
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && now.Sub(info.ModTime()) > age {
			_ = os.Remove(filepath.Join(o.dir, "done", e.Name()))
		}
	}
}
