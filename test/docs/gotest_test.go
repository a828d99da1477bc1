package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goTestValueFlags are go test's flags that take a value; goTestBoolFlags
// those that do not. Flags a package's tests define (such as -update) are
// found in its test files.
var (
	goTestValueFlags = map[string]bool{
		"run": true, "bench": true, "skip": true, "count": true, "timeout": true, "benchtime": true,
		"cpu": true, "fuzz": true, "fuzztime": true, "parallel": true, "tags": true, "p": true,
		"list": true, "coverprofile": true, "cpuprofile": true, "memprofile": true, "o": true,
	}
	goTestBoolFlags = map[string]bool{
		"v": true, "short": true, "benchmem": true, "race": true, "failfast": true, "cover": true,
		"json": true, "c": true,
	}
)

func (c *checker) checkGo(cmd command) {
	if len(cmd.args) < 2 {
		c.errorf(cmd, "go with no subcommand")
		return
	}
	switch cmd.args[1] {
	case "test":
		c.checkGoTest(cmd)
	case "run", "build", "vet", "install":
		for _, a := range cmd.args[2:] {
			if strings.HasPrefix(a, "./") {
				c.checkPackage(cmd, a)
				break
			}
		}
	case "mod", "env", "version", "generate":
	default:
		c.errorf(cmd, "go %s: the docs test does not know it", cmd.args[1])
	}
}

// checkPackage requires ./dir (or ./dir/...) to be a package folder.
func (c *checker) checkPackage(cmd command, pkg string) []string {
	dir := strings.TrimSuffix(strings.TrimPrefix(pkg, "./"), "/...")
	if dir == "..." || dir == "." || dir == "" {
		dir = "."
	}
	full := filepath.Join(root, dir)
	if _, err := os.Stat(full); err != nil {
		c.errorf(cmd, "package %s does not exist", pkg)
		return nil
	}
	if !strings.HasSuffix(pkg, "...") {
		return []string{full}
	}
	var dirs []string
	_ = filepath.WalkDir(full, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if name := d.Name(); path != full && (name == "testdata" || name == "bin" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			dirs = append(dirs, path)
		}
		return nil
	})
	return dirs
}

var testFuncRe = regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz|Example)\w*)\(`)

// testFuncs lists the Test, Benchmark, Fuzz and Example functions of the
// packages in dirs, and the flags their test files define.
func testFuncs(t *testing.T, dirs []string) (names []string, flags map[string]bool) {
	flags = map[string]bool{}
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range testFuncRe.FindAllStringSubmatch(string(data), -1) {
				names = append(names, m[1])
			}
			for _, m := range goFlagDefRe.FindAllStringSubmatch(string(data), -1) {
				flags[m[1]] = true
			}
		}
	}
	return names, flags
}

// checkGoTest requires the packages to exist, each flag to be go test's or
// the package's own, and -run and -bench to match a test or benchmark: a
// renamed test must not leave a command in the docs that runs nothing.
func (c *checker) checkGoTest(cmd command) {
	var pkgs []string
	var run, bench string
	var flags []string
	args := cmd.args[2:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pkgs = append(pkgs, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if goTestValueFlags[name] && !hasValue && i+1 < len(args) {
			i++
			value = args[i]
		}
		switch name {
		case "run":
			run = value
		case "bench":
			bench = value
		}
		flags = append(flags, name)
	}
	if len(pkgs) == 0 {
		c.errorf(cmd, "go test without a package: name one (./…), so that readers run it from the repository")
		return
	}
	var dirs []string
	for _, p := range pkgs {
		if !strings.HasPrefix(p, "./") {
			c.errorf(cmd, "package %s: name it as ./path", p)
			continue
		}
		dirs = append(dirs, c.checkPackage(cmd, p)...)
	}
	names, own := testFuncs(c.t, dirs)
	for _, f := range flags {
		if !goTestValueFlags[f] && !goTestBoolFlags[f] && !own[f] {
			c.errorf(cmd, "go test has no flag -%s, nor do the tests of %s", f, strings.Join(pkgs, " "))
		}
	}
	if run != "" {
		c.matchTests(cmd, "-run", run, names, "Test", "Fuzz", "Example")
	}
	if bench != "" {
		c.matchTests(cmd, "-bench", bench, names, "Benchmark")
	}
}

// matchTests requires the first level of pattern (go test splits it at
// slashes into levels of subtests) to match a function with one of the
// prefixes; '^$' deliberately matches none.
func (c *checker) matchTests(cmd command, flag, pattern string, names []string, prefixes ...string) {
	if pattern == "^$" {
		return
	}
	first, _, _ := strings.Cut(pattern, "/")
	re, err := regexp.Compile(first)
	if err != nil {
		c.errorf(cmd, "%s %q: %v", flag, pattern, err)
		return
	}
	for _, n := range names {
		for _, p := range prefixes {
			if strings.HasPrefix(n, p) && re.MatchString(n) {
				return
			}
		}
	}
	c.errorf(cmd, "%s %q matches no %s function of the package", flag, pattern, strings.Join(prefixes, "/"))
}
