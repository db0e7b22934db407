package bench

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// peakRSS is VmHWM from /proc/self/status in bytes (0 when unavailable).
func peakRSS() int64 { return statusBytes("VmHWM:") }

// currentRSS is VmRSS from /proc/self/status in bytes (0 when unavailable).
func currentRSS() int64 { return statusBytes("VmRSS:") }

func statusBytes(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, field); ok {
			fields := strings.Fields(v)
			if len(fields) == 0 {
				return 0
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// resetPeakRSS asks Linux to restart VmHWM from the current RSS (writing 5
// to /proc/self/clear_refs, Linux 4.0+). It reports whether that worked, so
// a report can say when a peak covers an earlier phase too.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
