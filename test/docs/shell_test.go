package docs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	"mvdan.cc/sh/v3/syntax"

	"github.com/crowdpack/crowdpack/internal/cli"
)

// command is one simple command found in the docs, its words as a reader's
// shell would see them (variables set earlier in the block expanded,
// command substitutions left as "$(…)").
type command struct {
	where string
	args  []string
}

// plainCommands are the commands the docs may use that have nothing of the
// project's to check.
var plainCommands = map[string]bool{
	"curl": true, "sha256sum": true, "sed": true, "date": true, "echo": true, "cat": true,
	"export": true, "cd": true, "git": true, "install": true,
}

// TestShellCommandsAreValid parses every sh block, the $ lines of every
// console block and the commands in inline code (make, go, kubectl, helm)
// and checks each command against what it names.
func TestShellCommandsAreValid(t *testing.T) {
	c := newChecker(t)
	for _, cmd := range docCommands(t) {
		if len(cmd.args) == 0 {
			continue
		}
		c.check(cmd)
	}
}

// TestTheCheckerCatchesMistakes feeds the checker commands with the
// mistakes a page could make, and a few right ones.
func TestTheCheckerCatchesMistakes(t *testing.T) {
	c := newChecker(t)
	for script, wantFindings := range map[string]bool{
		"make test-oldest crash-test KEEP=1":                                           false,
		"make nosuchtarget":                                                            true,
		"kubectl -n marketing annotate upu x --overwrite a=b":                          false,
		"kubectl create secret generic x --from-literal=a=b -n y":                      false,
		"kubectl aply -f upu.yaml":                                                     true,
		"kubectl apply --serverside -f upu.yaml":                                       true,
		"kubectl apply -k config/nosuch":                                               true,
		"kubectl create secrt generic x":                                               true,
		"kubectl crowdpack reconcile vip --wait --timeout 10m":                         false,
		"kubectl crowdpack reconcile vip --wiat":                                       true,
		"kubectl crowdpack statsu vip":                                                 true,
		"go test ./controllers/uploads -run TestAManagerKilledAnywhere -v":             false,
		"go test ./controllers/uploads -run TestNoSuchThing":                           true,
		"go test ./internal/linecheck -run '^$' -bench Checker":                        false,
		"go test ./internal/linecheck -run '^$' -bench NoSuchBenchmark":                true,
		"go test ./controllers/uploads -run ArgoCD -update":                            false,
		"go test ./controllers/uploads -run ArgoCD -frobnicate":                        true,
		"go test ./nosuch":                                                             true,
		"bin/manager --wechatpay-endpoint https://x --zap-log-level=debug":             false,
		"bin/manager --no-such-flag":                                                   true,
		"bin/wechatpay-sandbox serve --config x --admin-addr y":                        false,
		"bin/wechatpay-sandbox serve --no-such-flag":                                   true,
		"frobnicate --all":                                                             true,
		"hack/nosuch.sh":                                                               true,
		"helm upgrade crowdpack charts/crowdpack -n crowdpack-system --take-ownership": false,
		"helm instal crowdpack charts/crowdpack":                                       true,
		"helm install crowdpack charts/crowdpack --no-such-flag":                       true,
	} {
		cmds, err := parseShell(script, "test")
		if err != nil || len(cmds) != 1 {
			t.Fatalf("parse %q: %v, %d commands", script, err, len(cmds))
		}
		var findings []string
		c.report = func(msg string) { findings = append(findings, msg) }
		c.check(cmds[0])
		if got := len(findings) > 0; got != wantFindings {
			t.Errorf("%s: findings %q, want findings: %v", script, findings, wantFindings)
		}
	}
}

// docCommands extracts the commands of every page.
func docCommands(t *testing.T) []command {
	var out []command
	for _, p := range pages(t) {
		for _, b := range p.blocks {
			if b.marker == "not-run" {
				continue
			}
			var script string
			switch b.lang {
			case "sh", "bash", "shell":
				script = b.text
			case "console":
				script = consoleCommands(b.text)
			default:
				continue
			}
			cmds, err := parseShell(script, p.at(b.line))
			if err != nil {
				t.Errorf("%s: %v", p.at(b.line), err)
			}
			out = append(out, cmds...)
		}
		for _, s := range p.spans {
			if !inlineCommandRe.MatchString(s.text) {
				continue
			}
			cmds, err := parseShell(s.text, p.at(s.line))
			if err != nil {
				t.Errorf("%s: `%s`: %v", p.at(s.line), s.text, err)
			}
			out = append(out, cmds...)
		}
	}
	return out
}

