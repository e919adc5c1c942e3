package collector

import (
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// appendPartitionKey builds exactly event.PartitionKey, and keysSize bounds
// the keys of a request.
func TestAppendPartitionKey(t *testing.T) {
	evs := []event.Event{
		{Tenant: "t", AgentID: "agent-1", UserID: "u", SessionKey: "s", TraceID: "abc"},
		{Tenant: "t", UserID: "u", ClientName: "claude", SessionKey: "s"},
		{Tenant: "acme", ClientName: "cursor"},
		{Tenant: "acme", UserID: "bob"},
		{Tenant: "t", SessionKey: "sess-1", TraceID: "abc"},
		{Tenant: "default", TraceID: "0123456789abcdef0123456789abcdef"},
		{},
	}
	var buf []byte
	for i := range evs {
		k0 := len(buf)
		buf = appendPartitionKey(buf, &evs[i])
		if got, want := string(buf[k0:]), evs[i].PartitionKey(); got != want {
			t.Errorf("event %d: key %q, want %q", i, got, want)
		}
	}
	if len(buf) > keysSize(evs) {
		t.Errorf("keys take %d bytes, bound %d", len(buf), keysSize(evs))
	}
}
