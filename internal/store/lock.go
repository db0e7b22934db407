package store

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// errLocked: another process holds the state file's lock.
var errLocked = errors.New("locked")

// lockState takes the exclusive lock beside the state file (path + ".lock")
// and writes this process's id into it. Two svcwatch processes on one state
// file would poll every host twice and race each other's commits. The lock
// is released by unlock or when the process ends, however it ends.
func lockState(path string) (*os.File, error) {
	lp := path + ".lock"
	f, err := os.OpenFile(lp, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w; create the directory, or set state.path to a writable location", err)
	}
	if err := lockFile(f); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(lp); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("store: %s is in use by another svcwatch process%s; stop it (svcwatch run and a svcwatch once timer must not share a state file) or set state.path to another file", path, holder)
		}
		return nil, fmt.Errorf("store: locking %s: %w", lp, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// unlockState releases the lock taken by lockState.
func unlockState(f *os.File) {
	if f != nil {
		_ = unlockFile(f)
		_ = f.Close()
	}
}
