package otlpin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mcpwatch/mcpwatch/internal/event"
)

// The shape check walks an OTLP export request on the wire (protowire, no
// decoding, an explicit stack instead of recursion) before pdata decodes
// it: it rejects values nested deeper than the limit, and counts the
// messages pdata would allocate, so that the decoded size is reserved
// against the in-flight budget before it is allocated. An 8 MB body of
// nested AnyValues is ~880 000 levels that pdata decodes into ~1 GB.
//
// The direct decoder does not need it: its own validation walk stops at
// the depth limit and asks before it allocates (directLimits). What it
// declines comes here, so a request too deep for it is answered by
// scanShape's error.

// msgKind is an OTLP message the walk descends into; only the messages on
// the way to an AnyValue are described, every other field is skipped.
type msgKind uint8

const (
	kNone msgKind = iota
	kTracesRequest
	kLogsRequest
	kResourceSpans
	kResourceLogs
	kResource
	kScopeSpans
	kScopeLogs
	kScope
	kSpan
	kSpanEvent
	kSpanLink
	kLogRecord
	kKeyValue
	kAnyValue
	kArrayValue
	kKeyValueList
)

// child is the message kind of field num of a k, kNone for scalars and
// messages without values. The definitions are opentelemetry-proto's.
func (k msgKind) child(num protowire.Number) msgKind {
	switch k {
	case kTracesRequest: // ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
		if num == 1 {
			return kResourceSpans
		}
	case kLogsRequest: // ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
		if num == 1 {
			return kResourceLogs
		}
	case kResourceSpans: // { Resource resource = 1; repeated ScopeSpans scope_spans = 2; deprecated instrumentation_library_spans = 1000; }
		switch num {
		case 1:
			return kResource
		case 2, 1000:
			return kScopeSpans
		}
	case kResourceLogs: // { Resource resource = 1; repeated ScopeLogs scope_logs = 2; deprecated instrumentation_library_logs = 1000; }
		switch num {
		case 1:
			return kResource
		case 2, 1000:
			return kScopeLogs
		}
	case kResource: // Resource { repeated KeyValue attributes = 1; }
		if num == 1 {
			return kKeyValue
		}
	case kScopeSpans: // { InstrumentationScope scope = 1; repeated Span spans = 2; }
		switch num {
		case 1:
			return kScope
		case 2:
			return kSpan
		}
	case kScopeLogs: // { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; }
		switch num {
		case 1:
			return kScope
		case 2:
			return kLogRecord
		}
	case kScope: // InstrumentationScope { repeated KeyValue attributes = 3; }
		if num == 3 {
			return kKeyValue
		}
	case kSpan: // Span { repeated KeyValue attributes = 9; repeated Event events = 11; repeated Link links = 13; }
		switch num {
		case 9:
			return kKeyValue
		case 11:
			return kSpanEvent
		case 13:
			return kSpanLink
		}
	case kSpanEvent: // Span.Event { repeated KeyValue attributes = 3; }
		if num == 3 {
			return kKeyValue
		}
	case kSpanLink: // Span.Link { repeated KeyValue attributes = 4; }
		if num == 4 {
			return kKeyValue
		}
	case kLogRecord: // LogRecord { AnyValue body = 5; repeated KeyValue attributes = 6; }
		switch num {
		case 5:
			return kAnyValue
		case 6:
			return kKeyValue
		}
	case kKeyValue: // KeyValue { string key = 1; AnyValue value = 2; }
		if num == 2 {
			return kAnyValue
		}
	case kAnyValue: // AnyValue { oneof value { ...; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; ... } }
		switch num {
		case 5:
			return kArrayValue
		case 6:
			return kKeyValueList
		}
	case kArrayValue: // ArrayValue { repeated AnyValue values = 1; }
		if num == 1 {
			return kAnyValue
		}
	case kKeyValueList: // KeyValueList { repeated KeyValue values = 1; }
		if num == 1 {
			return kKeyValue
		}
	}
	return kNone
}

// shape is what the walk found.
type shape struct {
	messages int // every message entered (spans, key-values, values, ...)
}

// Memory a decoded request holds beyond its body, per message. pdataCost
// is pdata's: a message's Go struct, the pointer to it and the slice growth
// that appended it (an empty span is ~253 bytes, an empty attribute ~220:
// TestDecodedEstimateCoversPdata). The direct decoder (event.TracesFromProto)
// reads scalars in place and materialises only arrays and maps through
// pdata; what it allocates per span or log record once parsed is the
// event, its redaction and its Kafka encoding, eventCost, a generous bound.
const (
	pdataCost = 288
	eventCost = 1024
)

// pdataBytes estimates the memory of a request of wire bytes with this
// shape decoded by pdata: the body, the strings copied out of it, and the
// messages.
func (s shape) pdataBytes(wire int) int64 {
	return 2*int64(wire) + int64(s.messages)*pdataCost
}

// directLimits bound the direct decoder by the receiver's limits and
// reserve its memory in l as it goes: its parse's slices before they grow,
// then, before the mapping, eventCost per record and pdataCost per nested
// array or map element. A refused reservation stops the decoder and is
// left in *refused.
func (r *Receiver) directLimits(l *lease, refused *error) event.DecodeLimits {
	reserve := func(n int64) bool {
		*refused = l.grow(n)
		return *refused == nil
	}
	return event.DecodeLimits{
		MaxValueDepth: r.cfg.Limits.MaxValueDepth,
		Grow:          reserve,
		Admit: func(records, values int) bool {
			return reserve(int64(records)*eventCost + int64(values)*pdataCost)
		},
	}
}

