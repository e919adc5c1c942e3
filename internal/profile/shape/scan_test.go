package shape

import (
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/scenario"
)

// reference is Of written the obvious way (decode, then walk); the scanner
// must agree with it on every input under the term bound.
func reference(arguments string) []string {
	s := strings.TrimSpace(arguments)
	if s == "" {
		return nil
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return []string{TermKey + "=invalid"}
	}
	if _, ok := v.(map[string]any); !ok {
		return []string{TermKey + "=" + kindOf(v)}
	}
	set := map[string]bool{}
	var walk func(path string, x any, depth int)
	walk = func(path string, x any, depth int) {
		if depth > 0 { // an empty key is a key too
			set[TermKey+path+"="+kindOf(x)] = true
		}
		switch t := x.(type) {
		case map[string]any:
			if depth >= maxDepth {
				return
			}
			for k, y := range t {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, y, depth+1)
			}
		case []any:
			if depth >= maxDepth {
				return
			}
			for _, y := range t {
				walk(path+"[]", y, depth+1)
			}
		case string:
			if r := PathRoot(t); r != "" {
				set[TermRoot+r] = true
			} else if hasScheme(t) {
				if h := urlHost(t); h != "" {
					set[TermHost+h] = true
				}
			}
		}
	}
	walk("", v, 0)
	out := make([]string, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func TestScannerAgreesWithReference(t *testing.T) {
	inputs := []string{
		`{}`, `[]`, `3`, `null`, `{"a":`, ` {"a" : [ 1 , "x" , {"b" : null} ] } `,
		`{"esc\"key":"\/srv\/x","u":"http:\/\/h.example\/"}`, `{"k":"\u002fetc\u002fpasswd"}`,
		`{"a":{"b":{"c":{"d":[1,{"e":"/tmp/x"}]}}},"f":[[["/opt/y"]]]}`,
		`{"n":-1.5e3,"t":true,"f":false,"s":"","arr":[],"obj":{}}`,
		`{"url":"HTTPS://User:pw@Example.COM:8443/x","p":"C:\\Users\\bob\\x"}`,
	}
	for _, l := range scenario.Eval(1, 3000).Events {
		if l.Event.Arguments != "" {
			inputs = append(inputs, l.Event.Arguments)
		}
	}
	checked := 0
	for _, in := range inputs {
		want := reference(in)
		if len(want) >= maxTerms {
			continue // the bound picks differently (the reference is in map order)
		}
		if got := Of(in); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("Of(%s)\n got  %q\n want %q", in, got, want)
		}
		checked++
	}
	// A duplicate key keeps both kinds (parsers disagree on which one wins).
	if got := Of(`{"dup":1,"dup":"x"}`); !reflect.DeepEqual(got, []string{"key:dup=number", "key:dup=string"}) {
		t.Fatalf("duplicate key: %q", got)
	}
	if checked < 1000 {
		t.Fatalf("checked only %d inputs", checked)
	}
}

func BenchmarkOf(b *testing.B) {
	args := `{"path":"/home/alice/src/payments-api/internal/api/handler.go","max_count":10,"opts":{"recursive":true,"exclude":["node_modules",".git"]}}`
	b.ReportAllocs()
	b.SetBytes(int64(len(args)))
	for i := 0; i < b.N; i++ {
		Of(args)
	}
}

func BenchmarkReference(b *testing.B) {
	args := `{"path":"/home/alice/src/payments-api/internal/api/handler.go","max_count":10,"opts":{"recursive":true,"exclude":["node_modules",".git"]}}`
	b.ReportAllocs()
	b.SetBytes(int64(len(args)))
	for i := 0; i < b.N; i++ {
		reference(args)
	}
}

