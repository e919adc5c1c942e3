package analyzer_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mcpwatch/mcpwatch/internal/analyzer"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocumentedConfigDecodes decodes the configuration examples of
// docs/notifications.md and docs/api.md strictly into ResponseConfig and
// validates them, so the documentation cannot drift from the code.
func TestDocumentedConfigDecodes(t *testing.T) {
	for _, doc := range []string{"../../docs/notifications.md", "../../docs/api.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		blocks := yamlBlock.FindAllStringSubmatch(string(b), -1)
		if len(blocks) == 0 {
			t.Fatalf("%s: no yaml example", doc)
		}
		decoded := 0
		for _, blk := range blocks {
			if !strings.HasPrefix(blk[1], "response:") {
				continue
			}
			decoded++
			var cfg struct {
				Response analyzer.ResponseConfig `yaml:"response"`
			}
			dec := yaml.NewDecoder(strings.NewReader(blk[1]))
			dec.KnownFields(true)
			if err := dec.Decode(&cfg); err != nil {
				t.Fatalf("%s: %v\n%s", doc, err, blk[1])
			}
			n := cfg.Response.Notify
			if n.DataDir == "" {
				n.DataDir = t.TempDir()
			}
			if len(n.Receivers) > 0 {
				if err := n.Validate(); err != nil {
					t.Fatalf("%s: %v", doc, err)
				}
			}
			for _, tc := range cfg.Response.Tokens {
				if tc.Name == "" || (tc.Env == "" && tc.File == "") {
					t.Fatalf("%s: token %+v", doc, tc)
				}
			}
		}
		if decoded == 0 {
			t.Fatalf("%s: no response: example decoded", doc)
		}
	}
}
