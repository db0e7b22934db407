package winhost

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"
)

// MaxCommandLine is cmd.exe's command-line limit. WinRM runs commands through
// "cmd.exe /c" (WINRS_SKIP_CMD_SHELL=FALSE, what masterzen/winrm sends), so a
// longer -EncodedCommand fails on a real host with "The command line is too
// long." and so it does here.
const MaxCommandLine = 8191

// CollectorMarker is the first line of the collector body.
const CollectorMarker = "# svcwatch-collector v1"

// Run executes commandLine and returns its output; see Exec. Use Exec for
// answers that may be large (the "huge" fault) or slow.
func (h *Host) Run(commandLine string) (stdout, stderr []byte, exit int) {
	var out, errOut bytes.Buffer
	exit, err := h.Exec(context.Background(), commandLine, &out, &errOut)
	if err != nil && exit == 0 {
		exit = 1
	}
	return out.Bytes(), errOut.Bytes(), exit
}

// Exec runs commandLine as a WinRM cmd shell would on this host and streams
// its output to stdout and stderr. It understands:
//
//   - powershell.exe [-NoLogo] [-NoProfile] [-NonInteractive] [-ExecutionPolicy P]
//     [-WindowStyle W] -EncodedCommand <base64 UTF-16LE>: the svcwatch collector
//     (a script whose first line is the $W/$D/$N/$B preamble and whose second is
//     CollectorMarker), or the naive benchmark's scripts: a script mentioning
//     Get-Service / Win32_Service answers a JSON array of the services,
//     Win32_SystemDriver the drivers, Get-WinEvent / Get-EventLog a JSON array
//     of the System-log 7045/104/7040 records; both in one script answer
//     {"services": [...], "events": [...]}. Anything else fails like a
//     PowerShell error (CLIXML on stderr, exit 1).
//   - powershell.exe -Command <text>: the same recognition on the text.
//   - cmd built-ins hostname, ver, echo; other programs are "not recognized".
//
// The error is non-nil only when ctx ended first (the exit code is then 1).
func (h *Host) Exec(ctx context.Context, commandLine string, stdout, stderr io.Writer) (int, error) {
	return h.ExecInput(ctx, commandLine, strings.NewReader(""), stdout, stderr)
}

// ExecInput is Exec with the command's standard input: what WinRS Send
// delivers. Only the persistent collector (SessionBootstrap) reads it; a
// Read that blocks must return when ctx ends.
func (h *Host) ExecInput(ctx context.Context, commandLine string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	h.mu.Lock()
	h.runs++
	fault := h.fault
	delay := h.opts.SlowDelay
	h.mu.Unlock()

	if fault == FaultSlow {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return 1, ctx.Err()
		case <-t.C:
		}
	}
	if len(utf16.Encode([]rune(commandLine))) > MaxCommandLine {
		io.WriteString(stderr, "The command line is too long.\r\n")
		return 1, nil
	}
	return h.command(ctx, strings.TrimSpace(commandLine), fault, stdin, stdout, stderr)
}

func (h *Host) command(ctx context.Context, line, fault string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	prog, rest := splitArg(line)
	switch exe := programName(prog); exe {
	case "powershell", "pwsh":
		return h.powershell(ctx, rest, fault, stdin, stdout, stderr)
	case "cmd":
		flag, tail := splitArg(rest)
		for strings.EqualFold(flag, "/q") || strings.EqualFold(flag, "/d") {
			flag, tail = splitArg(tail)
		}
		if strings.EqualFold(flag, "/c") || strings.EqualFold(flag, "/k") {
			return h.command(ctx, tail, fault, stdin, stdout, stderr)
		}
		io.WriteString(stdout, "Microsoft Windows [Version 10.0.20348.2849]\r\n(c) Microsoft Corporation. All rights reserved.\r\n")
		return 0, nil
	case "hostname":
		io.WriteString(stdout, h.netbio+"\r\n")
		return 0, nil
	case "ver":
		io.WriteString(stdout, "\r\nMicrosoft Windows [Version 10.0.20348.2849]\r\n")
		return 0, nil
	case "echo":
		io.WriteString(stdout, rest+"\r\n")
		return 0, nil
	case "":
		return 0, nil
	default:
		fmt.Fprintf(stderr, "'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", prog)
		return 1, nil
	}
}

