// Package playbook runs response playbooks (docs/architecture.md): YAML files with a
// `when` condition (CEL over the incident) and ordered steps — notify, http,
// approval, annotate. Run state is stored in ClickHouse `playbook_runs`
// before each step acts, so the instance that owns the incident next (after
// a rebalance or a crash) resumes at the first unfinished step; every run,
// step, output and approval is recorded in ClickHouse `actions`.
package playbook

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"cel.dev/cel-go/cel"
	"gopkg.in/yaml.v3"

	"github.com/mcpwatch/mcpwatch/internal/event"
	"github.com/mcpwatch/mcpwatch/internal/incident"
)

// Playbook is one YAML file.
type Playbook struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// When is a CEL expression over `incident` that must be a bool.
	When  string `yaml:"when"`
	Steps []Step `yaml:"steps"`

	prg  cel.Program
	file string
}

// Step is one step; exactly one of Notify, HTTP, Approval, Annotate is set.
type Step struct {
	Name     string        `yaml:"name"`
	Notify   *NotifyStep   `yaml:"notify"`
	HTTP     *HTTPStep     `yaml:"http"`
	Approval *ApprovalStep `yaml:"approval"`
	Annotate *AnnotateStep `yaml:"annotate"`

	tmpls map[string]*template.Template
}

// Type returns notify | http | approval | annotate.
func (s Step) Type() string {
	switch {
	case s.Notify != nil:
		return "notify"
	case s.HTTP != nil:
		return "http"
	case s.Approval != nil:
		return "approval"
	case s.Annotate != nil:
		return "annotate"
	}
	return ""
}

// NotifyStep queues a message to a configured receiver.
type NotifyStep struct {
	Receiver string `yaml:"receiver"`
	Note     string `yaml:"note"` // template
}

// HTTPStep sends one request. Method, URL, header values and body are Go
// templates over {incident, run_id, playbook}; ${env:NAME} and
// ${file:/path} insert secrets (never taken from incident data).
type HTTPStep struct {
	Method       string            `yaml:"method"`
	URL          string            `yaml:"url"`
	Headers      map[string]string `yaml:"headers"`
	Body         string            `yaml:"body"`
	Timeout      time.Duration     `yaml:"timeout"`       // default 10s
	ExpectStatus []int             `yaml:"expect_status"` // default any 2xx
	Retries      int               `yaml:"retries"`       // extra attempts on error/unexpected status, default 2
}

// ApprovalStep waits for a human through the API.
type ApprovalStep struct {
	Prompt    string        `yaml:"prompt"`
	Timeout   time.Duration `yaml:"timeout"`    // default 1h
	OnTimeout string        `yaml:"on_timeout"` // continue | abort (default)
}

