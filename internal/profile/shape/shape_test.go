package shape

import (
	"reflect"
	"testing"
)

func TestShape(t *testing.T) {
	cases := []struct {
		args string
		want []string
	}{
		{``, nil},
		{`not json`, []string{"key:=invalid"}},
		{`"text"`, []string{"key:=string"}},
		{`{"path":"/srv/app/main.go"}`, []string{"key:path=string", "root:/srv"}},
		{`{"path":"C:\\Windows\\System32\\x.dll"}`, []string{"key:path=string", "root:c:/windows"}},
		{`{"path":"/home/alice/.ssh/id_rsa"}`, []string{"key:path=string", "root:~"}},
		{`{"path":"../../etc/passwd"}`, []string{"key:path=string", "root:.."}},
		{`{"path":"src/main.go","q":"hello world"}`, []string{"key:path=string", "key:q=string"}},
		{`{"url":"https://API.Example.com:8443/v1?x=1"}`, []string{"host:api.example.com", "key:url=string"}},
		{`{"opts":{"depth":2,"all":true,"tags":["a","/tmp/x"]},"n":null}`,
			[]string{"key:n=null", "key:opts.all=bool", "key:opts.depth=number", "key:opts.tags=array", "key:opts.tags[]=string", "key:opts=object", "root:/tmp"}},
	}
	for _, c := range cases {
		if got := Of(c.args); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Of(%s) = %q, want %q", c.args, got, c.want)
		}
	}
}

func TestShapeBounded(t *testing.T) {
	b := []byte(`{`)
	for i := 0; i < 200; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, []byte(`"k`+string(rune('a'+i%26))+string(rune('a'+i/26))+`":1`)...)
	}
	b = append(b, '}')
	if n := len(Of(string(b))); n != maxTerms {
		t.Fatalf("terms = %d, want the bound %d", n, maxTerms)
	}
	deep := `{"a":{"b":{"c":{"d":{"e":1}}}}}`
	for _, term := range Of(deep) {
		if term == "key:a.b.c.d=object" || term == "key:a.b.c.d.e=number" {
			t.Fatalf("term %q is deeper than maxDepth", term)
		}
	}
}
