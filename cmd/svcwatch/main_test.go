package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/svcwatch/svcwatch/internal/refdata"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = realMain(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("winrm:\n  auth: kerbros\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string // substring
		stderr     string // substring
		stderrLine bool   // stderr must be exactly one line
	}{
		{"no command", nil, exitSetup, "usage: svcwatch", "", false},
		{"help", []string{"help"}, exitOK, "once", "", false},
		{"unknown command", []string{"frobnicate"}, exitSetup, "", `unknown command "frobnicate"`, false},
		{"version", []string{"version"}, exitOK, "svcwatch dev", "", false},
		{"once without config", []string{"once"}, exitSetup, "", "--config FILE is required", true},
		{"once with a missing file", []string{"once", "--config", filepath.Join(dir, "nope.yaml")}, exitSetup, "", "nope.yaml", true},
		{"once with a broken config", []string{"once", "--config", bad}, exitSetup, "", `winrm.auth: "kerbros"`, true},
		{"run with a broken config", []string{"run", "--config", bad}, exitSetup, "", `winrm.auth`, true},
		{"discover with a broken config", []string{"discover", "--config", bad}, exitSetup, "", `winrm.auth`, true},
		{"check with a broken config", []string{"check", "--config", bad, "dc01"}, exitSetup, "", "winrm.auth", true},
		{"eval needs a file", []string{"eval"}, exitSetup, "", "usage: svcwatch eval", true},
		{"bad flag", []string{"once", "--nope"}, exitSetup, "", "flag provided but not defined", false},
		{"lab control must be loopback", []string{"lab", "serve", "--config-out", filepath.Join(dir, "x.yaml"), "--control", "0.0.0.0:8089"}, exitSetup, "", "loopback only", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tt.stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.stderr)
			}
			if tt.stderrLine && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("stderr is not one line:\n%s", stderr)
			}
		})
	}
}

func TestEvalCorpus(t *testing.T) {
	corpus := filepath.Join(refdata.Require(t), "corpus", "service-installs.jsonl")
	code, stdout, stderr := run(t, "eval", corpus)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "malicious types flagged ") || !strings.Contains(last, ", benign flagged ") {
		t.Fatalf("last line %q is not the summary", last)
	}
}
