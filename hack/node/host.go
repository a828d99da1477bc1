package main

import (
	"bufio"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// debianPackages are what the node needs from the machine: command → package.
var debianPackages = []struct{ command, pkg string }{
	{"containerd", "containerd"},
	{"ctr", "containerd"},
	{"runc", "runc"},
	{"iptables", "iptables"},
	{"ipset", "ipset"}, // kube-proxy's --cleanup needs it
	{"conntrack", "conntrack"},
	{"ip", "iproute2"},
	{cniBinDir + "/bridge", "containernetworking-plugins"},
}

// preflight checks what the node cannot run without, installing missing
// Debian packages with apt-get, and says what is missing when it cannot.
func preflight(bin string) error {
	if os.Geteuid() != 0 {
		return errors.New("the node needs root (containerd, kubelet, iptables, mounts): run make e2e-node as root")
	}
	for _, cgroup := range []string{"memory", "cpu", "pids"} {
		if !cgroupController(cgroup) {
			return fmt.Errorf("no %s cgroup controller is mounted under /sys/fs/cgroup: the kubelet cannot run pods on this machine", cgroup)
		}
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "pause-image.tar"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return fmt.Errorf("%s is missing from %s: run hack/tools.sh node", name, bin)
		}
	}
	return installMissingPackages()
}

// cgroupController says whether a v1 hierarchy or the v2 root offers name.
func cgroupController(name string) bool {
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", name)); err == nil {
		return true
	}
	data, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
	return err == nil && strings.Contains(" "+string(data)+" ", " "+name+" ")
}

func installMissingPackages() error {
	var missing []string
	seen := map[string]bool{}
	for _, p := range debianPackages {
		if found(p.command) || seen[p.pkg] {
			continue
		}
		seen[p.pkg] = true
		missing = append(missing, p.pkg)
	}
	if len(missing) == 0 {
		return nil
	}
	if !found("apt-get") {
		return fmt.Errorf("the node needs the Debian packages %s (no apt-get here: install them another way)", strings.Join(missing, " "))
	}
	log.Printf("installing %s with apt-get", strings.Join(missing, " "))
	install := append([]string{"install", "-y", "--no-install-recommends"}, missing...)
	if err := aptGet(install...); err != nil {
		if err := aptGet("update"); err != nil {
			return fmt.Errorf("apt-get update (to install %s): %w", strings.Join(missing, " "), err)
		}
		if err := aptGet(install...); err != nil {
			return fmt.Errorf("install the node's Debian packages %s: %w", strings.Join(missing, " "), err)
		}
	}
	return nil
}

func aptGet(args ...string) error {
	cmd := exec.Command("apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func found(command string) bool {
	if strings.HasPrefix(command, "/") {
		_, err := os.Stat(command)
		return err == nil
	}
	_, err := exec.LookPath(command)
	return err == nil
}

// The sysctls the CNI bridge (ip_forward), kube-proxy (route_localnet) and
// the kubelet (its kernel defaults) turn on; teardown puts back the values
// recorded before.
var touchedSysctls = []string{
	"net/ipv4/ip_forward",
	"net/ipv4/conf/all/route_localnet",
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

// hostState is what the machine had before the cluster: teardown removes
// only what appeared since.
type hostState struct {
	Sysctls map[string]string          `json:"sysctls"`
	Netns   map[string]bool            `json:"netns"`
	Dirs    map[string]map[string]bool `json:"dirs"` // hostDirs → entries; nil: absent
	Chains  chainSet                   `json:"chains"`
}

// hostDirs are what the kubelet, containerd and the CNI plugins write
// outside the cluster's folder, whatever they are told: pod logs (and their
// links), the device plugins' socket, the shims' sockets and runc's state,
// the CNI results cache.
var hostDirs = []string{"/var/log/pods", "/var/log/containers", "/var/lib/kubelet", "/run/containerd", "/var/lib/cni"}

func recordHost() (*hostState, error) {
	h := &hostState{Sysctls: map[string]string{}, Dirs: map[string]map[string]bool{}}
	for _, s := range touchedSysctls {
		data, err := os.ReadFile("/proc/sys/" + s)
		if err != nil {
			return nil, fmt.Errorf("read sysctl %s: %w", s, err)
		}
		h.Sysctls[s] = strings.TrimSpace(string(data))
	}
	h.Netns = entries("/var/run/netns")
	var err error
	if h.Chains, err = listChains(); err != nil {
		return nil, err
	}
	for _, d := range hostDirs {
		h.Dirs[d] = entries(d)
	}
	return h, nil
}

// entries names a folder's entries; nil when the folder does not exist.
func entries(dir string) map[string]bool {
	list, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	m := map[string]bool{}
	for _, e := range list {
		m[e.Name()] = true
	}
	return m
}

func (h *hostState) restoreSysctls() error {
	var errs []error
	for s, v := range h.Sysctls {
		if err := os.WriteFile("/proc/sys/"+s, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s=%s: %w", s, v, err))
		}
	}
	return errors.Join(errs...)
}

// removeNew removes the entries of dir that were not there before (and dir,
// if it was not).
func removeNew(dir string, before map[string]bool) error {
	if before == nil {
		return os.RemoveAll(dir)
	}
	var errs []error
	for name := range entries(dir) {
		if !before[name] {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, name)))
		}
	}
	return errors.Join(errs...)
}

// mountsUnder lists mount points at or under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 {
			p := unescapeMount(fields[4])
			if p == dir || strings.HasPrefix(p, dir+"/") {
				points = append(points, p)
			}
		}
	}
	// Later mounts first: a mount on top of another comes out before it.
	for i, j := 0, len(points)-1; i < j; i, j = i+1, j-1 {
		points[i], points[j] = points[j], points[i]
	}
	return points, s.Err()
}

func unescapeMount(p string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(p)
}
