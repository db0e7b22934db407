package bench

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

const serveLabEnv = "SVCWATCH_BENCH_TEST_SERVE_LAB"

// TestMain lets the test binary act as the lab child process.
func TestMain(m *testing.M) {
	if os.Getenv(serveLabEnv) == "1" {
		if err := ServeLab(context.Background(), LabOptions{Hosts: 50, Latency: time.Millisecond}, os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSmokeBoth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 50 simulated hosts")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var progress bytes.Buffer
	rep, err := Run(ctx, Options{Hosts: 50, Cycles: 2, Mode: ModeBoth, Latency: time.Millisecond, Concurrency: 8,
		Inject: 5, TempDir: t.TempDir(), Progress: &progress, Seed: 1})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, progress.String())
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", table.String())
	if len(rep.Modes) != 2 || rep.Modes[0].Mode != ModeOurs || rep.Modes[1].Mode != ModeNaive {
		t.Fatalf("modes: %+v", rep.Modes)
	}
	for _, m := range rep.Modes {
		if m.Failures != 0 {
			t.Errorf("%s: %d failed host-polls: %s", m.Mode, m.Failures, m.FirstError)
		}
		for name, v := range map[string]float64{
			"cycle median": m.CycleMedian, "hosts/s": m.HostsPerSec, "cpu/poll": m.CPUPerPollMS, "rss": m.PeakRSSMiB,
			"first wire bytes": m.First.WireBytes, "idle wire bytes": m.Idle.WireBytes, "idle http requests": m.Idle.HTTPRequests,
			"change wire bytes": m.Change.WireBytes,
		} {
			if !(v > 0) {
				t.Errorf("%s: %s = %v, want > 0", m.Mode, name, v)
			}
		}
		if m.Injected != 5 || m.Detected != m.Injected {
			t.Errorf("%s: detected %d of %d injected", m.Mode, m.Detected, m.Injected)
		}
		if m.DetectP50 <= 0 || m.DetectP99 < m.DetectP50 {
			t.Errorf("%s: detection p50 %v p99 %v", m.Mode, m.DetectP50, m.DetectP99)
		}
	}
	ours, nv := rep.Modes[0], rep.Modes[1]
	if ours.Idle.WireBytes > nv.Idle.WireBytes {
		t.Errorf("idle bytes per host-poll: ours %.0f > naive %.0f", ours.Idle.WireBytes, nv.Idle.WireBytes)
	}
	if ours.Change.WireBytes > nv.Change.WireBytes {
		t.Errorf("bytes per host-poll with a change: ours %.0f > naive %.0f", ours.Change.WireBytes, nv.Change.WireBytes)
	}
	if ours.Idle.HTTPRequests > nv.Idle.HTTPRequests {
		t.Errorf("idle HTTP requests: ours %.1f > naive %.1f", ours.Idle.HTTPRequests, nv.Idle.HTTPRequests)
	}
	if ours.Change.WireBytes <= ours.Idle.WireBytes {
		t.Errorf("ours: a poll with a change (%.0f bytes) is not larger than an idle one (%.0f): the digest is not at work",
			ours.Change.WireBytes, ours.Idle.WireBytes)
	}
	if r := rep.Ratios["idle_wire_bytes"]; r <= 0 || r > 1 {
		t.Errorf("ratio idle_wire_bytes = %v", r)
	}
	for _, want := range []string{"hosts per second", "ours/naive", "detection latency p99"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
}
