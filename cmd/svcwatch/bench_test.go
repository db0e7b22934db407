package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestBenchCommandJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 simulated hosts")
	}
	var out, errOut bytes.Buffer
	code := realMain([]string{"bench", "--hosts", "20", "--cycles", "2", "--mode", "both", "--latency", "1ms",
		"--concurrency", "4", "--inject", "2", "--in-process", "--json"}, &out, &errOut)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var rep struct {
		Hosts int `json:"hosts"`
		Modes []struct {
			Mode        string  `json:"mode"`
			HostsPerSec float64 `json:"hosts_per_s"`
			Failures    int     `json:"failures"`
			Idle        struct {
				WireBytes float64 `json:"wire_bytes"`
			} `json:"idle_poll"`
		} `json:"modes"`
		Ratios map[string]float64 `json:"ratios_ours_over_naive"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	if rep.Hosts != 20 || len(rep.Modes) != 2 || rep.Modes[0].Mode != "ours" || rep.Modes[1].Mode != "naive" {
		t.Fatalf("report: %+v", rep)
	}
	for _, m := range rep.Modes {
		if m.HostsPerSec <= 0 || m.Failures != 0 || m.Idle.WireBytes <= 0 {
			t.Errorf("%s: %+v", m.Mode, m)
		}
	}
	if rep.Modes[0].Idle.WireBytes > rep.Modes[1].Idle.WireBytes {
		t.Errorf("idle bytes: ours %.0f > naive %.0f", rep.Modes[0].Idle.WireBytes, rep.Modes[1].Idle.WireBytes)
	}
	if _, ok := rep.Ratios["hosts_per_s"]; !ok {
		t.Errorf("no ratios: %v", rep.Ratios)
	}
	if !strings.Contains(errOut.String(), "bench: naive cycle 2/2") {
		t.Errorf("no progress lines: %s", errOut.String())
	}
}

func TestBenchCommandBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--hosts", "0"},
		{"bench", "--mode", "fast"},
		{"bench", "--cycles", "0"},
		{"bench", "extra"},
	} {
		var out, errOut bytes.Buffer
		if code := realMain(args, &out, &errOut); code != exitSetup {
			t.Errorf("%v: exit %d, want %d (%s)", args, code, exitSetup, errOut.String())
		}
	}
}
