package event

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
)

// A direct protobuf decoder for the Kafka value (the inverse of
// protoenc.go). It reads any valid ExportLogsServiceRequest, whatever wrote
// it, skipping unknown fields, and keeps only records whose event name is
// mcpwatch.audit_event. Strings are slices of one copy of the input, so an
// event costs few allocations.

var errTruncated = errors.New("truncated or malformed protobuf")

// anyValue is the part of an OTLP AnyValue the topic uses.
type anyValue struct {
	s   string
	i   int64
	arr []string
}

type decoder struct {
	full []byte    // the input
	str  string    // one copy of the input; strings are slices of it
	in   *Interner // nil: no interning
}

// sub returns the string for b, a subslice of d.full.
func (d *decoder) sub(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := cap(d.full) - cap(b)
	return d.str[start : start+len(b)]
}

// pbField reads one field; val is the payload of a length-delimited field,
// u the value of a varint or fixed field.
func pbField(b []byte) (num protowire.Number, typ protowire.Type, val []byte, u uint64, rest []byte, err error) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, nil, 0, nil, errTruncated
	}
	b = b[n:]
	switch typ {
	case protowire.BytesType:
		val, n = protowire.ConsumeBytes(b)
	case protowire.VarintType:
		u, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		u, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var v32 uint32
		v32, n = protowire.ConsumeFixed32(b)
		u = uint64(v32)
	default:
		n = protowire.ConsumeFieldValue(num, typ, b)
	}
	if n < 0 {
		return 0, 0, nil, 0, nil, errTruncated
	}
	return num, typ, val, u, b[n:], nil
}

// Unmarshal decodes a value written by Marshal (or any OTLP logs request).
// Records whose event.name is not mcpwatch.audit_event are skipped.
func Unmarshal(b []byte) ([]Event, error) {
	evs, err := UnmarshalAppend(nil, b)
	if err != nil {
		return nil, err
	}
	return evs, nil
}

// UnmarshalAppend is Unmarshal appending to dst: a consumer decoding many
// one-event values into one batch slice avoids an allocation and a copy of
// each Event. On error dst is returned with its original length. The
// events' strings share one copy of b, so b may be reused afterwards.
func UnmarshalAppend(dst []Event, b []byte) ([]Event, error) {
	return unmarshalAppend(dst, b, nil)
}

// A Decoder is UnmarshalAppend with an Interner: the strings of the
// low-cardinality fields (see Interner.Event) of every event it decodes
// are shared copies instead of slices of the value. A long-lived consumer
// (the analyzer) decodes with one Decoder: a batch then holds one copy of
// each tenant, server, tool, method... name, which keeps those columns
// cache-friendly to encode (ClickHouse LowCardinality hashes every row's
// string). The other strings of an event are copied out of the value into
// one allocation per event (the value itself, mostly attribute names, is
// not copied), so the events never alias b either. The events are equal
// to UnmarshalAppend's. Not safe for concurrent use.
type Decoder struct {
	in Interner
}

// UnmarshalAppend is the package UnmarshalAppend with interning.
func (dec *Decoder) UnmarshalAppend(dst []Event, b []byte) ([]Event, error) {
	return unmarshalAppend(dst, b, &dec.in)
}

// Interner hands out one shared copy of each distinct short string. It is
// bounded: past maxInterned strings it starts over (strings already handed
// out stay valid), so a field that turns out to be high-cardinality costs a
// map lookup and a copy, never unbounded memory. The zero value is ready.
type Interner struct {
	m map[string]string
}

const (
	maxInterned    = 1 << 14 // distinct strings kept
	maxInternedLen = 256     // longer strings are returned as they are
)

// String returns the shared copy of s (s itself when it is empty or long).
func (in *Interner) String(s string) string {
	if s == "" || len(s) > maxInternedLen {
		return s
	}
	if v, ok := in.m[s]; ok {
		return v
	}
	if in.m == nil {
		in.m = make(map[string]string, 256)
	} else if len(in.m) >= maxInterned {
		clear(in.m)
	}
	v := strings.Clone(s) // never a slice of the caller's value
	in.m[v] = v
	return v
}

