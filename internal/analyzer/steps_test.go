package analyzer

import (
	"context"
	"testing"
	"time"

	"github.com/mcpwatch/mcpwatch/detections"
	"github.com/mcpwatch/mcpwatch/internal/detect"
	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/kafka"
	"github.com/mcpwatch/mcpwatch/internal/testbed"
)

// TestStepsReaderBarrier: a first step one ingest instance announced is
// known to another instance once that one's sync returns (the barrier a
// flush passes before it filters its inputs), and to an instance started
// afterwards (a restart reads the topic from its start). Without the
// steps topic and with create_topics off, nothing is gated.
func TestStepsReaderBarrier(t *testing.T) {
	k := testbed.Kfake(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pack, err := detect.Load(detections.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	packOf := func() *detect.Pack { return pack }
	bad := func(err error) { t.Errorf("undecodable notice: %v", err) }
	off := false
	kc := kafka.Config{Brokers: k.Brokers, DetectTopic: "de", CreateTopics: &off}
	if r, err := newStepsReader(ctx, kc, packOf, bad); r != nil || err != nil {
		t.Fatalf("no steps topic, create_topics off: reader %v, err %v; want neither", r, err)
	}
	if err := k.CreateTopic(ctx, "de.steps", 1); err != nil {
		t.Fatal(err)
	}
	open := func() *stepsReader {
		t.Helper()
		r, err := newStepsReader(ctx, kc, packOf, bad)
		if err != nil || r == nil {
			t.Fatalf("reader: %v, %v", r, err)
		}
		t.Cleanup(r.close)
		return r
	}
	a, b := open(), open()
	const rule = "mcp-tool-changed-then-called"
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	call := func() []detect.Input {
		return []detect.Input{{RuleID: rule, Tenant: "acme", Group: "mail\x00send", Conds: 2, Event: &event.Event{Time: t0.Add(time.Minute)}}}
	}
	sync := func(r *stepsReader) {
		t.Helper()
		sctx, c := context.WithTimeout(ctx, 20*time.Second)
		defer c()
		if err := r.sync(sctx); err != nil {
			t.Fatal(err)
		}
	}
	sync(b)
	if kept, dropped := b.gate.Filter(pack, call()); len(kept) != 0 || dropped != 1 {
		t.Fatalf("before any first step: kept %d, dropped %d", len(kept), dropped)
	}
	if err := a.publish(ctx, []detect.StepNotice{{Rule: rule, Tenant: "acme", Group: "mail\x00send", Time: t0}}); err != nil {
		t.Fatal(err)
	}
	if kept, _ := a.gate.Filter(pack, call()); len(kept) != 1 {
		t.Fatal("the announcing instance dropped its own batch's later step")
	}
	sync(b)
	if kept, _ := b.gate.Filter(pack, call()); len(kept) != 1 {
		t.Fatal("after the barrier, another instance dropped a later step inside the window")
	}
	c := open()
	sync(c)
	if kept, _ := c.gate.Filter(pack, call()); len(kept) != 1 {
		t.Fatal("an instance started later dropped a later step inside the window")
	}
}
