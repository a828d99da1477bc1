// Package docs keeps the documentation true: it reads README.md and every
// page under docs/, and checks what a reader would copy from them. YAML
// blocks are applied with a server-side dry run against a real
// kube-apiserver (envtest), shell commands are parsed and each command is
// checked against what it names (Makefile targets, kubectl's and helm's
// command trees and flags, test and benchmark names, the binaries' flags,
// paths in the repository), and relative links must resolve to a file and a
// heading. README.md stays an overview of at most 250 lines.
//
// A fenced block preceded by <!-- not-run: why --> is left alone (output
// samples, commands for other projects); <!-- helm-values --> marks a values
// file of the chart, which is rendered with the pinned helm.
package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/crowdpack/crowdpack/internal/testutil/repo"
)

// page is one Markdown file, split into what the checks read.
type page struct {
	path     string // relative to the repository, with slashes
	lines    []string
	blocks   []block
	anchors  map[string]bool
	spans    []span // inline code outside fenced blocks
	links    []span // link targets outside fenced blocks and code
	headings []string
}

// block is a fenced code block.
type block struct {
	lang   string
	line   int // of the opening fence, from 1
	text   string
	marker string // "not-run", "helm-values" or ""
}

// span is a piece of text found on a line.
type span struct {
	line int
	text string
}

func (p *page) at(line int) string { return fmt.Sprintf("%s:%d", p.path, line) }

var (
	pagesOnce sync.Once
	pagesErr  error
	allPages  []*page
	root      string
)

// pages reads README.md and docs/**/*.md once.
func pages(t *testing.T) []*page {
	t.Helper()
	pagesOnce.Do(func() {
		if root, pagesErr = repo.Root(); pagesErr != nil {
			return
		}
		paths := []string{"README.md"}
		pagesErr = filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ".md") {
				rel, _ := filepath.Rel(root, path)
				paths = append(paths, filepath.ToSlash(rel))
			}
			return nil
		})
		if pagesErr != nil {
			return
		}
		sort.Strings(paths[1:])
		for _, path := range paths {
			data, err := os.ReadFile(filepath.Join(root, path))
			if err != nil {
				pagesErr = err
				return
			}
			allPages = append(allPages, parse(path, string(data)))
		}
	})
	if pagesErr != nil {
		t.Fatalf("read the docs: %v", pagesErr)
	}
	return allPages
}

func pageByPath(t *testing.T, path string) *page {
	for _, p := range pages(t) {
		if p.path == path {
			return p
		}
	}
	return nil
}

var (
	headingRe = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	markerRe  = regexp.MustCompile(`^<!--\s*(not-run|helm-values)\b.*-->$`)
	codeRe    = regexp.MustCompile("`([^`]+)`")
	linkRe    = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	mdLinkRe  = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// parse splits a Markdown page into fenced blocks, headings, and, per
// paragraph (so that a code span or link broken over two lines is whole),
// inline code and links.
func parse(path, text string) *page {
	p := &page{path: path, lines: strings.Split(text, "\n"), anchors: map[string]bool{}}
	seen := map[string]int{}
	var para []string
	paraStart := 0
	flush := func() {
		if len(para) == 0 {
			return
		}
		joined := strings.Join(para, "\n")
		lineOf := func(offset int) int { return paraStart + strings.Count(joined[:offset], "\n") }
		for _, m := range codeRe.FindAllStringSubmatchIndex(joined, -1) {
			p.spans = append(p.spans, span{lineOf(m[0]), strings.ReplaceAll(joined[m[2]:m[3]], "\n", " ")})
		}
		// Links inside code spans are text, not links.
		noCode := codeRe.ReplaceAllStringFunc(joined, func(s string) string { return strings.Repeat("x", len(s)) })
		for _, m := range linkRe.FindAllStringSubmatchIndex(noCode, -1) {
			p.links = append(p.links, span{lineOf(m[0]), noCode[m[2]:m[3]]})
		}
		para = nil
	}
	for i := 0; i < len(p.lines); i++ {
		line := p.lines[i]
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			flush()
			b := block{lang: "text", line: i + 1}
			if info := strings.Fields(strings.TrimPrefix(trimmed, "```")); len(info) > 0 {
				b.lang = info[0]
			}
			for j := i - 1; j >= 0; j-- {
				if prev := strings.TrimSpace(p.lines[j]); prev != "" {
					if m := markerRe.FindStringSubmatch(prev); m != nil {
						b.marker = m[1]
					}
					break
				}
			}
			indent := len(line) - len(strings.TrimLeft(line, " "))
			var body []string
			for i++; i < len(p.lines) && strings.TrimSpace(p.lines[i]) != "```"; i++ {
				l := p.lines[i]
				if len(l)-len(strings.TrimLeft(l, " ")) >= indent {
					l = l[indent:]
				}
				body = append(body, l)
			}
			b.text = strings.Join(body, "\n") + "\n"
			p.blocks = append(p.blocks, b)
			continue
		}
		if m := headingRe.FindStringSubmatch(line); m != nil {
			flush()
			p.headings = append(p.headings, m[2])
			a := slug(m[2])
			if n := seen[a]; n > 0 {
				p.anchors[fmt.Sprintf("%s-%d", a, n)] = true
			} else {
				p.anchors[a] = true
			}
			seen[a]++
			// A heading's own code and links are checked as text too.
			paraStart, para = i+1, []string{line}
			flush()
			continue
		}
		if trimmed == "" {
			flush()
			continue
		}
		if len(para) == 0 {
			paraStart = i + 1
		}
		para = append(para, line)
	}
	flush()
	return p
}

// slug is the anchor GitHub gives a heading: its text, lower case, without
// punctuation, spaces turned into hyphens.
func slug(heading string) string {
	heading = mdLinkRe.ReplaceAllString(heading, "$1")
	heading = strings.NewReplacer("`", "", "*", "").Replace(heading)
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

func TestSlugIsGitHubs(t *testing.T) {
	for heading, want := range map[string]string{
		"Bad input, and what you see":                   "bad-input-and-what-you-see",
		"The operator's cloud identity is opt-in twice": "the-operators-cloud-identity-is-opt-in-twice",
		"wechatpay.crowdpack.io/v1alpha1":               "wechatpaycrowdpackiov1alpha1",
		"Big exports: splitting and hashing":            "big-exports-splitting-and-hashing",
		"`spec.file` and [links](x.md)":                 "specfile-and-links",
		"UserPackageUpload Status":                      "userpackageupload-status",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

func TestParseFindsBlocksMarkersSpansAndLinks(t *testing.T) {
	p := parse("x.md", "# Title\n\nSee `make test` and [a](b.md#c),\n[d](#title).\n\n<!-- not-run: output -->\n```console\n$ ls\n```\n\n## Title\n")
	if len(p.blocks) != 1 || p.blocks[0].marker != "not-run" || p.blocks[0].lang != "console" || p.blocks[0].text != "$ ls\n" {
		t.Errorf("blocks = %+v", p.blocks)
	}
	if len(p.spans) != 1 || p.spans[0] != (span{3, "make test"}) {
		t.Errorf("spans = %+v", p.spans)
	}
	if len(p.links) != 2 || p.links[0] != (span{3, "b.md#c"}) || p.links[1] != (span{4, "#title"}) {
		t.Errorf("links = %+v", p.links)
	}
	if !p.anchors["title"] || !p.anchors["title-1"] {
		t.Errorf("anchors = %v", p.anchors)
	}
}
