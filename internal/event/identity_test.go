package event

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// TestEveryInputHasAgentAndCall: no event of any capture, golden input or
// synthetic request has an empty agent_id or call_id, with the default
// chain and with a chain that names nothing (so every fallback is taken).
func TestEveryInputHasAgentAndCall(t *testing.T) {
	for _, o := range []MapOptions{{}, {AgentResourceAttributes: [][]string{{"no.such.attribute"}}}} {
		for name, mapIt := range goldenInputs(t) {
			for _, e := range mapIt(o).Events {
				if e.AgentID == "" || e.CallID == "" {
					t.Errorf("%s %v: event %s has agent %q, call %q", name, o.AgentResourceAttributes, e.EventID, e.AgentID, e.CallID)
				}
				// Made by the server (for a server → client request the
				// SERVER span is the agent's, its resource no server).
				if serverSide(&e) && e.Kind == KindMessage && e.ServerName == "" && e.ServiceName != "" && !isUnknownService(e.ServiceName) {
					t.Errorf("%s: server observation %s without a server name", name, e.EventID)
				}
			}
		}
	}
}

// mapFiles maps each capture file as its own request.
func mapFiles(t *testing.T, o MapOptions, files ...string) []Event {
	t.Helper()
	var out []Event
	for _, f := range files {
		out = append(out, FromTraces(loadTraces(t, f), o).Events...)
	}
	return out
}

// mapTogether maps the capture files as one request (one process
// exporting both sides).
func mapTogether(t *testing.T, o MapOptions, files ...string) Batch {
	t.Helper()
	td := ptrace.NewTraces()
	for _, f := range files {
		loadTraces(t, f).ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	}
	return FromTraces(td, o)
}

// calls groups message events by call id.
func calls(evs []Event) map[string][]*Event {
	m := map[string][]*Event{}
	for i := range evs {
		if e := &evs[i]; e.Kind == KindMessage {
			m[e.CallID] = append(m[e.CallID], e)
		}
	}
	return m
}

// TestPythonSDKIdentity: the MCP Python SDK 2.3.0's own spans, client and
// server exported by two processes (two requests).
func TestPythonSDKIdentity(t *testing.T) {
	const dir = "testdata/mcp-python-sdk-2.3.0/"
	client := mapFiles(t, MapOptions{}, dir+"client.pb")
	server := mapFiles(t, MapOptions{}, dir+"server.pb")
	for _, e := range client {
		eq(t, e.EventID+" client agent", e.AgentID, "py-mcp-demo-client/a01322ed-adcc-48a9-be29-2d566c92450f")
	}
	for _, e := range server {
		eq(t, e.EventID+" server name from the SERVER span's resource", e.ServerName, "py-mcp-demo-server")
		eq(t, e.EventID+" server observation's agent (marked fallback)", e.AgentID, "server:py-mcp-demo-server/3f3738ef-5f68-4c05-b2ad-6d098dd445ad")
	}
	// Every request (13, with ids 1-13) is one call seen twice.
	all := calls(append(client, server...))
	n := 0
	for id, obs := range all {
		if len(obs) == 1 {
			eq(t, "the only single observation", obs[0].Method, "notifications/initialized")
			eq(t, "its call id is its event id", id, obs[0].EventID)
			continue
		}
		n++
		if len(obs) != 2 || obs[0].Observer == obs[1].Observer || obs[0].RequestID != obs[1].RequestID {
			t.Errorf("call %s: %d observations", id, len(obs))
		}
	}
	eq(t, "calls seen by both sides", n, 13)

	// One process exporting both sides (one request): the client learns
	// the server's name, the server observation the client's agent.
	b := mapTogether(t, MapOptions{}, dir+"client.pb", dir+"server.pb")
	for _, obs := range calls(b.Events) {
		for _, e := range obs {
			eq(t, e.EventID+" server name", e.ServerName, "py-mcp-demo-server")
			if len(obs) == 2 {
				eq(t, e.EventID+" agent", e.AgentID, "py-mcp-demo-client/a01322ed-adcc-48a9-be29-2d566c92450f")
			}
		}
	}
}