// AnnotateStep adds a note to the incident.
type AnnotateStep struct {
	Note string `yaml:"note"` // template
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`)

var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(cel.Variable("incident", cel.MapType(cel.StringType, cel.DynType)))
	if err != nil {
		panic(err)
	}
	return env
}()

// Load reads every *.yaml / *.yml playbook in fsys (a directory: os.DirFS)
// and reports all problems at once.
func Load(fsys fs.FS) ([]*Playbook, error) {
	var pbs []*Playbook
	var errs []error
	names := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || (filepath.Ext(p) != ".yaml" && filepath.Ext(p) != ".yml") {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("cannot read playbook %s: %w", p, err)
		}
		pb, perr := Parse(b)
		if perr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, perr))
			return nil
		}
		pb.file = p
		if other, dup := names[pb.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name %q already used by %s", p, pb.Name, other))
			return nil
		}
		names[pb.Name] = p
		pbs = append(pbs, pb)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cannot load playbooks: %w", err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(pbs, func(a, b *Playbook) int { return strings.Compare(a.Name, b.Name) })
	return pbs, nil
}

// LoadDir loads the playbooks of a directory.
func LoadDir(dir string) ([]*Playbook, error) { return Load(os.DirFS(dir)) }

// Parse parses and validates one playbook (CEL compiled, templates parsed).
func Parse(b []byte) (*Playbook, error) {
	var pb Playbook
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&pb); err != nil {
		return nil, fmt.Errorf("cannot parse playbook: %w", err)
	}
	var errs []error
	if !nameRe.MatchString(pb.Name) {
		errs = append(errs, fmt.Errorf("name %q must match %s", pb.Name, nameRe))
	}
	if strings.TrimSpace(pb.When) == "" {
		errs = append(errs, errors.New("when is required"))
	} else {
		ast, iss := celEnv.Compile(pb.When)
		if iss.Err() != nil {
			errs = append(errs, fmt.Errorf("when: %w", iss.Err()))
		} else if ast.OutputType() != cel.BoolType {
			errs = append(errs, fmt.Errorf("when must be a bool, not %s", ast.OutputType()))
		} else if prg, err := celEnv.Program(ast, cel.CostLimit(100000)); err != nil {
			errs = append(errs, fmt.Errorf("when: %w", err))
		} else {
			pb.prg = prg
		}
	}
	if len(pb.Steps) == 0 {
		errs = append(errs, errors.New("steps is empty"))
	}
	seen := map[string]bool{}
	for i := range pb.Steps {
		s := &pb.Steps[i]
		if !nameRe.MatchString(s.Name) {
			errs = append(errs, fmt.Errorf("steps[%d]: name %q must match %s", i, s.Name, nameRe))
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("steps[%d]: duplicate name %q", i, s.Name))
		}
		seen[s.Name] = true
		n := 0
		for _, set := range []bool{s.Notify != nil, s.HTTP != nil, s.Approval != nil, s.Annotate != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			errs = append(errs, fmt.Errorf("step %q: exactly one of notify, http, approval, annotate", s.Name))
			continue
		}
		s.tmpls = map[string]*template.Template{}
		parse := func(key, src string) {
			t, err := parseTemplate(s.Name+"/"+key, src)
			if err != nil {
				errs = append(errs, fmt.Errorf("step %q: %s: %w", s.Name, key, err))
				return
			}
			s.tmpls[key] = t
		}
		switch {
		case s.Notify != nil:
			if s.Notify.Receiver == "" {
				errs = append(errs, fmt.Errorf("step %q: notify.receiver is required", s.Name))
			}
			parse("note", s.Notify.Note)
		case s.HTTP != nil:
			h := s.HTTP
			if h.Method == "" {
				h.Method = http.MethodPost
			}
			h.Method = strings.ToUpper(h.Method)
			if h.URL == "" {
				errs = append(errs, fmt.Errorf("step %q: http.url is required", s.Name))
			}
			if h.Timeout <= 0 {
				h.Timeout = 10 * time.Second
			}
			if h.Retries == 0 {
				h.Retries = 2
			}
			parse("method", h.Method)
			parse("url", h.URL)
			parse("body", h.Body)
			for k, v := range h.Headers {
				parse("header:"+k, v)
			}
		case s.Approval != nil:
			if s.Approval.Timeout <= 0 {
				s.Approval.Timeout = time.Hour
			}
			switch s.Approval.OnTimeout {
			case "":
				s.Approval.OnTimeout = "abort"
			case "abort", "continue":
			default:
				errs = append(errs, fmt.Errorf("step %q: on_timeout must be continue or abort", s.Name))
			}
			parse("prompt", s.Approval.Prompt)
		case s.Annotate != nil:
			parse("note", s.Annotate.Note)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &pb, nil
}

// Matches evaluates `when` for the incident.
func (pb *Playbook) Matches(inc incident.Incident) (bool, error) {
	out, _, err := pb.prg.Eval(map[string]any{"incident": IncidentVars(inc)})
	if err != nil {
		return false, fmt.Errorf("cannot evaluate playbook %s when: %w", pb.Name, err)
	}
	b, ok := out.Value().(bool)
	return ok && b, nil
}

// IncidentVars is the `incident` variable of `when` and the templates:
// the incident's JSON fields, plus severity_rank (1 info … 5 critical).
func IncidentVars(inc incident.Incident) map[string]any {
	tags := inc.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"incident_id": inc.IncidentID, "tenant": inc.Tenant, "rule_id": inc.RuleID, "rule_title": inc.RuleTitle,
		"group_key": inc.GroupKey, "title": inc.Title, "summary": inc.Summary, "status": string(inc.Status),
		"severity": string(inc.Severity), "severity_rank": int64(event.Severity(inc.Severity).Rank()), "tags": tags,
		"finding_count": int64(inc.FindingCount), "agent_id": inc.AgentID, "user_id": inc.UserID,
		"session_key": inc.SessionKey, "server_name": inc.ServerName, "tool_name": inc.ToolName, "assignee": inc.Assignee,
	}
}

var secretRe = regexp.MustCompile(`\$\{(env|file):([^}]+)\}`)

// parseTemplate turns ${env:X}/${file:/p} into {{secret "env" "X"}} calls
// before parsing, so secrets come only from the playbook's own text, never
// from incident data, and a secret's value is never parsed as a template.
func parseTemplate(name, src string) (*template.Template, error) {
	src = secretRe.ReplaceAllStringFunc(src, func(m string) string {
		p := secretRe.FindStringSubmatch(m)
		return fmt.Sprintf("{{secret %q %q}}", p[1], p[2])
	})
	return template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"secret":     func(kind, ref string) (string, error) { return "", nil }, // replaced at execution
		"pathescape": pathEscape,
		"urlquery":   template.URLQueryEscaper,
		"json":       jsonString,
	}).Parse(src)
}
