package event

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	"google.golang.org/protobuf/proto"
)

// fillAll sets every field of e to a distinct non-zero value by reflection,
// so a field added to Event without codec support fails the round trip.
func fillAll(t testing.TB, e *Event, seed int) {
	t.Helper()
	v := reflect.ValueOf(e).Elem()
	for i := 0; i < v.NumField(); i++ {
		f, sf := v.Field(i), v.Type().Field(i)
		n := seed*100 + i + 1
		switch {
		case sf.Name == "TraceID":
			f.SetString(fmt.Sprintf("%032x", n))
		case sf.Name == "SpanID" || sf.Name == "ParentSpanID":
			f.SetString(fmt.Sprintf("%016x", n))
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(time.Unix(1_800_000_000+int64(n), int64(n)).UTC()))
		case f.Kind() == reflect.String:
			f.SetString(fmt.Sprintf("%s-%d ünïcode \"q\"", sf.Name, n))
		case f.Kind() == reflect.Uint64, f.Kind() == reflect.Uint32, f.Kind() == reflect.Uint16:
			f.SetUint(uint64(n))
		case f.Kind() == reflect.Int32:
			f.SetInt(int64(-n))
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			f.Set(reflect.ValueOf([]string{fmt.Sprintf("%s-a%d", sf.Name, n), fmt.Sprintf("%s-b%d", sf.Name, n)}))
		default:
			t.Fatalf("fillAll does not know how to fill %s (%s): teach it and the codec", sf.Name, f.Type())
		}
		if f.IsZero() {
			t.Fatalf("field %s left zero", sf.Name)
		}
	}
}

func TestCodecRoundTripEveryField(t *testing.T) {
	in := make([]Event, 3)
	for i := range in {
		fillAll(t, &in[i], i)
	}
	// Two events share the resource, the third does not.
	in[1].Tenant, in[1].ServiceName, in[1].ServiceInstance, in[1].HostName = in[0].Tenant, in[0].ServiceName, in[0].ServiceInstance, in[0].HostName
	// Ids that are not OTLP hex travel as attributes.
	in[2].TraceID, in[2].SpanID = "not-hex", "also-not-hex"
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("got %d events, want %d", len(out), len(in))
	}
	for i := range in {
		if !reflect.DeepEqual(in[i], out[i]) {
			t.Errorf("event %d differs:\n in  %+v\n out %+v", i, in[i], out[i])
		}
	}
}

