package miniotest

import "syscall"

// dieWithParent has the kernel kill the server if the test binary dies
// without running Stop.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
