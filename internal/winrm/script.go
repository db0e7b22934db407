package winrm

import (
	_ "embed"
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// collectorSource is the readable collector; collectorBody is what is sent.
//
//go:embed collector.ps1
var collectorSource string

// collectorBody is collectorSource without whole-line comments (except the
// version line), blank lines and indentation: the encoded command must fit
// cmd.exe's 8191-character command line.
var collectorBody = minifyPowerShell(collectorSource)

const (
	collectorVersionLine = "# svcwatch-collector v1"
	// maxCommandLine is cmd.exe's limit; WinRS runs the command through cmd.
	maxCommandLine = 8191
	maxEventsLimit = 10000
	maxLookback    = 365 * 24 * time.Hour
	commandPrefix  = "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "
)

func minifyPowerShell(src string) string {
	var b strings.Builder
	for i, line := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || (i > 0 && strings.HasPrefix(line, "#")) {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// preamble renders the four request values the script reads. Only integers
// and validated hex reach the script: nothing from a host or AD.
func preamble(req collectRequest) (string, error) {
	if req.Watermark > math.MaxInt64 {
		return "", fmt.Errorf("watermark %d is above 2^63-1, which PowerShell cannot read as a [long]", req.Watermark)
	}
	if req.Digest != "" && !isDigest(req.Digest) {
		return "", fmt.Errorf("previous digest %q is not 64 lower-case hex characters", req.Digest)
	}
	if req.MaxEvents < 1 || req.MaxEvents > maxEventsLimit {
		return "", fmt.Errorf("max events %d is outside 1..%d", req.MaxEvents, maxEventsLimit)
	}
	if req.Lookback < 0 || req.Lookback > maxLookback {
		return "", fmt.Errorf("look-back %s is outside 0..%s", req.Lookback, maxLookback)
	}
	digest := req.Digest
	if digest == "" {
		digest = "0" // no previous digest: never equal to a real one
	}
	return "$W=" + strconv.FormatUint(req.Watermark, 10) +
		";$D='" + digest +
		"';$N=" + strconv.Itoa(req.MaxEvents) +
		";$B=" + strconv.FormatInt(int64(req.Lookback/time.Second), 10) + ";", nil
}

// isDigest reports whether s is exactly 64 lower-case hex characters.
func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// collectRequest is inventory.CollectRequest with defaults applied.
type collectRequest struct {
	Watermark uint64
	Digest    string
	Lookback  time.Duration
	MaxEvents int
}

// Script returns the full collector script (preamble and body) for a request.
func script(req collectRequest) (string, error) {
	pre, err := preamble(req)
	if err != nil {
		return "", err
	}
	return pre + "\n" + collectorBody, nil
}

// commandLine is the one command run per poll: the script as a PowerShell
// -EncodedCommand (base64 of UTF-16LE).
func commandLine(req collectRequest) (string, error) {
	s, err := script(req)
	if err != nil {
		return "", err
	}
	u := utf16.Encode([]rune(s))
	raw := make([]byte, 2*len(u))
	for i, c := range u {
		raw[2*i] = byte(c)
		raw[2*i+1] = byte(c >> 8)
	}
	cmd := commandPrefix + base64.StdEncoding.EncodeToString(raw)
	if len(cmd) > maxCommandLine {
		return "", fmt.Errorf("collector command line is %d characters, above cmd.exe's %d (a build defect: shrink collector.ps1)", len(cmd), maxCommandLine)
	}
	return cmd, nil
}
