package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// tempPrefix names the cluster's folder; a process or mount under a folder
// of that name belongs to a node of this program.
const tempPrefix = "crowdpack-e2e-node-"

// cleanStale removes what a node killed before its teardown (SIGKILL, a
// lost machine session) left: its daemons, shims and containers, mounts,
// bridge, iptables chains and folders. It runs under the machine's lock,
// so no other node is running: all of it is stale.
func cleanStale() error {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*"))
	if err != nil {
		return err
	}
	before, err := loadHostState()
	if err != nil {
		return err
	}
	_, bridge := os.Stat("/sys/class/net/" + bridgeName)
	if len(dirs) == 0 && bridge != nil && before == nil {
		return nil
	}
	log.Printf("cleaning what a node killed before its teardown left: %v", dirs)
	var errs []error
	for _, dir := range dirs {
		for _, pid := range pidsMentioning(dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	errs = append(errs, removeCgroups("kubepods"))
	for _, dir := range dirs {
		errs = append(errs, unmountUnder(dir), os.RemoveAll(dir))
	}
	if before == nil { // nothing recorded: every KUBE-/CNI- chain is the killed node's
		before = &hostState{Chains: chainSet{}}
	}
	errs = append(errs, before.restore())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean what a previous node left: %w", err)
	}
	return removeHostState()
}

func pidsMentioning(dir string) []int {
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(data), dir) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}