func (in *Interner) strs(ss []string) {
	for i, s := range ss {
		ss[i] = in.String(s)
	}
}

// Event interns e's low-cardinality fields: the ones stored as
// LowCardinality or used as names and enums (tenant, kind, source,
// observer, service, host, method, protocol version, transport, agent,
// user, client, server, tool, prompt, outcome, error type, origin, token
// audience, user agent) and the elements of scopes, tags and attribute
// keys. Identifiers that are unique per event or session (event, trace,
// span, session, request ids), addresses, arguments, results and attribute
// values are left alone.
func (in *Interner) Event(e *Event) {
	e.Tenant = in.String(e.Tenant)
	e.Kind = Kind(in.String(string(e.Kind)))
	e.Source = Source(in.String(string(e.Source)))
	e.Observer = Observer(in.String(string(e.Observer)))
	e.ServiceName = in.String(e.ServiceName)
	e.ServiceInstance = in.String(e.ServiceInstance)
	e.HostName = in.String(e.HostName)
	e.Method = in.String(e.Method)
	e.ProtocolVersion = in.String(e.ProtocolVersion)
	e.Transport = in.String(e.Transport)
	e.AgentID = in.String(e.AgentID)
	e.AgentName = in.String(e.AgentName)
	e.UserID = in.String(e.UserID)
	e.ClientName = in.String(e.ClientName)
	e.ClientVersion = in.String(e.ClientVersion)
	e.UserAgent = in.String(e.UserAgent)
	e.ServerName = in.String(e.ServerName)
	e.ServerVersion = in.String(e.ServerVersion)
	e.ToolName = in.String(e.ToolName)
	e.PromptName = in.String(e.PromptName)
	e.Outcome = Outcome(in.String(string(e.Outcome)))
	e.ErrorType = in.String(e.ErrorType)
	e.Origin = in.String(e.Origin)
	e.TokenAudience = in.String(e.TokenAudience)
	in.strs(e.Scopes)
	in.strs(e.Tags)
	in.strs(e.AttrKeys)
}

// The offsets in Event of its string fields and of its []string fields
// (whatever their declared type), for own.
var eventStrOffs, eventStrsOffs = func() (strs, slices []uintptr) {
	t := reflect.TypeOf(Event{})
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		switch {
		case f.Type.Kind() == reflect.String:
			strs = append(strs, f.Offset)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			slices = append(slices, f.Offset)
		}
	}
	return strs, slices
}()

// own copies the strings of e that point into b into one allocation of
// their own, so that e keeps nothing of b.
func own(e *Event, b []byte) {
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	hi := lo + uintptr(len(b))
	inB := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		return len(s) > 0 && p >= lo && p < hi
	}
	base := unsafe.Pointer(e)
	n := 0
	for _, off := range eventStrOffs {
		if s := *(*string)(unsafe.Add(base, off)); inB(s) {
			n += len(s)
		}
	}
	for _, off := range eventStrsOffs {
		for _, s := range *(*[]string)(unsafe.Add(base, off)) {
			if inB(s) {
				n += len(s)
			}
		}
	}
	if n == 0 {
		return
	}
	buf := make([]byte, 0, n)
	move := func(s string) string {
		start := len(buf)
		buf = append(buf, s...)
		return unsafe.String(&buf[start], len(s)) // buf is never written again
	}
	for _, off := range eventStrOffs {
		if p := (*string)(unsafe.Add(base, off)); inB(*p) {
			*p = move(*p)
		}
	}
	for _, off := range eventStrsOffs {
		ss := *(*[]string)(unsafe.Add(base, off))
		for i, s := range ss {
			if inB(s) {
				ss[i] = move(s)
			}
		}
	}
}

