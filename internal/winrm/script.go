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

// Protocol version 2: the persistent collector (docs/internals.md).

// sessionSource is the v2 request loop; it calls the function C, whose body
// is the v1 collection (collector.ps1 without its version line).
//
//go:embed session.ps1
var sessionSource string

const (
	collectorV2Line = "# svcwatch-collector v2"
	// sessionBootstrap reads one base64 line from stdin, decodes it as UTF-8
	// and runs it. It is fixed text: nothing is ever interpolated into it.
	sessionBootstrap = `$l=[Console]::In.ReadLine();if($l){iex ([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($l)))}`
	// sessionCommand is the command line of a persistent collector.
	sessionCommand = `powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "` + sessionBootstrap + `"`
)

// sessionBody is the v2 script: its version line, the v1 collection as the
// function C($W,$D,$N,$B), then the loop of session.ps1, minified.
var sessionBody = buildSessionBody()

func buildSessionBody() string {
	v1 := strings.TrimPrefix(collectorBody, collectorVersionLine+"\n")
	loop := minifyPowerShell(sessionSource)
	loop = strings.TrimPrefix(loop, collectorV2Line+"\n")
	return collectorV2Line + "\nfunction C($W,$D,$N,$B){\n" + v1 + "}\n" + loop
}

// sessionScriptLine is the stdin line that starts a session: the v2 script
// as base64 of UTF-8, then a newline.
func sessionScriptLine() []byte {
	return []byte(base64.StdEncoding.EncodeToString([]byte(sessionBody)) + "\n")
}

// requestLine renders one v2 request, "W D N B\n", from validated values
// (the same checks as the v1 preamble).
func requestLine(req collectRequest) ([]byte, error) {
	if _, err := preamble(req); err != nil {
		return nil, err
	}
	digest := req.Digest
	if digest == "" {
		digest = "0"
	}
	return []byte(strconv.FormatUint(req.Watermark, 10) + " " + digest + " " +
		strconv.Itoa(req.MaxEvents) + " " + strconv.FormatInt(int64(req.Lookback/time.Second), 10) + "\n"), nil
}
