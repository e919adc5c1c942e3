package event

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// toolDef is one tool definition as a server advertised it.
type toolDef struct {
	Name           string
	Description    string
	hasDescription bool
	InputSchema    string // canonical JSON, "" when unknown
	Annotations    string // canonical JSON, "" when unknown
	// canonical says InputSchema and Annotations are known to be canonical
	// JSON (or empty), so hashing need not parse them again.
	canonical bool
}

func (d *toolDef) fill(e *Event) {
	e.ToolDescription = d.Description
	e.ToolInputSchema = d.InputSchema
	e.ToolAnnotations = d.Annotations
	if d.canonical {
		e.ToolDefinitionHash = hashCanonicalDef(d.Name, d.Description, d.InputSchema, d.Annotations)
		return
	}
	e.ToolDefinitionHash = ToolDefinitionHash(d.Name, d.Description, d.InputSchema, d.Annotations)
}

// hashCanonicalDef is ToolDefinitionHash for a schema and annotations that
// are already canonical JSON or empty.
func hashCanonicalDef(name, description, inputSchema, annotations string) string {
	b := make([]byte, 0, 64+len(name)+len(description)+len(inputSchema)+len(annotations))
	b = append(b, `{"annotations":`...)
	b = appendOrNull(b, annotations)
	b = append(b, `,"description":`...)
	b = appendJSONString(b, description)
	b = append(b, `,"inputSchema":`...)
	b = appendOrNull(b, inputSchema)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, name)
	b = append(b, '}')
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func appendOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return append(b, s...)
}

// ToolDefinitionHash is the lowercase hex SHA-256 of the canonical JSON of
// a tool definition:
//
//	{"annotations":A,"description":D,"inputSchema":S,"name":N}
//
// keys in this (byte-sorted) order, no whitespace; D and N JSON strings;
// A and S the canonical form of the given JSON, or null when empty. Canonical
// JSON (see CanonicalJSON): object keys sorted by bytes, no insignificant
// whitespace, strings re-escaped minimally (no HTML escaping), numbers kept as
// written. A schema or annotations value that is not valid JSON is hashed as a
// JSON string of its raw text.
func ToolDefinitionHash(name, description, inputSchema, annotations string) string {
	b := make([]byte, 0, 64+len(name)+len(description)+len(inputSchema)+len(annotations))
	b = append(b, `{"annotations":`...)
	b = appendCanonicalOrString(b, annotations)
	b = append(b, `,"description":`...)
	b = appendJSONString(b, description)
	b = append(b, `,"inputSchema":`...)
	b = appendCanonicalOrString(b, inputSchema)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, name)
	b = append(b, '}')
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func appendCanonicalOrString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	c, err := CanonicalJSON([]byte(s))
	if err != nil {
		return appendJSONString(b, s)
	}
	return append(b, c...)
}

var errTooDeep = errors.New("JSON nested too deeply")

// CanonicalJSON re-encodes a JSON document: object keys sorted by bytes
// (for duplicate keys the last wins), no whitespace, strings escaped
// minimally (invalid UTF-8 and lone surrogates become U+FFFD), numbers as
// written. Nesting deeper than 32 levels and trailing data are rejected.
// (canonical.go; TestCanonicalJSONMatchesReference checks it against a
// encoding/json based implementation.)
func CanonicalJSON(raw []byte) ([]byte, error) {
	c := canonicalizer{in: raw, out: make([]byte, 0, len(raw))}
	c.ws()
	if err := c.value(0); err != nil {
		return nil, err
	}
	c.ws()
	if c.pos != len(c.in) {
		return nil, errors.New("trailing data after JSON value")
	}
	return c.out, nil
}

// canonical returns the canonical JSON of raw, or raw as is and false.
func canonical(raw []byte) (string, bool) {
	c, err := CanonicalJSON(raw)
	if err != nil {
		return string(raw), false
	}
	return string(c), true
}

// canonicalOrRaw returns the canonical JSON of s, or s unchanged if it is
// not valid JSON (or too deep).
func canonicalOrRaw(s string) string {
	if s == "" {
		return ""
	}
	c, err := CanonicalJSON([]byte(s))
	if err != nil {
		return s
	}
	return string(c)
}

// rawToolDef is the union of the shapes tool definitions arrive in: MCP's
// Tool (inputSchema), GenAI's definitions (parameters), snake_case variants,
// and OpenAI's {"type":"function","function":{...}}.
type rawToolDef struct {
	Name         string          `json:"name"`
	Description  *string         `json:"description"`
	InputSchema  json.RawMessage `json:"inputSchema"`
	InputSchema2 json.RawMessage `json:"input_schema"`
	Parameters   json.RawMessage `json:"parameters"`
	Annotations  json.RawMessage `json:"annotations"`
	Function     *rawToolDef     `json:"function"`
}

func (r *rawToolDef) toolDef() toolDef {
	if r.Name == "" && r.Function != nil && r.Function.Function == nil {
		return r.Function.toolDef()
	}
	d := toolDef{Name: r.Name, canonical: true}
	if r.Description != nil {
		d.Description, d.hasDescription = *r.Description, true
	}
	schema := r.InputSchema
	if len(schema) == 0 {
		schema = r.InputSchema2
	}
	if len(schema) == 0 {
		schema = r.Parameters
	}
	var ok bool
	if len(schema) > 0 && string(schema) != "null" {
		if d.InputSchema, ok = canonical(schema); !ok {
			d.canonical = false
		}
	}
	if len(r.Annotations) > 0 && string(r.Annotations) != "null" {
		if d.Annotations, ok = canonical(r.Annotations); !ok {
			d.canonical = false
		}
	}
	return d
}

// parseToolDefinitions reads a JSON array of tool definitions, or an object
// {"tools":[...]} (a tools/list result). ok is false when s is not one of
// those shapes.
func parseToolDefinitions(s string) ([]toolDef, bool) {
	var list []rawToolDef
	if err := json.Unmarshal([]byte(s), &list); err != nil {
		var obj struct {
			Tools []rawToolDef `json:"tools"`
		}
		if err := json.Unmarshal([]byte(s), &obj); err != nil {
			return nil, false
		}
		list = obj.Tools
	}
	out := make([]toolDef, 0, len(list))
	for i := range list {
		out = append(out, list[i].toolDef())
	}
	return out, true
}

// toolDefFromBody reads a tool definition from an mcp.tools.snapshot log
// body: a map or a JSON string with name, description, inputSchema,
// annotations.
func toolDefFromBody(body pcommon.Value) toolDef {
	var raw string
	switch body.Type() {
	case pcommon.ValueTypeStr:
		raw = body.Str()
	case pcommon.ValueTypeMap:
		raw = valueString(body)
	default:
		return toolDef{}
	}
	var r rawToolDef
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return toolDef{}
	}
	return r.toolDef()
}
