package main

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// chainSet is tool (iptables, ip6tables) → table → chain names.
type chainSet map[string]map[string]map[string]bool

var iptablesTools = []string{"iptables", "ip6tables"}

// ours says whether kube-proxy (KUBE-) or the CNI plugins (CNI-) make chain.
func ours(chain string) bool {
	return strings.HasPrefix(chain, "KUBE-") || strings.HasPrefix(chain, "CNI-")
}

func listChains() (chainSet, error) {
	set := chainSet{}
	for _, tool := range iptablesTools {
		rules, err := save(tool)
		if err != nil {
			return nil, err
		}
		set[tool] = map[string]map[string]bool{}
		for table, lines := range rules {
			set[tool][table] = map[string]bool{}
			for _, l := range lines {
				if strings.HasPrefix(l, ":") {
					set[tool][table][strings.Fields(l[1:])[0]] = true
				}
			}
		}
	}
	return set, nil
}

// save is iptables-save's output by table; a tool missing (no IPv6) is none.
func save(tool string) (map[string][]string, error) {
	if !found(tool + "-save") {
		return nil, nil
	}
	out, err := exec.Command(tool + "-save").Output()
	if err != nil {
		return nil, fmt.Errorf("%s-save: %w", tool, err)
	}
	tables := map[string][]string{}
	table := ""
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case table != "" && (strings.HasPrefix(l, ":") || strings.HasPrefix(l, "-A ")):
			tables[table] = append(tables[table], l)
		}
	}
	return tables, nil
}

// removeNewChains removes the KUBE-* and CNI-* chains that were not there
// before, and the rules of other chains that jump to them.
func removeNewChains(before chainSet) error {
	var errs []error
	for _, tool := range iptablesTools {
		rules, err := save(tool)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for table, lines := range rules {
			isNew := func(chain string) bool { return ours(chain) && !before[tool][table][chain] }
			var chains []string
			for _, l := range lines {
				if strings.HasPrefix(l, ":") {
					if chain := strings.Fields(l[1:])[0]; isNew(chain) {
						chains = append(chains, chain)
					}
					continue
				}
				args := splitRule(l)
				if len(args) > 1 && !isNew(args[1]) && isNew(target(args)) {
					errs = append(errs, iptables(tool, table, append([]string{"-D"}, args[1:]...)...))
				}
			}
			for _, chain := range chains {
				errs = append(errs, iptables(tool, table, "-F", chain))
			}
			for _, chain := range chains {
				errs = append(errs, iptables(tool, table, "-X", chain))
			}
		}
	}
	return errors.Join(errs...)
}

func iptables(tool, table string, args ...string) error {
	out, err := exec.Command(tool, append([]string{"-w", "-t", table}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -t %s %s: %w: %s", tool, table, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func target(args []string) string {
	for i, a := range args {
		if (a == "-j" || a == "-g") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// splitRule splits an iptables-save rule into arguments; comments are
// double-quoted, with \" inside.
func splitRule(line string) []string {
	var args []string
	var cur strings.Builder
	inQuote, inArg := false, false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\\' && inQuote && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case ch == '"':
			inQuote, inArg = !inQuote, true
		case ch == ' ' && !inQuote:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(ch)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}
