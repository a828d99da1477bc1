package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// leftovers checks, after the teardown, that the machine holds nothing of
// the cluster: no process started from or serving its folder, no mount
// under it, no bridge, no kubepods cgroup, no new KUBE-/CNI- chain, and
// the sysctls as they were. "Nothing left running" is checked, not hoped.
func (c *cluster) leftovers() error {
	var found []string
	found = append(found, processesMentioning(c.dir)...)
	if points, err := mountsUnder(c.dir); err == nil && len(points) > 0 {
		found = append(found, fmt.Sprintf("mounts %v", points))
	}
	if _, err := os.Stat("/sys/class/net/" + bridgeName); err == nil {
		found = append(found, "the bridge "+bridgeName)
	}
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods"); len(dirs) > 0 {
		found = append(found, fmt.Sprintf("cgroups %v", dirs))
	}
	if c.host != nil {
		found = append(found, c.host.changed(hostDirs)...)
	}
	if len(found) == 0 {
		return nil
	}
	return errors.New("left on the machine: " + strings.Join(found, "; "))
}

// processesMentioning lists processes whose command line names dir (the
// daemons, containerd's shims) other than this one.
func processesMentioning(dir string) []string {
	var found []string
	for _, pid := range pidsMentioning(dir) {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		found = append(found, fmt.Sprintf("process %d (%.80s)", pid, strings.ReplaceAll(string(data), "\x00", " ")))
	}
	return found
}

// changed lists what differs from before the cluster: sysctls, entries
// of dirs, chains.
func (h *hostState) changed(dirs []string) []string {
	var found []string
	for s, before := range h.Sysctls {
		if data, err := os.ReadFile("/proc/sys/" + s); err == nil && strings.TrimSpace(string(data)) != before {
			found = append(found, fmt.Sprintf("sysctl %s=%s (was %s)", s, strings.TrimSpace(string(data)), before))
		}
	}
	for _, d := range dirs {
		for name := range entries(d) {
			if h.Dirs[d] == nil || !h.Dirs[d][name] {
				found = append(found, filepath.Join(d, name))
			}
		}
		if h.Dirs[d] == nil && entries(d) != nil {
			found = append(found, d)
		}
	}
	if h.Chains == nil { // none recorded: nothing to compare with
		return found
	}
	now, err := listChains()
	if err != nil {
		return append(found, err.Error())
	}
	for tool, tables := range now {
		for table, chains := range tables {
			for chain := range chains {
				if ours(chain) && !h.Chains[tool][table][chain] {
					found = append(found, fmt.Sprintf("%s chain %s/%s", tool, table, chain))
				}
			}
		}
	}
	return found
}