// TestFastMCPCapture: fastmcp 4.2.3 on mcp 2.3.0. Each client request is
// two CLIENT spans (fastmcp's, without a request id, around the SDK's "MCP
// send"), each server request one SERVER span with fastmcp.server.name.
func TestFastMCPCapture(t *testing.T) {
	const dir = "testdata/fastmcp-4.2.3/"
	cb := FromTraces(loadTraces(t, dir+"client.pb"), MapOptions{})
	sb := FromTraces(loadTraces(t, dir+"server.pb"), MapOptions{})
	eq(t, "client dropped", cb.Dropped, 0)
	eq(t, "server dropped", sb.Dropped, 0)
	eq(t, "client events", len(cb.Events), 13+11) // 13 SDK spans, 11 fastmcp spans (none for discover and ping)
	eq(t, "server events", len(sb.Events), 13)
	for _, e := range sb.Events {
		eq(t, e.EventID+" server name (fastmcp.server.name)", e.ServerName, "demo-server")
		eq(t, e.EventID+" agent", e.AgentID, "server:py-fastmcp-demo-server/d81c89de-6930-45c4-8e11-33cfbea200fb")
	}
	dups := 0
	for _, e := range cb.Events {
		eq(t, e.EventID+" agent", e.AgentID, "py-fastmcp-demo-client/2b2741eb-3b9d-44e9-9e2f-b48c99e61e45")
		if e.HasTag(TagDuplicate) {
			dups++
			eq(t, e.EventID+" duplicate has no request id of its own, takes its child's", e.RequestID != "", true)
		}
	}
	eq(t, "fastmcp duplicates", dups, 11)

	all := append(append([]Event(nil), cb.Events...), sb.Events...)
	toolCalls := map[string][]*Event{}
	for id, obs := range calls(all) {
		if obs[0].Method == "tools/call" {
			toolCalls[id] = obs
		}
	}
	// 5 tool calls, each observed 3 times; counted once.
	eq(t, "tool calls", len(toolCalls), 5)
	for id, obs := range toolCalls {
		var kinds []string
		counted := 0
		for _, e := range obs {
			kinds = append(kinds, string(e.Observer))
			if !e.HasTag(TagDuplicate) {
				counted++
			}
		}
		sort.Strings(kinds)
		eq(t, id+" observers", strings.Join(kinds, ","), "client,client,server")
		eq(t, id+" observations counted", counted, 2)
	}
	// Every request of the SDK is seen by both processes.
	for id, obs := range calls(all) {
		if len(obs) < 2 {
			t.Errorf("call %s (%s) seen once", id, obs[0].Method)
		}
	}
}

// TestTraceloopPythonIdentity: OpenLLMetry Python names no agent; the
// request id comes from the ResponseStreamWriter child and makes the call id.
func TestTraceloopPythonIdentity(t *testing.T) {
	b := FromTraces(loadTraces(t, "testdata/traceloop-python-0.62.4/client.pb"), MapOptions{})
	for _, e := range b.Events {
		eq(t, e.EventID+" agent", e.AgentID, "py-mcp-demo-client/96971163-22a6-467a-9449-43511e6ac5f2")
		if e.Kind == KindMessage {
			eq(t, e.EventID+" call id from the request", callFromRequest(&e), e.RequestID != "")
		}
	}
	msgs, defs := bySpan(t, b.Events)
	for _, d := range defs {
		eq(t, d.ToolName+" definition's call = its tools/list", d.CallID, get(t, msgs, d.SpanID).CallID)
	}
}

// TestTraceloopJSIdentity: OpenLLMetry JS, no request ids, no instance id.
func TestTraceloopJSIdentity(t *testing.T) {
	for _, e := range mapFiles(t, MapOptions{}, "testdata/traceloop-mcp-0.27.0/traces-0005.json") {
		eq(t, e.EventID+" agent", e.AgentID, "mcp-demo-client")
		if e.Kind == KindMessage {
			eq(t, e.EventID+" call id", e.CallID, e.EventID)
		}
	}
}

