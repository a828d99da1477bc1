package uploads

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// loadPinning is where make load runs its processes. With the control
// plane pinned (the default on 2 CPUs or more), the API server and etcd
// share CPU 0 and nothing else runs there, in every phase: as in a cluster,
// where the control plane does not share its machine with the operator,
// WeChat Pay and object storage. The floor then measures what the API
// server must do, not how much CPU the operator's neighbours leave it.
// CROWDPACK_LOAD_PIN=0 lets every process run on every CPU.
type loadPinning struct {
	controlPlane, rest unix.CPUSet
	on                 bool
}

func newLoadPinning() loadPinning {
	var p loadPinning
	if os.Getenv("CROWDPACK_LOAD_PIN") == "0" || runtime.NumCPU() < 2 {
		return p
	}
	p.on = true
	p.controlPlane.Set(0)
	for cpu := 1; cpu < runtime.NumCPU(); cpu++ {
		p.rest.Set(cpu)
	}
	return p
}

// controlPlaneOn pins the API server and etcd.
func (p loadPinning) controlPlaneOn(b *testing.B, pids ...int) {
	p.pin(b, p.controlPlane, pids)
}

// restOn pins the manager, MinIO and this process (the sandbox, the
// creator of the objects and the floor's client).
func (p loadPinning) restOn(b *testing.B, pids ...int) {
	p.pin(b, p.rest, pids)
}

func (p loadPinning) pin(b *testing.B, cpus unix.CPUSet, pids []int) {
	if !p.on {
		return
	}
	for _, pid := range pids {
		if err := pinProcess(pid, &cpus); err != nil {
			b.Fatal(err)
		}
	}
}

// pinProcess sets the CPUs of every thread of pid. A thread inherits its
// creator's CPUs, so one made while the first pass ran is caught by the
// second.
func pinProcess(pid int, cpus *unix.CPUSet) error {
	for range 2 {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return fmt.Errorf("pin process %d: %w", pid, err)
		}
		for _, task := range tasks {
			tid, err := strconv.Atoi(task.Name())
			if err != nil {
				continue
			}
			// A thread may end meanwhile (ESRCH): it runs nowhere.
			if err := unix.SchedSetaffinity(tid, cpus); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d of process %d: %w", tid, pid, err)
			}
		}
	}
	return nil
}

// report records whether the run was pinned.
func (p loadPinning) report(b *testing.B) {
	pinned := 0.0
	if p.on {
		pinned = 1
	}
	b.ReportMetric(pinned, "control-plane-pinned")
}