// inlineCommandRe matches inline code that is a command a reader would run.
var inlineCommandRe = regexp.MustCompile(`^(?:[A-Z][A-Z0-9_]*=\S+\s+)*(?:make|go test|go run|kubectl|helm|hack/\S+\.sh)\s+\S`)

// consoleCommands keeps the "$ " lines of a console block (with their
// continuation lines), the commands of a captured session.
func consoleCommands(text string) string {
	var b strings.Builder
	continued := false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, "$ "):
			line = strings.TrimPrefix(line, "$ ")
		case !continued:
			continue
		}
		b.WriteString(line + "\n")
		continued = strings.HasSuffix(line, "\\")
	}
	return b.String()
}

func parseShell(script, where string) ([]command, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(script), where)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	var out []command
	syntax.Walk(f, func(n syntax.Node) bool {
		ce, ok := n.(*syntax.CallExpr)
		if !ok {
			return true
		}
		if len(ce.Args) == 0 {
			for _, a := range ce.Assigns {
				if a.Value != nil {
					vars[a.Name.Value] = words(a.Value, vars)
				}
			}
			return true
		}
		cmd := command{where: fmt.Sprintf("%s (line %d of the block)", where, ce.Pos().Line())}
		for _, w := range ce.Args {
			cmd.args = append(cmd.args, words(w, vars))
		}
		out = append(out, cmd)
		return true
	})
	return out, nil
}

// words is the text of a shell word after quote removal.
func words(w *syntax.Word, vars map[string]string) string {
	var b strings.Builder
	var part func(p syntax.WordPart)
	part = func(p syntax.WordPart) {
		switch p := p.(type) {
		case *syntax.Lit:
			b.WriteString(p.Value)
		case *syntax.SglQuoted:
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			for _, q := range p.Parts {
				part(q)
			}
		case *syntax.ParamExp:
			if v, ok := vars[p.Param.Value]; ok {
				b.WriteString(v)
			} else {
				b.WriteString("${" + p.Param.Value + "}")
			}
		case *syntax.CmdSubst:
			b.WriteString("$(…)")
		default:
			b.WriteString("…")
		}
	}
	for _, p := range w.Parts {
		part(p)
	}
	return b.String()
}

// checker holds what the commands are checked against.
type checker struct {
	t           *testing.T
	makeTargets map[string]bool
	kubectl     *cobra.Command
	helmHelp    map[string]string
	helmMu      sync.Mutex
	// report receives each finding; nil reports to t.
	report func(string)
}

func newChecker(t *testing.T) *checker {
	pages(t) // finds root
	c := &checker{t: t, helmHelp: map[string]string{}}
	c.makeTargets = makefileTargets(t)
	c.kubectl = kubectlcmd.NewKubectlCommand(kubectlcmd.KubectlOptions{
		ConfigFlags: genericclioptions.NewConfigFlags(true),
		IOStreams:   genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: io.Discard, ErrOut: io.Discard},
	})
	c.kubectl.AddCommand(crowdpackPlugin())
	return c
}

// crowdpackPlugin is kubectl-crowdpack's own command tree, found by kubectl
// as "kubectl crowdpack" when it is on PATH.
func crowdpackPlugin() *cobra.Command {
	plugin := cli.NewCommand(genericiooptions.IOStreams{In: &bytes.Buffer{}, Out: io.Discard, ErrOut: io.Discard})
	plugin.Use = "crowdpack"
	plugin.InitDefaultVersionFlag() // cobra adds --version when it executes
	return plugin
}

func (c *checker) errorf(cmd command, format string, args ...any) {
	c.t.Helper()
	msg := fmt.Sprintf("%s: %s: %s", cmd.where, strings.Join(cmd.args, " "), fmt.Sprintf(format, args...))
	if c.report != nil {
		c.report(msg)
		return
	}
	c.t.Error(msg)
}

