package event

import (
	"encoding/json"
	"strings"
)

// OpenLLMetry (@traceloop/instrumentation-mcp, opentelemetry-instrumentation-mcp)
// does not follow the MCP semantic conventions. It names spans "<method>.mcp"
// and "<tool>.tool" and puts request and response in the JSON strings
// traceloop.entity.input / traceloop.entity.output. See docs/event.md.

// tlPayload is the union of the input and output JSON shapes it records.
type tlPayload struct {
	// tools/call input
	ToolName  string          `json:"tool_name"`
	Name      string          `json:"name"` // prompts/get input, tools/call (Python)
	Arguments json.RawMessage `json:"arguments"`
	// tools/call output
	Result   json.RawMessage `json:"result"`
	IsError  *bool           `json:"is_error"`
	IsError2 *bool           `json:"isError"`
	// resources/read input
	URI string `json:"uri"`
	// initialize
	ProtocolVersion string  `json:"protocolVersion"`
	ClientInfo      *tlInfo `json:"clientInfo"`
	ServerInfo      *tlInfo `json:"serverInfo"`
	// tools/list output
	Tools []rawToolDef `json:"tools"`
	// Python wraps the request: {"params": {...}} / {"method": ..., "params": ...}
	Method string     `json:"method"`
	Params *tlPayload `json:"params"`
}

type tlInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// parseTL parses an entity payload; nil when it is not a JSON object.
func parseTL(s string) *tlPayload {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '{' {
		return nil
	}
	var p tlPayload
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil
	}
	if p.Params != nil {
		// Merge the wrapped request's fields where the outer ones are empty.
		q := p.Params
		if p.ToolName == "" {
			p.ToolName = q.ToolName
		}
		if p.Name == "" {
			p.Name = q.Name
		}
		if len(p.Arguments) == 0 {
			p.Arguments = q.Arguments
		}
		if p.URI == "" {
			p.URI = q.URI
		}
		if p.ProtocolVersion == "" {
			p.ProtocolVersion = q.ProtocolVersion
		}
		if p.ClientInfo == nil {
			p.ClientInfo = q.ClientInfo
		}
	}
	return &p
}

// traceloop maps the entity input/output of an OpenLLMetry span onto e and
// returns the tool definitions a tools/list output carries.
func (m *mapper) traceloop(e *Event, s *scratch) []toolDef {
	in, out := parseTL(s.tlInput), parseTL(s.tlOutput)
	var defs []toolDef
	switch e.Method {
	case "tools/call":
		if in != nil {
			if e.ToolName == "" {
				e.ToolName = firstNonEmpty(in.ToolName, in.Name)
			}
			if e.Arguments == "" && len(in.Arguments) > 0 {
				e.Arguments = string(in.Arguments)
				e.ArgumentsSize = clampU32(len(e.Arguments))
			}
		} else if e.Arguments == "" && s.tlInput != "" {
			e.Arguments = s.tlInput
			e.ArgumentsSize = clampU32(len(e.Arguments))
		}
		if out != nil {
			if out.IsError != nil && *out.IsError || out.IsError2 != nil && *out.IsError2 {
				s.isError = true
			}
			if e.Result == "" {
				if len(out.Result) > 0 {
					e.Result = jsonText(out.Result)
				} else {
					e.Result = s.tlOutput
				}
				e.ResultSize = clampU32(len(e.Result))
			}
		} else if e.Result == "" && s.tlOutput != "" {
			e.Result = s.tlOutput
			e.ResultSize = clampU32(len(e.Result))
		}
		return nil
	case "initialize":
		if in != nil {
			if in.ClientInfo != nil && e.ClientName == "" {
				e.ClientName, e.ClientVersion = in.ClientInfo.Name, in.ClientInfo.Version
			}
			if e.ProtocolVersion == "" {
				e.ProtocolVersion = in.ProtocolVersion
			}
		}
		if out != nil {
			if out.ServerInfo != nil && e.ServerName == "" {
				e.ServerName, e.ServerVersion = out.ServerInfo.Name, out.ServerInfo.Version
			}
			if out.ProtocolVersion != "" {
				e.ProtocolVersion = out.ProtocolVersion // the negotiated version
			}
		}
	case "tools/list":
		if out != nil {
			defs = make([]toolDef, 0, len(out.Tools))
			for i := range out.Tools {
				defs = append(defs, out.Tools[i].toolDef())
			}
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		if in != nil && e.ResourceURI == "" {
			e.ResourceURI = in.URI
		}
	case "prompts/get":
		if in != nil {
			if e.PromptName == "" {
				e.PromptName = in.Name
			}
			if e.Arguments == "" && len(in.Arguments) > 0 {
				e.Arguments = string(in.Arguments)
				e.ArgumentsSize = clampU32(len(e.Arguments))
			}
		}
	}
	if e.Arguments == "" && s.tlInput != "" {
		e.Arguments = s.tlInput
		e.ArgumentsSize = clampU32(len(e.Arguments))
	}
	if e.Result == "" && s.tlOutput != "" {
		e.Result = s.tlOutput
		e.ResultSize = clampU32(len(e.Result))
	}
	return defs
}

// jsonText returns a JSON string's text, or other JSON unchanged.
func jsonText(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s
		}
	}
	return string(raw)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
