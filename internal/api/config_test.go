package api_test

import (
	"os"
	"regexp"
	"testing"

	"github.com/mcpwatch/mcpwatch/internal/playbook"
	"github.com/mcpwatch/mcpwatch/playbooks"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocumentedPlaybookParses parses the example in docs/playbooks.md.
func TestDocumentedPlaybookParses(t *testing.T) {
	b, err := os.ReadFile("../../docs/playbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	blk := yamlBlock.FindStringSubmatch(string(b))
	if blk == nil {
		t.Fatal("no yaml example in docs/playbooks.md")
	}
	if _, err := playbook.Parse([]byte(blk[1])); err != nil {
		t.Fatalf("docs/playbooks.md example: %v", err)
	}
	if _, err := playbook.Load(playbooks.Files); err != nil {
		t.Fatal(err)
	}
}
