package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// teardown stops everything the cluster started and removes what it left
// on the machine, also outside its folder. Each step runs even when one
// before it failed; the errors are joined.
func (c *cluster) teardown() error {
	start := time.Now()
	var errs []error
	note := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	if c.running("kubelet") && c.running("kube-apiserver") && c.running("containerd") {
		// Nothing may recreate a pod while the kubelet takes them down
		// (which also runs CNI DEL: addresses and masquerade rules go).
		note("stop", c.stop("kube-controller-manager", "kube-scheduler"))
		note("delete the pods", c.deletePods())
	}
	note("stop", c.stop("kube-proxy", "kubelet"))
	if c.running("containerd") {
		note("kill the containers", c.killTasks())
	}
	note("stop", c.stop("containerd"))
	note("containerd's shims", killShims(c.ctrSock))
	note("kubepods cgroups", removeCgroups("kubepods"))
	note("mounts", unmountUnder(c.dir))
	note("stop", c.stop(reversed(c.order)...))
	if c.host != nil {
		note("the host", c.host.restore())
	}
	note("check", c.leftovers())
	note("remove "+c.dir, os.RemoveAll(c.dir))
	err := errors.Join(errs...)
	if err == nil {
		// All is put back: the next node has nothing of this one to restore.
		err = removeHostState()
	}
	if err == nil {
		log.Printf("torn down in %s: nothing of the cluster is left", time.Since(start).Round(time.Millisecond))
	}
	return err
}

func (c *cluster) running(name string) bool {
	p, ok := c.procs[name]
	return ok && p.exited() == nil
}

// stop stops the named processes that were started, in order.
func (c *cluster) stop(names ...string) error {
	var errs []error
	for _, name := range names {
		if p, ok := c.procs[name]; ok {
			errs = append(errs, p.stop(20*time.Second))
		}
	}
	return errors.Join(errs...)
}

func reversed(s []string) []string {
	r := make([]string, len(s))
	for i, v := range s {
		r[len(s)-1-i] = v
	}
	return r
}

// deletePods deletes every pod at once and waits (a minute at most) for
// containerd to run no task: the kubelet has stopped their sandboxes.
func (c *cluster) deletePods() error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pods, err := c.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	zero := int64(0)
	for _, p := range pods.Items {
		if err := c.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
			log.Printf("delete pod %s/%s: %v", p.Namespace, p.Name, err)
		}
	}
	return c.waitFor(ctx, "the pods' sandboxes to stop", time.Minute, func() error {
		tasks, err := c.tasks()
		if err == nil && len(tasks) > 0 {
			err = fmt.Errorf("%d tasks still running", len(tasks))
		}
		return err
	})
}

// tasks lists containerd's running tasks (containers and sandboxes).
func (c *cluster) tasks() ([]string, error) {
	out, err := exec.Command("ctr", "--address", c.ctrSock, "--namespace", "k8s.io", "tasks", "ls").Output()
	if err != nil {
		return nil, fmt.Errorf("ctr tasks ls: %w", err)
	}
	var running []string
	for _, line := range strings.Split(string(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) == 3 && f[2] != "STOPPED" {
			running = append(running, f[0])
		}
	}
	return running, nil
}

// killTasks kills what the kubelet did not stop.
func (c *cluster) killTasks() error {
	tasks, err := c.tasks()
	for _, t := range tasks {
		_ = c.ctr("tasks", "kill", "--signal", "SIGKILL", t)
	}
	return err
}

// killShims kills containerd shims left serving the cluster's containerd
// (found by its socket on their command line); containerd does not stop them.
func killShims(address string) error {
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return err
	}
	for _, f := range procs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(data), "\x00", " ")
		if strings.Contains(cmdline, "containerd-shim") && strings.Contains(cmdline, "-address "+address+" ") {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			log.Printf("killing containerd shim %d", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return nil
}

// removeCgroups kills every process left in the cgroup name of each
// hierarchy (the kubelet's pods) and removes its cgroups, deepest first.
func removeCgroups(name string) error {
	roots, err := filepath.Glob("/sys/fs/cgroup/*/" + name)
	if err != nil {
		return err
	}
	if _, err := os.Stat("/sys/fs/cgroup/" + name); err == nil {
		roots = append(roots, "/sys/fs/cgroup/"+name)
	}
	var dirs []string
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
				killProcsOf(p)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var errs []error
	for _, d := range dirs {
		errs = append(errs, rmdirRetrying(d))
	}
	return errors.Join(errs...)
}

func killProcsOf(cgroup string) {
	data, _ := os.ReadFile(filepath.Join(cgroup, "cgroup.procs"))
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			log.Printf("killing process %d left in %s", pid, cgroup)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// rmdirRetrying removes an empty cgroup; killed processes take a moment to leave it.
func rmdirRetrying(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = syscall.Rmdir(dir); err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("rmdir %s: %w", dir, err)
}

func unmountUnder(dir string) error {
	points, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// removeNetns removes the pods' network namespaces containerd left behind.
func (h *hostState) removeNetns() error {
	var errs []error
	for name := range entries("/var/run/netns") {
		if h.Netns[name] {
			continue
		}
		p := filepath.Join("/var/run/netns", name)
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
		errs = append(errs, os.Remove(p))
	}
	return errors.Join(errs...)
}

func removeLink(name string) error {
	if _, err := os.Stat("/sys/class/net/" + name); err != nil {
		return nil
	}
	if out, err := exec.Command("ip", "link", "delete", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip link delete %s: %w: %s", name, err, out)
	}
	return nil
}