func TestAgentChain(t *testing.T) {
	mk := func(kind ptrace.SpanKind, res map[string]string, attrs map[string]string) *spanBuilder {
		s := newSpan("tools/call x", kind)
		s.res.Remove("service.name")
		for k, v := range res {
			s.res.PutStr(k, v)
		}
		s.attrs().PutStr("mcp.method.name", "tools/call")
		for k, v := range attrs {
			s.attrs().PutStr(k, v)
		}
		return s
	}
	C, S := ptrace.SpanKindClient, ptrace.SpanKindServer
	pod := [][]string{{"k8s.pod.name"}, {"service.name", "service.instance.id"}}
	cases := []struct {
		name       string
		kind       ptrace.SpanKind
		res, attrs map[string]string
		chain      [][]string
		want       string
	}{
		{"agent id wins", C, map[string]string{"service.name": "svc"}, map[string]string{"gen_ai.agent.id": "a1"}, nil, "a1"},
		{"service and instance", C, map[string]string{"service.name": "svc", "service.instance.id": "i1"}, nil, nil, "svc/i1"},
		{"service alone", C, map[string]string{"service.name": "svc", "host.name": "h"}, nil, nil, "svc"},
		{"SDK default service name skipped", C, map[string]string{"service.name": "unknown_service:python", "host.name": "h"}, nil, nil, "h"},
		{"SDK default service name, last resort", C, map[string]string{"service.name": "unknown_service"}, map[string]string{"user.id": "bob"}, nil, "unknown_service"},
		{"host", C, map[string]string{"host.name": "h"}, nil, nil, "h"},
		{"user and client", C, nil, map[string]string{"user.id": "bob", "mcp.client.name": "cursor"}, nil, "bob@cursor"},
		{"client only", C, nil, map[string]string{"mcp.client.name": "cursor"}, nil, "@cursor"},
		{"nothing", C, nil, nil, nil, "unknown"},
		{"configured chain", C, map[string]string{"k8s.pod.name": "p-1", "service.name": "svc"}, nil, pod, "p-1"},
		{"configured chain without service.name ignores it", C, map[string]string{"service.name": "svc"}, nil, [][]string{{"k8s.pod.name"}}, "unknown"},
		{"empty chain", C, map[string]string{"service.name": "svc"}, map[string]string{"user.id": "bob"}, [][]string{}, "bob@"},
		{"configured chain, second group", C, map[string]string{"service.name": "svc", "service.instance.id": "i"}, nil, pod, "svc/i"},
		{"server: agent id", S, map[string]string{"service.name": "srv"}, map[string]string{"gen_ai.agent.id": "a1"}, nil, "a1"},
		{"server: the caller the request names", S, map[string]string{"service.name": "srv"}, map[string]string{"enduser.id": "bob", "mcp.client.name": "cursor"}, nil, "bob@cursor"},
		{"server: marked fallback", S, map[string]string{"service.name": "srv", "service.instance.id": "i"}, nil, nil, "server:srv/i"},
		{"server: nothing", S, nil, nil, nil, "server:unknown"},
		{"gateway: marked fallback", C, map[string]string{"service.name": "gw", "mcpwatch.observer": "gateway"}, nil, nil, "gateway:gw"},
	}
	for _, c := range cases {
		e := mk(c.kind, c.res, c.attrs).one(t, MapOptions{AgentResourceAttributes: c.chain})
		eq(t, c.name, e.AgentID, c.want)
		if c.kind == S && c.res["service.name"] != "" {
			eq(t, c.name+": server name from the resource", e.ServerName, c.res["service.name"])
		}
	}
}

