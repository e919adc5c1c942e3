package playbook

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/template"
)

func pathEscape(s string) string { return url.PathEscape(s) }

// jsonString renders v as a JSON value (strings quoted and escaped), for bodies.
func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func readSecret(kind, ref string) (string, error) {
	switch kind {
	case "env":
		v, ok := os.LookupEnv(ref)
		if !ok {
			return "", fmt.Errorf("cannot read secret: env %s is not set", ref)
		}
		return v, nil
	case "file":
		b, err := os.ReadFile(ref)
		if err != nil {
			return "", fmt.Errorf("cannot read secret file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", fmt.Errorf("cannot read secret of kind %q", kind)
}

func render(t *template.Template, data any) (string, error) {
	if t == nil {
		return "", nil
	}
	c, err := t.Clone()
	if err != nil {
		return "", err
	}
	c.Funcs(template.FuncMap{"secret": readSecret})
	var b strings.Builder
	if err := c.Execute(&b, data); err != nil {
		return "", fmt.Errorf("cannot render %s: %w", t.Name(), err)
	}
	return b.String(), nil
}
