package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/store"
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
		{"negative limit", []string{"findings", "--limit", "-5"}, "give 0 for all"},
		{"short id", []string{"findings", "--id", "103d4"}, "at least its first 6 digits"},
		{"id not hex", []string{"findings", "--id", "psexec-1"}, "give the finding ID from the alert"},
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

func TestFindingsUnreadableStore(t *testing.T) {
	dir := t.TempDir()
	cfg := writeMinimalConfig(t, dir)
	if err := os.WriteFile(dir+"/never-polled.db", []byte("this is not an SQLite database, it is a note someone left here"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "findings", "--config", cfg)
	if code != exitFailed || !strings.Contains(stderr, "is it a state file written by svcwatch?") {
		t.Errorf("exit %d, stderr %q; want %d and the question", code, stderr, exitFailed)
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
// file: what Slack got, what min_severity held back, and what an attacker
// named, safely.
func TestProcessFindingsWhileRunning(t *testing.T) {
	skipProcessShort(t)
	t.Parallel()
	ls := startLabServe(t, 5, time.Second)
	cfgPath := ls.tune(t, "run.yaml", func(c *config.Config) {
		c.WinRM.Timeout = 10 * time.Second
		c.Slack.MinSeverity = "critical"
	})
	daemon := startProc(t, "run", "--config", cfgPath)
	ls.waitPolls(t, 2, 60*time.Second)

	ls.post(t, "/hosts/dc01/scenarios/psexec")
	ls.post(t, "/hosts/dc02/scenarios/hostile-name")
	ls.post(t, "/hosts/dc03/scenarios/benign-install")
	// Wait until each of the three installations has left the outbox.
	var lines []findingJSON
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, exited := daemon.wait(0); exited {
			t.Fatal("run exited")
		}
		code, stdout, stderr := runProc(t, 30*time.Second, "findings", "--config", cfgPath, "--json", "--kind", "installed")
		if code != exitOK {
			t.Fatalf("findings --json exited %d while run holds the state file\nstderr: %s", code, stderr)
		}
		lines = lines[:0]
		sc := bufio.NewScanner(strings.NewReader(stdout))
		sc.Buffer(nil, 1<<20)
		done := 0
		for sc.Scan() {
			if i := bytes.IndexFunc(sc.Bytes(), inventory.Unprintable); i >= 0 {
				t.Fatalf("--json line carries a raw terminal control at byte %d: %.120q", i, sc.Text())
			}
			var l findingJSON
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("not a JSON line: %v: %q", err, sc.Text())
			}
			lines = append(lines, l)
			if l.Status != statusQueued {
				done++
			}
		}
		if done >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the three installations did not leave the outbox within 60s:\n%s", stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	byHost := map[string]findingJSON{}
	for _, l := range lines {
		byHost[l.Finding.Host.Name] = l
	}
	if l := byHost["dc01.lab.example"]; l.Finding.Service == nil || l.Finding.Service.Name != "PSEXESVC" ||
		l.Status != statusSent || l.LeftOutbox == nil || l.LeftOutbox.Before(l.Stored) {
		t.Errorf("dc01 (psexec, critical): %+v", l)
	}
	if l := byHost["dc03.lab.example"]; l.Finding.Service == nil || l.Finding.Service.Name != "Zabbix Agent 2" ||
		l.Finding.Severity >= inventory.SeverityCritical || l.Status != statusBelowMin {
		t.Errorf("dc03 (monitoring agent, below critical): %+v", l)
	}
	if got := alertsFor(ls.messages(t), "PSEXESVC"); got != 1 {
		t.Errorf("%d Slack alerts about PSEXESVC, want 1", got)
	}

	// The ID under the Slack alert finds the same finding.
	psexecID := byHost["dc01.lab.example"].Finding.ID
	code, stdout, stderr := runProc(t, 30*time.Second, "findings", "--config", cfgPath, "--json", "--id", strings.ToUpper(psexecID[:8]))
	if code != exitOK || strings.Count(stdout, "\n") != 1 || !strings.Contains(stdout, `"id":"`+psexecID+`"`) {
		t.Errorf("--id %s: exit %d, stdout %.300s, stderr %s", psexecID[:8], code, stdout, stderr)
	}

	code, stdout, stderr = runProc(t, 30*time.Second, "findings", "--config", cfgPath, "--host", "DC01.lab.example")
	if code != exitOK {
		t.Fatalf("findings exited %d\nstderr: %s", code, stderr)
	}
	if !strings.Contains(stdout, "PSEXESVC") || strings.Contains(stdout, "dc02") || !strings.Contains(stdout, "1 finding\n") {
		t.Errorf("--host DC01.lab.example (any case) lists:\n%s", stdout)
	}
	code, stdout, stderr = runProc(t, 30*time.Second, "findings", "--config", cfgPath)
	if code != exitOK {
		t.Fatalf("findings exited %d\nstderr: %s", code, stderr)
	}
	t.Logf("findings:\n%s", stdout)
	for _, line := range strings.Split(stdout, "\n") {
		if len(line) > 500 {
			t.Errorf("a %d-byte table line: attacker-named text is not bounded: %.120q…", len(line), line)
		}
		for _, r := range line {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
				t.Errorf("control or bidi character %U reached the terminal: %.120q", r, line)
				break
			}
		}
	}
	if !strings.Contains(stdout, "dc02.lab.example") {
		t.Errorf("the hostile-name installation on dc02 is not listed:\n%s", stdout)
	}
}

func TestFindingStatus(t *testing.T) {
	at := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		r    store.Record
		want string
	}{
		{"sent", store.Record{Delivered: at, Outcome: store.OutcomeSent}, "sent"},
		{"below min_severity", store.Record{Delivered: at, Outcome: store.OutcomeSkipped}, "not sent: below slack.min_severity"},
		{"queued", store.Record{Queued: true}, "queued"},
		{"queued after failures", store.Record{Queued: true, Attempts: 3, LastError: "slack: channel_not_found"}, "queued, 3 failed attempts: slack: channel_not_found"},
		{"suppressed", store.Record{Finding: inventory.Finding{Suppressed: true, SuppressedBy: "allow[2] (Veeam)"}}, "suppressed by allow[2] (Veeam)"},
		{"left the outbox before outcomes were kept", store.Record{Delivered: at}, "sent or below slack.min_severity (not recorded)"},
		{"never queued", store.Record{}, "not queued"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusText(tt.r); got != tt.want {
				t.Errorf("statusText = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEscapeUnprintableKeepsTheValue(t *testing.T) {
	in := map[string]string{"name": "svc\u202eexe.txt\u0085\u007f\u2066x\u2069", "path": "C:\\Program Files\\Zabbix Agent 2\\zabbix_agent2.exe", "esc": "\x1b[31m"}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	got := escapeUnprintable(b)
	if i := bytes.IndexFunc(got, inventory.Unprintable); i >= 0 {
		t.Errorf("raw control left at byte %d: %q", i, got)
	}
	var back map[string]string
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("escaped output is not JSON: %v: %s", err, got)
	}
	if back["name"] != in["name"] || back["path"] != in["path"] || back["esc"] != in["esc"] {
		t.Errorf("value changed: %q", back)
	}
	if plain := []byte(`{"a":"b"}`); &escapeUnprintable(plain)[0] != &plain[0] {
		t.Error("a clean line was copied")
	}
}
