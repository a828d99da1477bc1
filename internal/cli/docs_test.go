package cli

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated part of docs/cli.md")

const (
	helpBegin = "<!-- BEGIN GENERATED: go test ./internal/cli -run TestTheHelpInTheDocsIsCurrent -update -->\n"
	helpEnd   = "<!-- END GENERATED -->\n"
)

// docs/cli.md holds every command's --help as the binary prints it; a
// changed flag or text fails here until the page is regenerated.
func TestTheHelpInTheDocsIsCurrent(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "cli.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	begin, end := strings.Index(doc, helpBegin), strings.Index(doc, helpEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s lacks the markers %q and %q", path, helpBegin, helpEnd)
	}
	want := doc[:begin+len(helpBegin)] + "\n" + HelpMarkdown() + "\n" + doc[end:]
	if want == doc {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is stale: run go test ./internal/cli -run TestTheHelpInTheDocsIsCurrent -update", path)
}
