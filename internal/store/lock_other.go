//go:build !unix && !windows

package store

import "os"

// No file locking on this platform: one svcwatch per state file is up to
// the operator.
func lockFile(*os.File) error { return nil }

func unlockFile(*os.File) error { return nil }
