package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/lab"
)

// labConfig starts a small lab and writes its config, optionally edited.
func labConfig(t *testing.T, edit func(*config.Config)) string {
	t.Helper()
	l, err := lab.Start(t.Context(), lab.Options{Small: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	cfg := l.Config()
	if edit != nil {
		edit(cfg)
	}
	path := filepath.Join(t.TempDir(), "svcwatch.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDiscoverAndCheckAgainstTheLab(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the lab")
	}
	wrongPassword := func(c *config.Config) {
		f := filepath.Join(t.TempDir(), "wrong")
		if err := os.WriteFile(f, []byte("not-the-password"), 0o600); err != nil {
			t.Fatal(err)
		}
		c.Directory.Bind.PasswordFile = f
		c.WinRM.PasswordFile = f
	}
	tests := []struct {
		name   string
		edit   func(*config.Config)
		args   func(path string) []string
		code   int
		stdout []string
		stderr string
	}{
		{"discover prints the host table", nil, func(p string) []string { return []string{"discover", "--config", p} }, exitOK,
			[]string{"HOST", "WHY", "dc01.lab.example", "srv02.lab.example", "dc", "5 hosts"}, ""},
		{"discover with a refused bind exits 2", wrongPassword, func(p string) []string { return []string{"discover", "--config", p} }, exitSetup,
			nil, "discovery failed"},
		{"check passes on a healthy host", nil, func(p string) []string { return []string{"check", "--config", p, "dc01.lab.example"} }, exitOK,
			[]string{"all checks passed"}, ""},
		{"check needs a host", nil, func(p string) []string { return []string{"check", "--config", p} }, exitSetup,
			nil, "usage: svcwatch check"},
		{"check names the failing step and its fix", wrongPassword, func(p string) []string { return []string{"check", "--config", p, "dc01.lab.example"} }, exitFailed,
			[]string{"FAIL", "fix:"}, "check(s) failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := labConfig(t, tt.edit)
			code, stdout, stderr := run(t, tt.args(path)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout does not contain %q:\n%s", w, stdout)
				}
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.stderr, stderr)
			}
		})
	}
}

func TestTestAlertPostsEverySeverity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the lab")
	}
	l, err := lab.Start(t.Context(), lab.Options{Small: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	path := filepath.Join(t.TempDir(), "svcwatch.yaml")
	if err := os.WriteFile(path, []byte(l.Config().String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "test-alert", "--config", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	msgs := l.Slack().Messages()
	if len(msgs) != 5 {
		t.Fatalf("%d messages in Slack, want one per severity (5)", len(msgs))
	}
	for i, sev := range []string{"INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"} {
		if !strings.Contains(msgs[i].Readable(), sev) {
			t.Errorf("message %d does not show severity %s:\n%s", i, sev, msgs[i].Readable())
		}
	}
	if l.Slack().Rejected() != 0 {
		t.Errorf("the sink rejected %d sample messages", l.Slack().Rejected())
	}

	l.Slack().Reject("channel_not_found", 1)
	if code, _, stderr := run(t, "test-alert", "--config", path); code != exitFailed || !strings.Contains(stderr, "channel") {
		t.Fatalf("refused channel: exit %d, stderr %q; want 1 and a message naming the channel", code, stderr)
	}
}
