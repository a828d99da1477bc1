package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"syscall"
)

// lockFile serialises the nodes of one machine: two would share the
// bridge, the kubelet's port, /var/log/pods and the kubepods cgroups, and
// each one's teardown would take the other's down.
const lockFile = "/run/crowdpack-e2e-node.lock"

// lockMachine waits for the machine's node lock; unlock releases it (the
// kernel releases it too if this process dies).
func lockMachine() (unlock func(), err error) {
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", lockFile, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
		log.Printf("another e2e-node run holds %s: waiting for it to end", lockFile)
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", lockFile, err)
	}
	return func() { f.Close() }, nil
}
