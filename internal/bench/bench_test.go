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

// TestSmokeKeptSessions: with a kept shell an idle poll is two
// WS-Management requests (Command or Send, Receive), fewer bytes than a
// per-poll shell, and detection still works.
func TestSmokeKeptSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 simulated hosts per session mode")
	}
	perPoll := 0.0
	for _, session := range []string{"per-poll", "shell", "persistent"} {
		t.Run(session, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			rep, err := Run(ctx, Options{Hosts: 20, Cycles: 3, Mode: ModeOurs, Session: session, Latency: time.Millisecond,
				Concurrency: 4, Inject: 2, TempDir: t.TempDir(), Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			m := rep.Modes[0]
			if m.Failures != 0 || m.Detected != m.Injected || m.Injected != 2 {
				t.Fatalf("%d failures (%s), detected %d of %d", m.Failures, m.FirstError, m.Detected, m.Injected)
			}
			wantSOAP := map[string]float64{"per-poll": 4, "shell": 2, "persistent": 2}[session]
			if m.LastIdle.Polls == 0 || m.LastIdle.SOAPRequests != wantSOAP {
				t.Errorf("last cycle: %d idle polls, %.1f WS-Management requests each; want %.0f", m.LastIdle.Polls, m.LastIdle.SOAPRequests, wantSOAP)
			}
			if m.LastHostsPS <= 0 || m.LastIdle.WireBytes <= 0 {
				t.Errorf("last cycle: %.0f hosts/s, %.0f idle bytes", m.LastHostsPS, m.LastIdle.WireBytes)
			}
			if session == "per-poll" {
				perPoll = m.LastIdle.WireBytes
			} else if perPoll > 0 && m.LastIdle.WireBytes >= perPoll {
				t.Errorf("idle poll %.0f bytes, not fewer than per-poll's %.0f", m.LastIdle.WireBytes, perPoll)
			}
		})
	}
}

// TestLabChildProcess runs the lab as a child (this test binary, see
// TestMain), as svcwatch bench does, so the poller's figures are its own.
func TestLabChildProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	t.Setenv(serveLabEnv, "1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, Options{Hosts: 50, Cycles: 2, Mode: ModeOurs, Latency: time.Millisecond, Inject: -1,
		TempDir: t.TempDir(), LabCommand: []string{os.Args[0], "-test.run=^$"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.LabProcess, "child process") {
		t.Errorf("lab process: %q", rep.LabProcess)
	}
	m := rep.Modes[0]
	if m.Failures != 0 || m.Idle.Polls != 50 || m.Idle.NewConns != 0 || m.First.NewConns < 1 {
		t.Errorf("ours against a child lab: %d failures, %d idle polls, %.2f new connections per idle poll, %.2f on the first",
			m.Failures, m.Idle.Polls, m.Idle.NewConns, m.First.NewConns)
	}
	if m.Injected != 0 || m.Detected != 0 {
		t.Errorf("inject -1 still injected %d", m.Injected)
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"no hosts", Options{Hosts: 0, Cycles: 1}},
		{"too many hosts", Options{Hosts: MaxHosts + 1, Cycles: 1}},
		{"no cycles", Options{Hosts: 1, Cycles: 0}},
		{"bad mode", Options{Hosts: 1, Cycles: 1, Mode: "fast"}},
		{"bad concurrency", Options{Hosts: 1, Cycles: 1, Concurrency: -1}},
		{"negative interval", Options{Hosts: 1, Cycles: 1, Interval: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Run(context.Background(), tt.o); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestClassify(t *testing.T) {
	prev := pollRecord{start: 100, end: 200}
	cur := pollRecord{start: 300, end: 400}
	tests := []struct {
		at   int64
		want int
	}{
		{0, kindIdle}, {50, kindIdle}, {250, kindChange}, {150, kindUnclear}, {350, kindUnclear}, {450, kindIdle},
	}
	for _, tt := range tests {
		if got := classify(tt.at, prev, cur); got != tt.want {
			t.Errorf("classify(%d) = %d, want %d", tt.at, got, tt.want)
		}
	}
}

func TestPercentileAndSample(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tt := range []struct{ p, want float64 }{{50, 5}, {95, 10}, {99, 10}, {10, 1}} {
		if got := percentile(v, tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty percentile")
	}
	names := make([]string, 100)
	for i := range names {
		names[i] = HostName(i)
	}
	a, b := injectSample(names, 10, 0), injectSample(names, 10, 1)
	if len(a) != 10 || len(b) != 10 {
		t.Fatalf("samples %d %d", len(a), len(b))
	}
	for _, x := range a {
		for _, y := range b {
			if x == y {
				t.Errorf("phases share host %s", x)
			}
		}
	}
	if got := injectSample(names[:3], 5, 0); len(got) != 3 {
		t.Errorf("sample larger than the fleet: %v", got)
	}
}
