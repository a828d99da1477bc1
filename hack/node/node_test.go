package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSplitRuleKeepsQuotedCommentsWhole(t *testing.T) {
	for _, c := range []struct {
		reason, line string
		want         []string
	}{
		{"plain words", `-A POSTROUTING -s 10.244.0.2/32 -j CNI-abc`, []string{"-A", "POSTROUTING", "-s", "10.244.0.2/32", "-j", "CNI-abc"}},
		{"a quoted comment with spaces", `-A POSTROUTING -m comment --comment "name: \"crowdpack-e2e\" id: \"x\"" -j CNI-abc`,
			[]string{"-A", "POSTROUTING", "-m", "comment", "--comment", `name: "crowdpack-e2e" id: "x"`, "-j", "CNI-abc"}},
		{"an empty quoted word", `-A X --comment "" -j KUBE-Y`, []string{"-A", "X", "--comment", "", "-j", "KUBE-Y"}},
	} {
		if got := splitRule(c.line); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: splitRule(%q) = %q, want %q", c.reason, c.line, got, c.want)
		}
	}
}

func TestTargetIsTheJumpOrGoto(t *testing.T) {
	for line, want := range map[string]string{
		`-A INPUT -j KUBE-FIREWALL`:            "KUBE-FIREWALL",
		`-A KUBE-SERVICES -g KUBE-SVC-1`:       "KUBE-SVC-1",
		`-A INPUT -p tcp --dport 22 -j ACCEPT`: "ACCEPT",
		`-A INPUT -p tcp`:                      "",
	} {
		if got := target(splitRule(line)); got != want {
			t.Errorf("target(%q) = %q, want %q", line, got, want)
		}
	}
}

func TestOnlyNewKubeAndCNIChainsAreOurs(t *testing.T) {
	for chain, want := range map[string]bool{"KUBE-SERVICES": true, "CNI-1a2b": true, "INPUT": false, "DOCKER": false, "kube-x": false} {
		if got := ours(chain); got != want {
			t.Errorf("ours(%q) = %t, want %t", chain, got, want)
		}
	}
}

func TestRemoveNewLeavesWhatWasThereBefore(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"old", "new"} {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := removeNew(dir, map[string]bool{"old": true}); err != nil {
		t.Fatal(err)
	}
	if got := entries(dir); !reflect.DeepEqual(got, map[string]bool{"old": true}) {
		t.Errorf("left %v, want only old", got)
	}
	if err := removeNew(dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("a folder that was not there before is still there: %v", err)
	}
}

func TestMountPointsAreUnescaped(t *testing.T) {
	if got := unescapeMount(`/tmp/a\040b`); got != "/tmp/a b" {
		t.Errorf("unescapeMount = %q", got)
	}
}

func TestProcessesNamingTheClustersFolderAreFound(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "sleep 30; true", dir) // $0 names the folder
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	found := processesMentioning(dir)
	if len(found) != 1 || !strings.Contains(found[0], fmt.Sprint(cmd.Process.Pid)) {
		t.Fatalf("processesMentioning(%s) = %v, want the shell %d", dir, found, cmd.Process.Pid)
	}
}

func TestTheLeftoverCheckFindsANewEntryOfAHostFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "before"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := &hostState{Dirs: map[string]map[string]bool{dir: entries(dir)}}
	if found := h.changed([]string{dir}); len(found) != 0 {
		t.Fatalf("nothing changed, yet the check found %v", found)
	}
	if err := os.Mkdir(filepath.Join(dir, "after"), 0o755); err != nil {
		t.Fatal(err)
	}
	found := h.changed([]string{dir})
	if len(found) != 1 || found[0] != filepath.Join(dir, "after") {
		t.Fatalf("changed = %v, want only %s", found, filepath.Join(dir, "after"))
	}
}
