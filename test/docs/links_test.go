package docs

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// maxREADMELines keeps README.md an overview; the rest is under docs/.
const maxREADMELines = 250

func TestTheREADMEIsAtMost250Lines(t *testing.T) {
	p := pageByPath(t, "README.md")
	n := len(p.lines)
	if n > 0 && p.lines[n-1] == "" {
		n-- // the final newline
	}
	if n > maxREADMELines {
		t.Errorf("README.md has %d lines, more than %d: move detail into docs/", n, maxREADMELines)
	}
}

// TestRelativeLinksResolve requires every relative link to name a file or
// folder of the repository and, with #anchor into a Markdown page, one of
// that page's headings.
func TestRelativeLinksResolve(t *testing.T) {
	for _, p := range pages(t) {
		for _, l := range p.links {
			target := l.text
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			resolved := p.path
			if file != "" {
				resolved = path.Clean(path.Join(path.Dir(p.path), file))
				if strings.HasPrefix(resolved, "../") {
					t.Errorf("%s: link %s leaves the repository", p.at(l.line), target)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(resolved))); err != nil {
					t.Errorf("%s: link %s: %s does not exist", p.at(l.line), target, resolved)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(resolved, ".md") {
				continue
			}
			to := pageByPath(t, resolved)
			if to == nil {
				t.Errorf("%s: link %s: %s is not a page the docs test reads", p.at(l.line), target, resolved)
				continue
			}
			if !to.anchors[anchor] {
				t.Errorf("%s: link %s: %s has no heading #%s", p.at(l.line), target, resolved, anchor)
			}
		}
	}
}

// TestEveryPageIsInTheIndex requires docs/README.md to link every page
// under docs/, so that none is found only by chance.
func TestEveryPageIsInTheIndex(t *testing.T) {
	index := pageByPath(t, "docs/README.md")
	if index == nil {
		t.Fatal("docs/README.md, the index of the docs, is missing")
	}
	linked := map[string]bool{}
	for _, l := range index.links {
		file, _, _ := strings.Cut(l.text, "#")
		linked[path.Clean(path.Join("docs", file))] = true
	}
	for _, p := range pages(t) {
		if strings.HasPrefix(p.path, "docs/") && p != index && !linked[p.path] {
			t.Errorf("docs/README.md does not link %s", p.path)
		}
	}
}

// TestTablesAreWhole requires every table to start with a header row and
// its |---| line: a blank line inside a table would turn its second half
// into a paragraph of pipes.
func TestTablesAreWhole(t *testing.T) {
	for _, p := range pages(t) {
		inFence := false
		for i, line := range p.lines {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				inFence = !inFence
			}
			if inFence || !strings.HasPrefix(line, "|") || (i > 0 && strings.TrimSpace(p.lines[i-1]) != "") {
				continue
			}
			if i+1 >= len(p.lines) || !strings.HasPrefix(strings.ReplaceAll(p.lines[i+1], " ", ""), "|---") {
				t.Errorf("%s: a table without its header line (|---|): is a blank line splitting a table?", p.at(i+1))
			}
		}
	}
}
