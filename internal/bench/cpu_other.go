//go:build !unix

package bench

import "time"

// cpuTime is not measured on this platform; the report shows zero CPU.
func cpuTime() time.Duration { return 0 }