func (c *checker) check(cmd command) {
	c.t.Helper()
	c.checkPaths(cmd)
	name := cmd.args[0]
	switch {
	case name == "make":
		c.checkMake(cmd)
	case name == "kubectl":
		c.checkKubectl(cmd)
	case name == "helm":
		c.checkHelm(cmd)
	case name == "go":
		c.checkGo(cmd)
	case name == "bin/manager":
		c.checkFlags(cmd, cmd.args[1:], sourceFlags(c.t, "."), managerLibraryFlags)
	case name == "bin/wechatpay-sandbox":
		c.checkSandbox(cmd)
	case strings.HasPrefix(name, "hack/"):
		if _, err := os.Stat(filepath.Join(root, name)); err != nil {
			c.errorf(cmd, "%s does not exist", name)
		}
	case plainCommands[name]:
	default:
		c.errorf(cmd, "the docs test does not know the command %q: check it and add it to plainCommands, or mark the block <!-- not-run: why -->", name)
	}
}

// repoPathRe matches words that name a path of this repository.
var repoPathRe = regexp.MustCompile(`^(?:config|hack|charts|docs|api|internal|cmd|controllers|test)/[A-Za-z0-9_./-]*$`)

// checkPaths requires every word (or flag value) naming a path of the
// repository to exist.
func (c *checker) checkPaths(cmd command) {
	for _, a := range cmd.args[1:] {
		if _, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "-") {
			a = v
		}
		a = strings.TrimPrefix(a, "./")
		if !repoPathRe.MatchString(a) {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, strings.TrimSuffix(a, "/..."))); err != nil {
			c.errorf(cmd, "%s does not exist in the repository", a)
		}
	}
}

var makeTargetRe = regexp.MustCompile(`^([A-Za-z0-9_.-][A-Za-z0-9_. -]*):(?:[^=]|$)`)

func makefileTargets(t *testing.T) map[string]bool {
	data, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatalf("read the Makefile: %v", err)
	}
	targets := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if m := makeTargetRe.FindStringSubmatch(line); m != nil {
			for _, name := range strings.Fields(m[1]) {
				targets[name] = true
			}
		}
	}
	return targets
}

func (c *checker) checkMake(cmd command) {
	for _, a := range cmd.args[1:] {
		switch {
		case strings.Contains(a, "="), a == "-s", a == "-n":
		case strings.HasPrefix(a, "-"):
			c.errorf(cmd, "make flag %s: the docs use none but -s and -n", a)
		case !c.makeTargets[a]:
			c.errorf(cmd, "the Makefile has no target %q", a)
		}
	}
}

// checkKubectl finds the subcommand in kubectl's own command tree (the
// pinned k8s.io/kubectl) and requires each flag to be one of its flags.
func (c *checker) checkKubectl(cmd command) {
	found, rest, err := c.kubectl.Find(cmd.args[1:])
	if err != nil {
		c.errorf(cmd, "kubectl: %v", err)
		return
	}
	if found == c.kubectl {
		c.errorf(cmd, "no kubectl subcommand")
		return
	}
	// kubectl crowdpack alone prints its help, and takes --version.
	if found.HasSubCommands() && !found.Runnable() && found.Name() != "crowdpack" {
		c.errorf(cmd, "kubectl %s needs one of its subcommands", found.Name())
		return
	}
	flags := pflag.NewFlagSet("all", pflag.ContinueOnError)
	flags.AddFlagSet(found.Flags())
	flags.AddFlagSet(found.InheritedFlags())
	flags.AddFlagSet(c.kubectl.PersistentFlags())
	c.checkFlagNames(cmd, "kubectl "+found.Name(), rest, flags)
	// Find stops at the first word that is no subcommand; when that word is
	// a near miss of one (kubectl create secrt), it is a typo, not an
	// argument (kubectl get upu).
	if args := positional(rest, flags); found.HasSubCommands() && len(args) > 0 {
		found.SuggestionsMinimumDistance = 2 // cobra sets it on the root only
		if s := found.SuggestionsFor(args[0]); len(s) > 0 {
			c.errorf(cmd, "kubectl %s has no subcommand %q (did you mean %s?)", found.Name(), args[0], strings.Join(s, ", "))
		}
	}
}

// positional leaves out flags and their values.
func positional(args []string, flags *pflag.FlagSet) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			out = append(out, a)
			continue
		}
		if strings.Contains(a, "=") {
			continue
		}
		var f *pflag.Flag
		if long, ok := strings.CutPrefix(a, "--"); ok {
			f = flags.Lookup(long)
		} else if len(a) == 2 {
			f = flags.ShorthandLookup(a[1:])
		}
		if f != nil && f.NoOptDefVal == "" {
			i++ // its value
		}
	}
	return out
}