// TestPlainRootAgreesWithNormalizePath: the fast path gives what the
// normalising one gives, on the corpus's strings and on edge cases.
func TestPlainRootAgreesWithNormalizePath(t *testing.T) {
	inputs := []string{"/srv/a", "/home/alice/x", "/Home/bob", "/home", "/home/", "/home//x", "/users/x/y", "/Users/Bob",
		"/root", "/root/.ssh/id_rsa", "/rootfs/x", "/etc/../root/x", "/a/./b", "/tmp", "/tmp/", "/x y/z", "/usr/local/bin/go",
		"/%2e%2e/etc", "/a\\b", "/é/x", "~", "~/", "~/x/../..", "~/../etc", "~bob/x", "~/.ssh/id_rsa", "/a/.hidden/b", "/a/..b", "/a/b/.", "/a/b/..", "/.git/config", "~/..", "/proc/self/environ", "/var/lib/postgresql/data", "/a,b/c"}
	for _, l := range scenario.Eval(2, 3000).Events {
		var v any
		if json.Unmarshal([]byte(l.Event.Arguments), &v) != nil {
			continue
		}
		var walk func(any)
		walk = func(x any) {
			switch t := x.(type) {
			case string:
				inputs = append(inputs, t)
			case map[string]any:
				for _, y := range t {
					walk(y)
				}
			case []any:
				for _, y := range t {
					walk(y)
				}
			}
		}
		walk(v)
	}
	fast := 0
	for _, in := range inputs {
		r, ok := plainRoot(in)
		if !ok {
			continue
		}
		fast++
		if want := pathRootSlow(in); r != want {
			t.Errorf("plainRoot(%q) = %q, NormalizePath gives %q", in, r, want)
		}
	}
	if fast < 100 {
		t.Fatalf("the fast path took only %d inputs", fast)
	}
}

func TestHasScheme(t *testing.T) {
	for s, want := range map[string]bool{"https://x": true, "s3://b/k": true, "git+ssh://h/r": true, "HTTP://X": true,
		"://x": false, "1http://x": false, "http:/x": false, "mailto:a@b": false, "path/to://x": false, "": false, "a b://c": false} {
		if got := hasScheme(s); got != want {
			t.Errorf("hasScheme(%q) = %v, want %v", s, got, want)
		}
	}
}

func BenchmarkScan(b *testing.B) {
	args := `{"path":"/home/alice/src/payments-api/internal/api/handler.go","max_count":10,"opts":{"recursive":true,"exclude":["node_modules",".git"]}}`
	var t Terms
	b.ReportAllocs()
	b.SetBytes(int64(len(args)))
	for i := 0; i < b.N; i++ {
		Scan(&t, args)
	}
}

// FuzzScan: on any input the scanner agrees with the decoding reference
// (under the term bound) and never panics.
func FuzzScan(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"p":"/srv/x","u":"https://h.example/","n":{"m":[1,"~/x"]}}`, `{"e":"\u002fetc","k\"q":"C:\\x\\y"}`, `[1]`, `{`, `{"":{"b":1}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Of(s)
		want := reference(s)
		if len(want) >= maxTerms || len(got) >= maxTerms {
			return
		}
		if strings.Contains(s, `"`) && hasDuplicateKeys(s) {
			return // both kinds of a duplicate key are kept (see TestScannerAgreesWithReference)
		}
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Fatalf("Of(%q)\n got  %q\n want %q", s, got, want)
		}
	})
}

// hasDuplicateKeys reports whether a JSON object repeats a key anywhere.
func hasDuplicateKeys(s string) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	type frame struct {
		obj  bool
		keys map[string]bool
		key  bool // next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{obj: true, keys: map[string]bool{}, key: true})
			case '[':
				if top != nil && top.obj {
					top.key = true
				}
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.obj && top.key {
				if top.keys[v] {
					return true
				}
				top.keys[v] = true
				top.key = false
				continue
			}
			if top != nil && top.obj {
				top.key = true
			}
		default:
			if top != nil && top.obj {
				top.key = true
			}
		}
	}
}