func TestParseAgentResourceAttributes(t *testing.T) {
	g, err := ParseAgentResourceAttributes([]string{"service.name+service.instance.id", " host.name "})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "parsed", strings.Join(FormatAgentResourceAttributes(g), ","), "service.name+service.instance.id,host.name")
	eq(t, "default round trip", strings.Join(FormatAgentResourceAttributes(DefaultAgentResourceAttributes), ","), "service.name+service.instance.id,host.name")
	_, err = ParseAgentResourceAttributes([]string{"", "a+", "b c", "x", "x", "a+b+c+d+e"})
	for _, want := range []string{"group 1 is empty", `"a+": "" is not`, `"b c" is not`, `"x" is listed twice`, "at most 4"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

// TestCallIDs: derived from trace + request id + method; the same
// request id under another method or trace is another call; linking
// within a request only goes from a client span to its child of the
// same method.
func TestCallIDs(t *testing.T) {
	a := newSpan("tools/call x", ptrace.SpanKindClient)
	a.attrs().PutStr("mcp.method.name", "tools/call")
	a.attrs().PutStr("jsonrpc.request.id", "7")
	e := a.one(t, MapOptions{})
	const client = "0a0b0c0d01020304"
	eq(t, "call id", e.CallID, testTrace+client+":tools/call:7")
	long := strings.Repeat("r", 65)
	a.attrs().PutStr("jsonrpc.request.id", long)
	eq(t, "long request id hashed", a.one(t, MapOptions{}).CallID, testTrace+client+":tools/call#"+fmt.Sprintf("%016x", fnv1a(long)))
	a.attrs().PutStr("jsonrpc.request.id", "7")
	a.attrs().PutStr("mcp.method.name", "prompts/get")
	if p := a.one(t, MapOptions{}); p.CallID == e.CallID {
		t.Error("another method, the same call id")
	}
	a.attrs().PutStr("mcp.method.name", "tools/call")
	a.span.SetKind(ptrace.SpanKindServer)
	a.span.SetSpanID(pcommon.SpanID{9})
	a.span.SetParentSpanID(pcommon.SpanID{0xa, 0xb, 0xc, 0xd, 1, 2, 3, 4})
	eq(t, "the server side's call id (its parent is the client span)", a.one(t, MapOptions{}).CallID, e.CallID)
	a.span.SetParentSpanID(pcommon.SpanID{8})
	if x := a.one(t, MapOptions{}); x.CallID == e.CallID {
		t.Error("the same request id on another connection (another client span), the same call id")
	}
	a.span.SetParentSpanID(pcommon.SpanID{})
	if x := a.one(t, MapOptions{}); x.CallID != x.EventID {
		t.Errorf("a server span without a parent: call id %q, want its event id", x.CallID)
	}
	a.span.SetParentSpanID(pcommon.SpanID{0xa, 0xb, 0xc, 0xd, 1, 2, 3, 4})
	a.span.SetTraceID(pcommon.TraceID{9})
	if x := a.one(t, MapOptions{}); x.CallID == e.CallID {
		t.Error("another trace, the same call id")
	}

	// A SERVER span whose child CLIENT span (a call the tool makes) has no
	// request id: not linked.
	s := newSpan("tools/call outer", ptrace.SpanKindServer)
	s.attrs().PutStr("mcp.method.name", "tools/call")
	s.attrs().PutStr("jsonrpc.request.id", "1")
	ss := s.td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	c := ss.AppendEmpty()
	c.SetName("tools/call inner")
	c.SetKind(ptrace.SpanKindClient)
	c.SetTraceID(s.span.TraceID())
	c.SetSpanID(pcommon.SpanID{7})
	c.SetParentSpanID(s.span.SpanID())
	c.Attributes().PutStr("mcp.method.name", "tools/call")
	b := FromTraces(s.td, MapOptions{})
	eq(t, "events", len(b.Events), 2)
	eq(t, "inner call keeps its own id", b.Events[1].CallID, b.Events[1].EventID)
}

// TestCorrelationSpansIgnored: a span with only an MCP request id is
// counted as correlation, which the collector ignores like not_mcp.
func TestCorrelationSpansIgnored(t *testing.T) {
	s := newSpan("ResponseStreamWriter", ptrace.SpanKindInternal)
	s.attrs().PutStr("mcp.request.id", "3")
	b := FromTraces(s.td, MapOptions{})
	eq(t, "correlation", b.DropReasons[DropCorrelation], 1)
	eq(t, "ignored", Ignored(DropCorrelation) && Ignored(DropNotMCP) && !Ignored(DropInvalidTraceID), true)
}

func TestPutCallHash(t *testing.T) {
	for _, h := range []uint64{0, 1, 0x0123456789abcdef, 0xfedcba9876543210, ^uint64(0), 0xa0b1c2d3e4f50617} {
		var b [16]byte
		putCallHash(b[:], h)
		if want := fmt.Sprintf("%016x", h); string(b[:]) != want {
			t.Errorf("%x: %s, want %s", h, b[:], want)
		}
	}
}

// TestRealSendersPython maps the wire captures of five Python stacks (one
// agent session against four servers, all in one trace, request ids
// numbered per connection; testdata/realsenders/python), each POST as its own
// request as the collector sees them: every event has an agent and a call
// id; with the MCP SDK's own spans each tool call of the runner is one
// call id holding one client and one server observation (plus fastmcp's
// tagged duplicate), never the calls of two connections that share a
// request id.
func TestRealSendersPython(t *testing.T) {
	root := "testdata/realsenders/python/"
	for _, stack := range []string{"sdk", "sdk+capture", "fastmcp", "fastmcp+capture", "openllmetry"} {
		t.Run(stack, func(t *testing.T) {
			files, _ := filepath.Glob(root + stack + "/*.binpb")
			if len(files) == 0 {
				t.Fatal("no capture")
			}
			var evs []Event
			for _, f := range files {
				evs = append(evs, mapCapture(t, f).Events...)
			}
			for _, e := range evs {
				if e.AgentID == "" || e.CallID == "" {
					t.Errorf("event %s: agent %q call %q", e.EventID, e.AgentID, e.CallID)
				}
				if e.Observer == ObserverServer && e.ServerName == "" {
					t.Errorf("server observation %s without a server name", e.EventID)
				}
			}
			var run struct {
				Calls []struct{ Method, Tool, Server string } `json:"calls"`
			}
			if b, err := os.ReadFile(root + stack + "/run-stdout.txt"); err != nil || json.Unmarshal(b, &run) != nil {
				t.Fatalf("run-stdout.txt: %v", err)
			}
			want := 0
			for _, c := range run.Calls {
				if c.Method == "tools/call" {
					want++
				}
			}
			got := map[string][]*Event{}
			for i := range evs {
				if e := &evs[i]; e.Kind == KindMessage && e.Method == "tools/call" && !e.HasTag(TagDuplicate) {
					got[e.CallID] = append(got[e.CallID], e)
				}
			}
			if stack == "openllmetry" { // client side only, no request ids on the server
				eq(t, "tool calls", len(got), want)
				return
			}
			eq(t, "tool calls (distinct call ids)", len(got), want)
			for id, obs := range got {
				var kinds []string
				for _, e := range obs {
					kinds = append(kinds, string(e.Observer))
				}
				sort.Strings(kinds)
				eq(t, id+" observations counted", strings.Join(kinds, ","), "client,server")
				if len(obs) == 2 && obs[0].ToolName != obs[1].ToolName {
					t.Errorf("%s joins %s and %s", id, obs[0].ToolName, obs[1].ToolName)
				}
			}
		})
	}
}

// TestDuplicateLearnsServer: fastmcp's CLIENT span has no server name;
// linked to the MCP SDK span it wraps (in the same request), it takes that
// span's (the capture middleware's mcp.server.name), since it is the same
// call to the same server.
func TestDuplicateLearnsServer(t *testing.T) {
	files, _ := filepath.Glob("testdata/realsenders/python/fastmcp+capture/*.binpb")
	if len(files) == 0 {
		t.Fatal("no capture")
	}
	linked := 0
	for _, f := range files {
		batch := mapCapture(t, f)
		sdk := map[string]*Event{}
		for i := range batch.Events {
			if e := &batch.Events[i]; e.Kind == KindMessage && e.Observer == ObserverClient && !e.HasTag(TagDuplicate) {
				sdk[e.CallID] = e
			}
		}
		for _, e := range batch.Events {
			if !e.HasTag(TagDuplicate) {
				continue
			}
			s, ok := sdk[e.CallID]
			if !ok {
				continue // its SDK span was exported in another request
			}
			linked++
			if s.ServerName == "" || e.ServerName != s.ServerName || e.ServerVersion != s.ServerVersion {
				t.Errorf("%s %s: duplicate has server %q %q, the SDK span %q %q", e.Method, e.ToolName, e.ServerName, e.ServerVersion, s.ServerName, s.ServerVersion)
			}
		}
	}
	if linked == 0 {
		t.Fatal("no duplicate in the same request as its SDK span")
	}
}

// TestServerToClientIdentity: roots/list is sent by the MCP server. Its
// CLIENT span is the server's (the agent is the peer the request names),
// its SERVER span the agent's (the agent is that process).
func TestServerToClientIdentity(t *testing.T) {
	const dir = "testdata/realsenders/typescript/"
	check := func(file string, observer Observer, agent, server string) {
		t.Helper()
		batch := mapCapture(t, dir+file)
		n := 0
		for _, e := range batch.Events {
			if e.Method != "roots/list" {
				continue
			}
			n++
			eq(t, file+" observer", e.Observer, observer)
			eq(t, file+" agent", e.AgentID, agent)
			eq(t, file+" server", e.ServerName, server)
		}
		eq(t, file+" roots/list events", n, 1)
	}
	check("capture/capture-0001.pb", ObserverServer, "scenario-agent/scenario-agent-1", "dev-workstation") // the agent
	check("capture/capture-0002.pb", ObserverClient, "@scenario-agent", "dev-workstation")                 // the server
	// OpenLLMetry JS: the agent's span, in a trace of its own; the server
	// is not named in it (its resource is the agent's, not a server).
	check("openllmetry/capture-0001.pb", ObserverServer, "scenario-agent/scenario-agent-1", "")
}

// TestPropagateOnlyWithinASession: OpenLLMetry names the server only in
// initialize's output. Its JS instrumentation's mcp.client.session span
// parents one session's requests, so the name carries to its siblings; an
// application span (an agent's invoke_agent over four connections, as the
// Python scenario has) is no session: a request holding the initialize of
// one server would otherwise name every sibling call after it.
func TestPropagateOnlyWithinASession(t *testing.T) {
	for _, c := range []struct {
		parent, want string
	}{
		{"mcp.client.session", "calc-utils"},
		{"invoke_agent scenario-agent", ""},
	} {
		td := ptrace.NewTraces()
		ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
		ss.Scope().SetName("opentelemetry.instrumentation.mcp.instrumentation")
		trace := pcommon.TraceID{1, 2, 3}
		add := func(name string, id, parent byte) ptrace.Span {
			sp := ss.Spans().AppendEmpty()
			sp.SetName(name)
			sp.SetTraceID(trace)
			sp.SetSpanID(pcommon.SpanID{id})
			if parent != 0 {
				sp.SetParentSpanID(pcommon.SpanID{parent})
			}
			sp.Attributes().PutStr("traceloop.span.kind", "task")
			return sp
		}
		add(c.parent, 1, 0)
		ini := add("initialize.mcp", 2, 1)
		ini.Attributes().PutStr("traceloop.entity.input", `{"method":"initialize","params":{"clientInfo":{"name":"agent","version":"1"}}}`)
		ini.Attributes().PutStr("traceloop.entity.output", `{"serverInfo":{"name":"calc-utils","version":"0.1.0"}}`)
		list := add("tools/list.mcp", 3, 1)
		list.Attributes().PutStr("traceloop.entity.input", `{"method":"tools/list","params":null}`)
		b := FromTraces(td, MapOptions{})
		got := map[string]string{}
		for _, e := range b.Events {
			if e.Kind == KindMessage {
				got[e.Method] = e.ServerName
			}
		}
		eq(t, c.parent+": initialize server", got["initialize"], "calc-utils")
		eq(t, c.parent+": tools/list server", got["tools/list"], c.want)
	}
}

// mapCapture maps one captured OTLP/HTTP traces body as the collector
// would (one request).
func mapCapture(t *testing.T, file string) Batch {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	batch, _, ok := TracesFromProto(b, MapOptions{})
	if !ok {
		t.Fatalf("%s: not mapped", file)
	}
	return batch
}