func unmarshalAppend(dst []Event, b []byte, in *Interner) ([]Event, error) {
	d := decoder{full: b[:len(b):len(b)], in: in}
	if in == nil || len(b) == 0 {
		d.str = string(b)
	} else {
		// The strings alias b only while decoding: each event's
		// strings that are not interned are then copied out together
		// (own), which is smaller than a copy of the whole value (the
		// value is mostly attribute names).
		d.str = unsafe.String(&b[0], len(b))
	}
	n0 := len(dst)
	events := dst
	rest := d.full
	for len(rest) > 0 {
		num, typ, val, _, r, err := pbField(rest)
		if err != nil {
			return clearTail(events, n0), fmt.Errorf("cannot unmarshal events: %w", err)
		}
		rest = r
		if num == 1 && typ == protowire.BytesType {
			if events, err = d.resourceLogs(val, events); err != nil {
				return clearTail(events, n0), fmt.Errorf("cannot unmarshal events: %w", err)
			}
		}
	}
	return events, nil
}

// clearTail truncates events to n, zeroing what was decoded past it so the
// backing array keeps no references to a rejected value.
func clearTail(events []Event, n int) []Event {
	if events == nil {
		return nil
	}
	clear(events[n:])
	return events[:n]
}

func (d *decoder) resourceLogs(b []byte, events []Event) ([]Event, error) {
	var res Event           // resource fields only
	var scopesBuf [4][]byte // one per value in practice; no allocation
	scopes := scopesBuf[:0]
	for len(b) > 0 {
		num, typ, val, _, r, err := pbField(b)
		if err != nil {
			return events, err
		}
		b = r
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case 1: // resource
			if err := d.resource(val, &res); err != nil {
				return events, err
			}
		case 2: // scope_logs (read after the resource, whatever the order)
			scopes = append(scopes, val)
		}
	}
	for _, sl := range scopes {
		for len(sl) > 0 {
			num, typ, val, _, r, err := pbField(sl)
			if err != nil {
				return events, err
			}
			sl = r
			if num != 2 || typ != protowire.BytesType { // log_records
				continue
			}
			events = append(events, Event{Tenant: res.Tenant, ServiceName: res.ServiceName,
				ServiceInstance: res.ServiceInstance, HostName: res.HostName})
			ours, err := d.record(val, &events[len(events)-1])
			if err != nil {
				return events, err
			}
			if !ours {
				events[len(events)-1] = Event{}
				events = events[:len(events)-1]
			} else if d.in != nil {
				e := &events[len(events)-1]
				d.in.Event(e)
				own(e, d.full)
			}
		}
	}
	return events, nil
}

func (d *decoder) resource(b []byte, res *Event) error {
	for len(b) > 0 {
		num, typ, val, _, r, err := pbField(b)
		if err != nil {
			return err
		}
		b = r
		if num != 1 || typ != protowire.BytesType {
			continue
		}
		var v anyValue
		k, err := d.keyValue(val, &v)
		if err != nil {
			return err
		}
		switch k {
		case attrTenant:
			res.Tenant = v.s
		case attrServiceName:
			res.ServiceName = v.s
		case attrServiceInstance:
			res.ServiceInstance = v.s
		case attrHostName:
			res.HostName = v.s
		}
	}
	return nil
}

// record decodes one LogRecord into e; ours says its event name is ours.
func (d *decoder) record(b []byte, e *Event) (ours bool, err error) {
	var v anyValue
	for len(b) > 0 {
		num, typ, val, u, r, err := pbField(b)
		if err != nil {
			return false, err
		}
		b = r
		switch {
		case num == 1 && typ == protowire.Fixed64Type:
			e.Time = nanosToTime(u)
		case num == 11 && typ == protowire.Fixed64Type:
			e.IngestedAt = nanosToTime(u)
		case num == 9 && typ == protowire.BytesType && len(val) == 16 && !allZero(val):
			e.TraceID = hex.EncodeToString(val)
		case num == 10 && typ == protowire.BytesType && len(val) == 8 && !allZero(val):
			e.SpanID = hex.EncodeToString(val)
		case num == 12 && typ == protowire.BytesType:
			ours = ours || d.sub(val) == AuditEventName
		case num == 6 && typ == protowire.BytesType:
			v = anyValue{}
			k, err := d.keyValue(val, &v)
			if err != nil {
				return false, err
			}
			if k == attrEventName {
				ours = ours || v.s == AuditEventName
				continue
			}
			decodeAttr(e, k, &v)
		}
	}
	if len(e.AttrValues) != len(e.AttrKeys) {
		// Keep the arrays parallel whatever a foreign producer wrote.
		n := min(len(e.AttrKeys), len(e.AttrValues))
		e.AttrKeys, e.AttrValues = e.AttrKeys[:n], e.AttrValues[:n]
	}
	return ours, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func nanosToTime(u uint64) time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(u)).UTC()
}

