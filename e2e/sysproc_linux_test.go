//go:build linux

package e2e

import "syscall"

// sysProcAttr puts a child in its own process group, so that stopping it also stops anything it
// started, and has the kernel kill it if the test binary dies without cleaning up (e.g. on a
// go test -timeout panic).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
