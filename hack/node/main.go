// Command node runs a command against a real single-node Kubernetes cluster
// on this machine, and tears the cluster down when the command ends, fails
// or panics, or when node itself is interrupted:
//
//	go run ./hack/node [--bin bin/node] [--image dist/crowdpack-image-V-linux-amd64.tar]... -- go test -tags e2enode ./test/node
//
// The cluster is what make e2e-node tests the release on: etcd, the control
// plane, kubelet and kube-proxy from bin/node (hack/tools.sh node), Debian's
// containerd, runc and CNI plugins (installed with apt-get when missing), a
// bridge network, and a locally built pause image: no registry is needed.
// The command gets KUBECONFIG (cluster-admin) and CROWDPACK_E2E_NODE_*
// (see envFor).
//
// It needs root, cgroups and iptables; when the machine lacks one, node says
// what is missing and exits 1, so a suite run through it fails rather than
// skips.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

type imageFlags []string

func (f *imageFlags) String() string     { return strings.Join(*f, ",") }
func (f *imageFlags) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("[node] ")
	var o options
	flag.StringVar(&o.bin, "bin", "bin/node", "the folder of etcd, kube-*, kubelet and pause-image.tar (hack/tools.sh node)")
	flag.Var(&o.images, "image", "an image tarball to import into the node's containerd (repeatable)")
	flag.BoolVar(&o.panicWithAPod, "panic-with-a-pod", false,
		"instead of running a command, run a pod and panic: make e2e-node checks that the teardown after a panic leaves nothing (exit code 4)")
	flag.Parse()
	if flag.NArg() == 0 && !o.panicWithAPod {
		fmt.Fprintln(os.Stderr, "usage: node [--bin DIR] [--image TAR]... -- COMMAND [ARG]...")
		os.Exit(2)
	}
	os.Exit(run(o, flag.Args()))
}

// exitTeardownFailed is node's exit code when the cluster could not be
// removed entirely, whatever the command's: make e2e-node tells it from a
// command that failed (a panicking Go program exits 2).
const exitTeardownFailed = 3

// exitPanicked is node's exit code after a panic it recovered from (and
// tore the cluster down after).
const exitPanicked = 4

type options struct {
	bin           string
	images        imageFlags
	panicWithAPod bool
}

// run brings the cluster up, runs command, and tears everything down
// whatever happens: the teardown is deferred, a panic is recovered after
// it, and SIGINT/SIGTERM are passed to the command (then the cluster goes).
func run(o options, command []string) (code int) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if os.Geteuid() == 0 { // without root, preflight says what is wrong
		unlock, err := lockMachine()
		if err != nil {
			log.Print(err)
			return 1
		}
		defer unlock()
		if err := cleanStale(); err != nil {
			log.Print(err)
			return 1
		}
	}
	c, err := newCluster(o)
	if err != nil {
		log.Print(err)
		return 1
	}
	defer func() {
		if p := recover(); p != nil {
			log.Printf("panic: %v; tearing the cluster down", p)
			code = exitPanicked
		}
		if err := c.teardown(); err != nil {
			log.Printf("teardown: %v", err)
			code = exitTeardownFailed
		}
		// A panic asked for by --panic-with-a-pod and torn down clean is success.
		expected := o.panicWithAPod && code == exitPanicked
		if code != 0 && len(c.order) > 0 && !expected {
			log.Printf("the cluster's logs are in %s", c.logDir())
		} else {
			_ = os.RemoveAll(c.logDir())
		}
	}()
	if err := c.up(ctx); err != nil {
		log.Printf("the node did not come up: %v", err)
		c.dumpLogs()
		return 1
	}
	if o.panicWithAPod {
		if err := c.runAPod(ctx); err != nil {
			log.Print(err)
			return 1
		}
		panic("--panic-with-a-pod: a pod runs, and node panics")
	}
	return runCommand(ctx, command, c.envFor())
}

// runCommand runs command with env added, in its own process group, so an
// interrupt reaches all of it (go test and its test binaries).
func runCommand(ctx context.Context, command []string, env []string) int {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Printf("start %s: %v", command[0], err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitCode(err)
	case <-ctx.Done():
		log.Printf("interrupted: stopping %s", filepath.Base(command[0]))
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		return max(exitCode(<-done), 1)
	}
}

func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return max(exit.ExitCode(), 1)
	default:
		log.Print(err)
		return 1
	}
}