func TestCodecZeroEvent(t *testing.T) {
	b, err := Marshal([]Event{{}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || !reflect.DeepEqual(out[0], Event{}) {
		t.Fatalf("zero event round trip: %+v", out)
	}
}

// TestCodecPlainOTLP decodes our value with the reference OTLP protobuf
// types (what any OTLP consumer, e.g. otelcol's kafkareceiver with
// encoding otlp_proto, does) and checks the documented attribute names.
func TestCodecPlainOTLP(t *testing.T) {
	b := FromTraces(loadTraces(t, "testdata/traceloop-mcp-0.27.0/traces-0005.json"), MapOptions{Tenant: "acme", ReceivedAt: received})
	val, err := Marshal(b.Events)
	if err != nil {
		t.Fatal(err)
	}
	var req collogs.ExportLogsServiceRequest
	if err := proto.Unmarshal(val, &req); err != nil {
		t.Fatalf("not an ExportLogsServiceRequest: %v", err)
	}
	eq(t, "resource logs", len(req.ResourceLogs), 1)
	rl := req.ResourceLogs[0]
	res := map[string]string{}
	for _, kv := range rl.Resource.Attributes {
		res[kv.Key] = kv.Value.GetStringValue()
	}
	eq(t, "tenant", res["mcpwatch.tenant"], "acme")
	eq(t, "service", res["service.name"], "mcp-demo-client")
	eq(t, "scope", rl.ScopeLogs[0].Scope.Name, ScopeName)
	recs := rl.ScopeLogs[0].LogRecords
	eq(t, "records", len(recs), len(b.Events))
	var sawRead bool
	for _, r := range recs {
		eq(t, "EventName", r.EventName, AuditEventName)
		attrs := map[string]string{}
		for _, kv := range r.Attributes {
			attrs[kv.Key] = kv.Value.GetStringValue()
		}
		eq(t, "event.name", attrs["event.name"], AuditEventName)
		eq(t, "trace id bytes", fmt.Sprintf("%x", r.TraceId), "81843093b7e6e5f5f5c1138734f7a4ed")
		if attrs["gen_ai.tool.name"] == "read_file" && attrs["mcp.method.name"] == "tools/call" {
			sawRead = true
			eq(t, "arguments", attrs["gen_ai.tool.call.arguments"], `{"path":"/etc/hosts"}`)
			eq(t, "server", attrs["mcpwatch.server_name"], "demo-server")
			eq(t, "outcome", attrs["mcpwatch.outcome"], "ok")
			eq(t, "time", r.TimeUnixNano, uint64(1795312665030000000))
			eq(t, "observed", r.ObservedTimeUnixNano, uint64(received.UnixNano()))
		}
	}
	eq(t, "read_file record present", sawRead, true)
}

func TestCodecRejectsGarbageAndSkipsForeignRecords(t *testing.T) {
	if _, err := Unmarshal([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Error("garbage must fail")
	}
	// A foreign OTLP log record on the topic is skipped, ours is kept.
	ours, _ := Marshal([]Event{{EventID: "ours"}})
	ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(ours)
	if err != nil {
		t.Fatal(err)
	}
	lrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()
	lrs.AppendEmpty().Body().SetStr("some application log")
	val, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Unmarshal(val)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "events", len(out), 1)
	eq(t, "id", out[0].EventID, "ours")
}

// TestCodecRoundTripCaptures: every event mapped from the real captures
// survives Marshal → Unmarshal unchanged, one value per event and all in one.
func TestCodecRoundTripCaptures(t *testing.T) {
	var all []Event
	for _, f := range []string{"testdata/traceloop-mcp-0.27.0/traces-0005.json", "testdata/traceloop-python-0.62.4/client.pb", "testdata/mcp-python-sdk-2.3.0/server.pb"} {
		all = append(all, FromTraces(loadTraces(t, f), MapOptions{Tenant: "acme", ReceivedAt: received}).Events...)
	}
	if len(all) < 40 {
		t.Fatalf("only %d events", len(all))
	}
	for i := range all {
		v, err := Marshal(all[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unmarshal(v)
		if err != nil || len(back) != 1 || !reflect.DeepEqual(back[0], all[i]) {
			t.Fatalf("event %s: err %v\n in  %+v\n out %+v", all[i].EventID, err, all[i], back)
		}
	}
	v, _ := Marshal(all)
	back, err := Unmarshal(v)
	if err != nil || !reflect.DeepEqual(back, all) {
		t.Fatalf("batch round trip differs (err %v)", err)
	}
	for cut := 1; cut < 40; cut++ {
		if _, err := Unmarshal(v[:len(v)-cut]); err == nil {
			t.Fatalf("value cut by %d bytes decoded without error", cut)
		}
	}
}

// TestCodecUnmarshalAppend: values decoded one by one into one slice equal
// the events; a bad value in between leaves the slice as it was (length and
// the tail zeroed), and the decoded strings do not alias the input.
func TestCodecUnmarshalAppend(t *testing.T) {
	in := make([]Event, 3)
	for i := range in {
		fillAll(t, &in[i], i)
	}
	var out []Event
	for i := range in {
		v, err := Marshal(in[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		out, err = UnmarshalAppend(out, v)
		if err != nil {
			t.Fatal(err)
		}
		for j := range v {
			v[j] = 0 // the caller may reuse its buffer
		}
		if i == 0 {
			// A value that decodes one record and then breaks.
			good, _ := Marshal([]Event{in[1]})
			bad := append(good[:len(good):len(good)], 0x0a, 0x7f)
			n := len(out)
			out, err = UnmarshalAppend(out, bad)
			if err == nil {
				t.Fatal("truncated value must fail")
			}
			eq(t, "len after error", len(out), n)
			if tail := out[n : n+1 : cap(out)]; cap(out) > n && !reflect.DeepEqual(tail[0], Event{}) {
				t.Errorf("tail not cleared: %+v", tail[0])
			}
		}
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("UnmarshalAppend differs:\n in  %+v\n out %+v", in, out)
	}
}
