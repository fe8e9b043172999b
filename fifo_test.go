//go:build !yaegi && unix

package oauthintrospection

// TestMain makes the FIFOs that the secret-file tests put where a file belongs (testFIFO in
// secrets_test.go): inside Yaegi there is neither syscall nor os/exec to make one, so they are
// made here, before the compiled tests and the interpreted ones run in this process.

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "oauthintrospection-fifos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := 0; i < 8; i++ {
		if err := syscall.Mkfifo(filepath.Join(dir, fmt.Sprint("fifo-", i)), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "mkfifo:", err)
			os.Exit(1)
		}
	}
	os.Setenv("OAUTHINTROSPECTION_TEST_FIFOS", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
