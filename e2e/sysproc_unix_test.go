//go:build unix && !linux

package e2e

import "syscall"

// sysProcAttr puts a child in its own process group, so that stopping it also stops anything it
// started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