type frame struct {
	kind msgKind
	b    []byte
}

// scanShape walks body, a request of kind root, and rejects it (Permanent,
// 400 / INVALID_ARGUMENT) when it is not protobuf or an AnyValue nests
// deeper than maxDepth.
func scanShape(body []byte, root msgKind, maxDepth int) (shape, error) {
	var s shape
	stack := make([]frame, 1, 16)
	stack[0] = frame{kind: root, b: body}
	depth := 0 // AnyValues on the stack
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if len(top.b) == 0 {
			if top.kind == kAnyValue {
				depth--
			}
			stack = stack[:len(stack)-1]
			continue
		}
		num, typ, n := protowire.ConsumeTag(top.b)
		if n < 0 {
			return s, malformed(root, protowire.ParseError(n))
		}
		top.b = top.b[n:]
		if typ == protowire.BytesType {
			if k := top.kind.child(num); k != kNone {
				v, n := protowire.ConsumeBytes(top.b)
				if n < 0 {
					return s, malformed(root, protowire.ParseError(n))
				}
				top.b = top.b[n:]
				s.messages++
				switch k {
				case kKeyValue:
					// Most attributes: a key and a scalar value, counted
					// without a frame of their own.
					if vals, ok := flatKV(v); ok {
						if vals > 0 && depth+1 > maxDepth {
							return s, tooDeep(maxDepth)
						}
						s.messages += vals
						continue
					}
				case kAnyValue:
					if depth++; depth > maxDepth {
						return s, tooDeep(maxDepth)
					}
				}
				if len(v) == 0 || k == kAnyValue && scalar(v) {
					if k == kAnyValue {
						depth--
					}
					continue
				}
				stack = append(stack, frame{kind: k, b: v})
				continue
			}
		}
		n = skipField(num, typ, top.b)
		if n < 0 {
			return s, malformed(root, protowire.ParseError(n))
		}
		top.b = top.b[n:]
	}
	return s, nil
}

// skipField is protowire.ConsumeFieldValue with the common case, a
// length-delimited field, called directly.
func skipField(num protowire.Number, typ protowire.Type, b []byte) int {
	if typ == protowire.BytesType {
		_, n := protowire.ConsumeBytes(b)
		return n
	}
	return protowire.ConsumeFieldValue(num, typ, b)
}

func tooDeep(maxDepth int) error {
	return NewError(Permanent, "too_deep", 0, nil,
		"an attribute or log body value nests deeper than %d levels (receiver.limits.max_value_depth)", maxDepth)
}

// flatKV counts the values of a KeyValue when all of them are scalars
// (ok); else the walk descends into it.
func flatKV(b []byte) (values int, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		if num == 2 && typ == protowire.BytesType { // KeyValue.value
			v, m := protowire.ConsumeBytes(b)
			if m < 0 || len(v) > 0 && !scalar(v) {
				return 0, false
			}
			values++
			b = b[m:]
			continue
		}
		m := skipField(num, typ, b)
		if m < 0 {
			return 0, false
		}
		b = b[m:]
	}
	return values, true
}

// scalar reports whether v, an AnyValue, is one field that is not an
// array or a map (most attributes): nothing to descend into. Malformed
// values are not scalar, so that the walk reports them.
func scalar(v []byte) bool {
	num, typ, n := protowire.ConsumeTag(v)
	if n < 0 || num == 5 || num == 6 {
		return false
	}
	m := skipField(num, typ, v[n:])
	return m >= 0 && n+m == len(v)
}

func malformed(root msgKind, err error) error {
	return NewError(Permanent, "malformed", 0, err, "cannot decode OTLP %s (%s)", root.signal(), ctProto)
}

func (k msgKind) signal() string {
	if k == kLogsRequest {
		return "logs"
	}
	return "traces"
}

// kindOf is the request kind of a signal.
func kindOf(signal string) msgKind {
	switch signal {
	case "traces":
		return kTracesRequest
	case "logs":
		return kLogsRequest
	}
	panic(fmt.Sprintf("otlpin: no request kind for signal %q", signal))
}

// scanJSONShape is scanShape for OTLP/JSON: a token walk (encoding/json,
// iterative) that bounds the nesting of objects and arrays and counts
// them as messages. One AnyValue level is at most four JSON levels
// ({"kvlistValue":{"values":[{"value":…}]}}), the request around it eight.
func scanJSONShape(body []byte, signal string, maxDepth int) (shape, error) {
	var s shape
	limit := 4*maxDepth + 8
	dec := json.NewDecoder(bytes.NewReader(body))
	depth := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if depth != 0 {
				return s, NewError(Permanent, "malformed", 0, io.ErrUnexpectedEOF, "cannot decode OTLP %s (%s)", signal, ctJSON)
			}
			return s, nil
		}
		if err != nil {
			return s, NewError(Permanent, "malformed", 0, err, "cannot decode OTLP %s (%s)", signal, ctJSON)
		}
		d, ok := tok.(json.Delim)
		if !ok {
			continue
		}
		switch d {
		case '{', '[':
			s.messages++
			if depth++; depth > limit {
				return s, NewError(Permanent, "too_deep", 0, nil,
					"an attribute or log body value nests deeper than %d levels (receiver.limits.max_value_depth)", maxDepth)
			}
		default:
			depth--
		}
	}
}
