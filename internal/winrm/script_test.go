package winrm

import (
	"encoding/base64"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
)

func decodeCommand(t *testing.T, cmd string) string {
	t.Helper()
	if !strings.HasPrefix(cmd, commandPrefix) {
		t.Fatalf("command does not start with %q", commandPrefix)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(cmd, commandPrefix))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw)%2 != 0 {
		t.Fatal("odd UTF-16LE length")
	}
	u := make([]uint16, len(raw)/2)
	for i := range u {
		u[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
	}
	return string(utf16.Decode(u))
}

func TestCommandLineFitsCmdExe(t *testing.T) {
	// The largest preamble possible: every value at its bound.
	req := collectRequest{Watermark: math.MaxInt64, Digest: strings.Repeat("f", 64), MaxEvents: maxEventsLimit, Lookback: maxLookback}
	cmd, err := commandLine(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmd) > maxCommandLine {
		t.Fatalf("command line is %d characters, cmd.exe allows %d", len(cmd), maxCommandLine)
	}
	t.Logf("command line %d characters (limit %d), script body %d characters, source %d bytes", len(cmd), maxCommandLine, len(collectorBody), len(collectorSource))
}

func TestCommandLineRoundTrip(t *testing.T) {
	req := collectRequest{Watermark: 5230, Digest: strings.Repeat("ab", 32), MaxEvents: 500, Lookback: 24 * time.Hour}
	cmd, err := commandLine(req)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeCommand(t, cmd)
	want := "$W=5230;$D='" + strings.Repeat("ab", 32) + "';$N=500;$B=86400;\n" + collectorVersionLine + "\n"
	if !strings.HasPrefix(got, want) {
		t.Fatalf("script starts %q, want %q", got[:min(len(got), 200)], want)
	}
	if strings.Count(got, "\n# ") != 1 {
		t.Errorf("minified script still has comment lines besides the version line")
	}
	if !strings.HasPrefix(collectorSource, collectorVersionLine+"\n") {
		t.Errorf("collector.ps1 must start with %q", collectorVersionLine)
	}
}

func TestPreambleRejectsUntrustedValues(t *testing.T) {
	ok := collectRequest{MaxEvents: 10}
	tests := []struct {
		name string
		mod  func(*collectRequest)
	}{
		{"quote injection", func(r *collectRequest) { r.Digest = "'; Remove-Item C:\\ -Recurse; '" }},
		{"rm", func(r *collectRequest) { r.Digest = "'; rm" }},
		{"upper-case hex", func(r *collectRequest) { r.Digest = strings.Repeat("AB", 32) }},
		{"63 hex", func(r *collectRequest) { r.Digest = strings.Repeat("a", 63) }},
		{"65 hex", func(r *collectRequest) { r.Digest = strings.Repeat("a", 65) }},
		{"64 with newline", func(r *collectRequest) { r.Digest = strings.Repeat("a", 63) + "\n" }},
		{"watermark above int64", func(r *collectRequest) { r.Watermark = math.MaxInt64 + 1 }},
		{"zero events", func(r *collectRequest) { r.MaxEvents = 0 }},
		{"too many events", func(r *collectRequest) { r.MaxEvents = maxEventsLimit + 1 }},
		{"negative lookback", func(r *collectRequest) { r.Lookback = -time.Second }},
		{"lookback over a year", func(r *collectRequest) { r.Lookback = maxLookback + time.Second }},
	}
	if _, err := preamble(ok); err != nil {
		t.Fatalf("valid request rejected: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.mod(&r)
			if p, err := preamble(r); err == nil {
				t.Fatalf("accepted, preamble %q", p)
			}
			if _, err := commandLine(r); err == nil {
				t.Fatal("commandLine accepted it")
			}
		})
	}
}

func TestMinifyKeepsStatements(t *testing.T) {
	src := "# svcwatch-collector v1\n# comment\n  $a=1 # trailing stays\n\n\t\tif($a){\r\n    # inner\n    $b='#not a comment'\n}\n"
	got := minifyPowerShell(src)
	want := "# svcwatch-collector v1\n$a=1 # trailing stays\nif($a){\n$b='#not a comment'\n}\n"
	if got != want {
		t.Fatalf("minify:\n%q\nwant\n%q", got, want)
	}
	if strings.Contains(collectorSource, "@'") || strings.Contains(collectorSource, "@\"") || strings.Contains(collectorSource, "<#") {
		t.Fatal("collector.ps1 must not use here-strings or block comments: minify is line-based")
	}
}

// TestPowerShellSyntax parses collector.ps1, and the minified script that is
// actually sent, with the tree-sitter PowerShell grammar (tools/pscheck).
func TestPowerShellSyntax(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the PowerShell syntax check (make pscheck installs it)")
	}
	tool, err := filepath.Abs(filepath.Join("..", "..", "tools", "pscheck"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tool, "node_modules", "web-tree-sitter")); err != nil {
		t.Skip("tools/pscheck/node_modules is missing: run (cd tools/pscheck && npm ci) to enable the PowerShell syntax check")
	}
	sent, err := script(collectRequest{Watermark: 1, MaxEvents: 1})
	if err != nil {
		t.Fatal(err)
	}
	sentFile := filepath.Join(t.TempDir(), "sent.ps1")
	if err := os.WriteFile(sentFile, []byte(sent), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "broken.ps1")
	if err := os.WriteFile(broken, []byte("$x=@(1,2\nif($x){\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, filepath.Join(tool, "pscheck.js"), "collector.ps1", sentFile, broken).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("pscheck: want exit status 1 (the broken script), got %v\n%s", err, out)
	}
	for _, f := range []string{"collector.ps1", sentFile} {
		if !strings.Contains(string(out), f+": ok") {
			t.Errorf("pscheck found syntax errors in %s:\n%s", f, out)
		}
	}
	// The checker must be able to fail.
	if !strings.Contains(string(out), broken+":1:") && !strings.Contains(string(out), broken+":2:") {
		t.Errorf("pscheck did not report the broken script's errors:\n%s", out)
	}
}