// keyValue decodes a KeyValue; the value's string, int or string array.
func (d *decoder) keyValue(b []byte, v *anyValue) (string, error) {
	// Fast path for the layout every encoder writes (key, then the value
	// as the last field, short lengths): no generic field walk. Anything
	// else takes the general loop below, which accepts any valid order.
	if len(b) >= 4 && b[0] == 0x0a && b[1] < 0x80 {
		p := 2 + int(b[1])
		if p+2 <= len(b) && b[p] == 0x12 && b[p+1] < 0x80 && p+2+int(b[p+1]) == len(b) {
			val := b[p+2:]
			if !d.simpleValue(val, v) {
				if err := d.anyValue(val, v); err != nil {
					return "", err
				}
			}
			return d.sub(b[2:p]), nil
		}
	}
	var key string
	for len(b) > 0 {
		num, typ, val, _, r, err := pbField(b)
		if err != nil {
			return "", err
		}
		b = r
		if typ != protowire.BytesType {
			continue
		}
		switch num {
		case 1:
			key = d.sub(val)
		case 2:
			if err := d.anyValue(val, v); err != nil {
				return "", err
			}
		}
	}
	return key, nil
}

// simpleValue decodes an AnyValue that is only a short string_value or
// int_value; false means "use anyValue".
func (d *decoder) simpleValue(b []byte, v *anyValue) bool {
	switch {
	case len(b) == 0:
		return true
	case len(b) >= 2 && b[0] == 0x0a && b[1] < 0x80 && 2+int(b[1]) == len(b): // string_value
		v.s = d.sub(b[2:])
		return true
	case b[0] == 0x18: // int_value
		u, n := protowire.ConsumeVarint(b[1:])
		if n > 0 && 1+n == len(b) {
			v.i = int64(u)
			return true
		}
	}
	return false
}

func (d *decoder) anyValue(b []byte, v *anyValue) error {
	for len(b) > 0 {
		num, typ, val, u, r, err := pbField(b)
		if err != nil {
			return err
		}
		b = r
		switch {
		case num == 1 && typ == protowire.BytesType:
			v.s = d.sub(val)
		case num == 3 && typ == protowire.VarintType:
			v.i = int64(u)
		case num == 5 && typ == protowire.BytesType: // array_value
			if err := d.stringArray(val, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *decoder) stringArray(b []byte, v *anyValue) error {
	n := 0
	for c := b; len(c) > 0; n++ {
		_, _, _, _, r, err := pbField(c)
		if err != nil {
			return err
		}
		c = r
	}
	v.arr = make([]string, 0, n)
	for len(b) > 0 {
		num, typ, val, _, r, err := pbField(b)
		if err != nil {
			return err
		}
		b = r
		if num != 1 || typ != protowire.BytesType {
			continue
		}
		var elem anyValue
		// Elements are AnyValues; only their string part is used (no
		// nesting: an array inside an element is ignored, which also
		// bounds recursion).
		for e := val; len(e) > 0; {
			en, et, ev, _, er, err := pbField(e)
			if err != nil {
				return err
			}
			e = er
			if en == 1 && et == protowire.BytesType {
				elem.s = d.sub(ev)
			}
		}
		v.arr = append(v.arr, elem.s)
	}
	return nil
}