// checkFlagNames looks each -x / --name[=value] of args up in flags.
func (c *checker) checkFlagNames(cmd command, what string, args []string, flags *pflag.FlagSet) {
	for _, a := range args {
		if a == "-" || a == "--" || !strings.HasPrefix(a, "-") {
			continue
		}
		if long, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ := strings.Cut(long, "=")
			if flags.Lookup(name) == nil {
				c.errorf(cmd, "%s has no flag --%s", what, name)
			}
			continue
		}
		short := strings.TrimPrefix(a, "-")
		if short == "" || flags.ShorthandLookup(short[:1]) == nil {
			c.errorf(cmd, "%s has no flag %s", what, a[:min(len(a), 2)])
		}
	}
}

// helm checks a command with the pinned helm in bin/: its help names the
// subcommands and flags of each level.
func (c *checker) checkHelm(cmd command) {
	helm := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(helm); err != nil {
		c.errorf(cmd, "bin/helm is missing: run make tools (hack/tools.sh helm)")
		return
	}
	var path []string
	args := cmd.args[1:]
	for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		if !helmSubcommands(c.help(helm, path))[args[0]] {
			break
		}
		path, args = append(path, args[0]), args[1:]
	}
	if len(path) == 0 {
		c.errorf(cmd, "no helm subcommand")
		return
	}
	help := c.help(helm, path)
	flags := pflag.NewFlagSet("helm", pflag.ContinueOnError)
	for _, m := range helpFlagRe.FindAllStringSubmatch(help, -1) {
		if flags.Lookup(m[2]) == nil {
			flags.StringP(m[2], m[1], "", "")
		}
	}
	c.checkFlagNames(cmd, "helm "+strings.Join(path, " "), args, flags)
}

var helpFlagRe = regexp.MustCompile(`(?m)^\s+(?:-([A-Za-z]), )?--([a-z0-9-]+)`)

func (c *checker) help(helm string, path []string) string {
	key := strings.Join(path, " ")
	c.helmMu.Lock()
	defer c.helmMu.Unlock()
	if h, ok := c.helmHelp[key]; ok {
		return h
	}
	cmd := exec.Command(helm, append(path, "--help")...)
	home := c.t.TempDir() // keep helm away from the user's configuration and caches
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Errorf("helm %s --help: %v\n%s", key, err, out)
	}
	c.helmHelp[key] = string(out)
	return string(out)
}

// helmSubcommands reads the "Available Commands:" of a help text.
func helmSubcommands(help string) map[string]bool {
	subs := map[string]bool{}
	_, after, ok := strings.Cut(help, "Available Commands:\n")
	if !ok {
		return subs
	}
	for _, line := range strings.Split(after, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			break
		}
		subs[f[0]] = true
	}
	return subs
}

// managerLibraryFlags are the manager's flags that libraries register
// (controller-runtime's zap options and kubeconfig).
var managerLibraryFlags = []string{"zap-devel", "zap-encoder", "zap-log-level", "zap-stacktrace-level", "zap-time-encoding", "kubeconfig"}

var goFlagDefRe = regexp.MustCompile(`\.(?:String|Bool|Int|Int64|Uint|Uint64|Float64|Duration)(?:Var)?\((?:&[^,]+,\s*)?"([a-z0-9-]+)"`)

// sourceFlags are the flags the Go files of a package define.
func sourceFlags(t *testing.T, pkg string) map[string]bool {
	flags := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(root, pkg, "*.go"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goFlagDefRe.FindAllStringSubmatch(string(data), -1) {
			flags[m[1]] = true
		}
	}
	return flags
}

func (c *checker) checkFlags(cmd command, args []string, defined map[string]bool, extra []string) {
	for _, e := range extra {
		defined[e] = true
	}
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !defined[name] {
			c.errorf(cmd, "%s has no flag -%s", cmd.args[0], name)
		}
	}
}

func (c *checker) checkSandbox(cmd command) {
	if len(cmd.args) < 2 || cmd.args[1] == "--version" {
		return
	}
	src, err := os.ReadFile(filepath.Join(root, "cmd", "wechatpay-sandbox", "main.go"))
	if err != nil {
		c.t.Fatal(err)
	}
	if !strings.Contains(string(src), fmt.Sprintf("case %q:", cmd.args[1])) {
		c.errorf(cmd, "wechatpay-sandbox has no subcommand %q", cmd.args[1])
	}
	c.checkFlags(cmd, cmd.args[2:], sourceFlags(c.t, "cmd/wechatpay-sandbox"), nil)
}
