package main

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
)

func TestFindingsFlags(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"needs a config", []string{"findings"}, "--config FILE is required"},
		{"unknown kind", []string{"findings", "--kind", "installed,instaled"}, `--kind "instaled" is not one of installed, ephemeral`},
		{"unknown severity", []string{"findings", "--min-severity", "severe"}, `--min-severity: unknown severity "severe"`},
		{"negative since", []string{"findings", "--since", "-1h"}, "give a positive duration"},
		{"stray argument", []string{"findings", "dc01"}, `unexpected argument "dc01"`},
		{"no state file yet", []string{"findings", "--config", writeMinimalConfig(t, dir)}, "no state file at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.args...)
			if code != exitSetup || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, exitSetup, tt.stderr)
			}
		})
	}
}

// writeMinimalConfig writes a valid config whose state file does not exist.
func writeMinimalConfig(t *testing.T, dir string) string {
	t.Helper()
	c := &config.Config{
		State:     config.State{Path: dir + "/never-polled.db"},
		Directory: config.Directory{Targets: config.Targets{Hosts: []string{"dc01.lab.test"}}},
		WinRM:     config.WinRM{Scheme: "http", Username: "svc", PasswordEnv: "P", ConnectTo: "127.0.0.1:40000"},
		Slack:     config.Slack{TokenEnv: "T", Channel: "#lab", APIURL: "http://127.0.0.1:40001/api/"},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	path := dir + "/minimal.yaml"
	if err := os.WriteFile(path, []byte(c.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The operator reads the findings while the daemon runs and holds the state
// file: what Slack got, and what an attacker named, safely.
func TestProcessFindingsWhileRunning(t *testing.T) {
	skipProcessShort(t)
	t.Parallel()
	ls := startLabServe(t, 5, time.Second)
	cfgPath := ls.tune(t, "run.yaml", func(c *config.Config) { c.WinRM.Timeout = 10 * time.Second })
	daemon := startProc(t, "run", "--config", cfgPath)
	ls.waitPolls(t, 2, 60*time.Second)

	ls.post(t, "/hosts/dc01/scenarios/psexec")
	ls.post(t, "/hosts/dc02/scenarios/hostile-name")
	deadline := time.Now().Add(60 * time.Second)
	for alertsFor(ls.messages(t), "PSEXESVC") == 0 || len(ls.messages(t)) < 2 {
		if _, exited := daemon.wait(0); exited {
			t.Fatal("run exited")
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alerts within 60s:\n%s", readableAll(ls.messages(t)))
		}
		time.Sleep(100 * time.Millisecond)
	}

	code, stdout, stderr := runProc(t, 30*time.Second, "findings", "--config", cfgPath)
	if code != exitOK {
		t.Fatalf("findings exited %d while run holds the state file\nstderr: %s", code, stderr)
	}
	t.Logf("findings:\n%s", stdout)
	var psexec string
	for _, line := range strings.Split(stdout, "\n") {
		if strings.Contains(line, "PSEXESVC") {
			psexec = line
		}
		if len(line) > 400 {
			t.Errorf("a %d-byte table line: attacker-named text is not bounded: %.120q…", len(line), line)
		}
		for _, r := range line {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) {
				t.Errorf("control or bidi character %U reached the terminal: %.120q", r, line)
				break
			}
		}
	}
	if !strings.Contains(psexec, "dc01.lab.example") || !strings.Contains(psexec, "installed") || !strings.HasSuffix(strings.TrimSpace(psexec), statusSent) {
		t.Errorf("no sent PSEXESVC installation on dc01 in:\n%s", stdout)
	}

	code, stdout, stderr = runProc(t, 30*time.Second, "findings", "--config", cfgPath, "--json", "--host", "DC01.lab.example", "--kind", "installed")
	if code != exitOK {
		t.Fatalf("findings --json exited %d\nstderr: %s", code, stderr)
	}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	var lines []findingJSON
	for sc.Scan() {
		var l findingJSON
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %v: %q", err, sc.Text())
		}
		lines = append(lines, l)
	}
	if len(lines) != 1 {
		t.Fatalf("--host dc01 --kind installed: %d lines, want 1:\n%s", len(lines), stdout)
	}
	l := lines[0]
	if l.Finding.Service == nil || l.Finding.Service.Name != "PSEXESVC" || l.Finding.Kind != inventory.KindInstalled ||
		l.Status != statusSent || l.Delivered == nil || l.Delivered.Before(l.Stored) {
		t.Errorf("--json line = %+v", l)
	}
}