// programName turns `"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe"`
// into "powershell".
func programName(prog string) string {
	prog = strings.Trim(prog, `"`)
	if i := strings.LastIndexAny(prog, `\/`); i >= 0 {
		prog = prog[i+1:]
	}
	prog = strings.ToLower(prog)
	return strings.TrimSuffix(prog, ".exe")
}

// splitArg splits off the first whitespace-separated (optionally quoted) argument.
func splitArg(s string) (arg, rest string) {
	s = strings.TrimLeft(s, " \t")
	if strings.HasPrefix(s, `"`) {
		if end := strings.IndexByte(s[1:], '"'); end >= 0 {
			return s[:end+2], strings.TrimLeft(s[end+2:], " \t")
		}
	}
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], strings.TrimLeft(s[i:], " \t")
	}
	return s, ""
}

var errNotEncoded = errors.New("Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.")

// powershell parses powershell.exe's parameters (case-insensitive, unique
// prefixes, as powershell.exe does) and runs the script.
func (h *Host) powershell(ctx context.Context, args, fault string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	var script string
	for args != "" {
		var p string
		p, args = splitArg(args)
		name := strings.ToLower(strings.TrimLeft(p, "-/"))
		if !strings.HasPrefix(p, "-") && !strings.HasPrefix(p, "/") {
			script = strings.TrimSpace(p + " " + args) // the rest is -Command text
			break
		}
		switch {
		case name == "nologo" || name == "noprofile" || name == "noninteractive" || name == "nop" || name == "noni" || name == "sta" || name == "mta":
		case prefixOf(name, "executionpolicy", 2) || name == "ep" || prefixOf(name, "windowstyle", 1) ||
			prefixOf(name, "inputformat", 2) || prefixOf(name, "outputformat", 2):
			_, args = splitArg(args)
		case name == "e" || name == "ec" || prefixOf(name, "encodedcommand", 2):
			var enc string
			enc, args = splitArg(args)
			decoded, err := decodeEncodedCommand(enc)
			if err != nil {
				writeCLIXMLError(stderr, err.Error())
				return 1, nil
			}
			script = decoded
		case name == "c" || prefixOf(name, "command", 1):
			script = args
			if len(script) >= 2 && strings.HasPrefix(script, `"`) && strings.HasSuffix(script, `"`) && !strings.Contains(script[1:len(script)-1], `"`) {
				script = script[1 : len(script)-1] // one quoted argument, as CommandLineToArgvW reads it
			}
			args = ""
		default:
			writeCLIXMLError(stderr, fmt.Sprintf("-%s : The term '-%s' is not recognized as the name of a cmdlet, function, script file, or operable program.", name, name))
			return 1, nil
		}
	}
	if script == SessionBootstrap {
		return h.session(ctx, stdin, stdout, stderr)
	}
	return h.script(ctx, script, fault, stdout, stderr)
}

func prefixOf(name, full string, minLen int) bool {
	return len(name) >= minLen && strings.HasPrefix(full, name)
}

func decodeEncodedCommand(enc string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(raw)%2 != 0 {
		return "", errNotEncoded
	}
	units := make([]uint16, len(raw)/2)
	for i := range units {
		units[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
	}
	return string(utf16.Decode(units)), nil
}

// masterzen/winrm's Powershell() prepends this to every script.
const progressPrefix = "$ProgressPreference = 'SilentlyContinue';"

func (h *Host) script(ctx context.Context, script, fault string, stdout, stderr io.Writer) (int, error) {
	if strings.HasPrefix(script, "$W=") {
		req, err := parseCollectorScript(script)
		if err != nil {
			writeCLIXMLError(stderr, err.Error())
			return 1, nil
		}
		return h.collect(ctx, req, fault, stdout)
	}
	return h.naive(ctx, strings.TrimPrefix(script, progressPrefix), fault, stdout, stderr)
}

// writeCLIXMLError writes msg the way powershell.exe reports an error on a
// redirected stderr under WinRM: a CLIXML error record stream.
func writeCLIXMLError(w io.Writer, msg string) {
	var b strings.Builder
	b.WriteString("#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">")
	lines := []string{
		msg,
		"    + CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException",
		"    + FullyQualifiedErrorId : InvalidCollectorRequest",
		"",
	}
	for _, l := range lines {
		b.WriteString(`<S S="Error">`)
		b.WriteString(clixmlEscape(l))
		b.WriteString("_x000D__x000A_</S>")
	}
	b.WriteString("</Objs>")
	io.WriteString(w, b.String())
}

func clixmlEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r < 0x20:
			fmt.Fprintf(&b, "_x%04X_", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
