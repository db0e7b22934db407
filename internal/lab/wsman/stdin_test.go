package wsman

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/svcwatch/svcwatch/internal/lab/winhost"
)

const sessionCommandLine = `powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "` + winhost.SessionBootstrap + `"`

func (l *lab) send(t *testing.T, host, shellID, cmdID string, data string, eof bool) {
	t.Helper()
	st, body := l.post(t, host, winrm.NewSendInputRequest(endpointURL, shellID, cmdID, []byte(data), eof, params).String())
	if st != 200 || !strings.Contains(body, "SendResponse") {
		t.Fatalf("send: %d %s", st, body)
	}
}

// receiveUntil receives until stdout holds a newline or the command is done.
func (l *lab) receiveUntil(t *testing.T, host, shellID, cmdID string) (stdout, stderr string, done bool, exit int) {
	t.Helper()
	var out, errOut bytes.Buffer
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, body := l.post(t, host, winrm.NewGetOutputRequest(endpointURL, shellID, cmdID, "stdout stderr", params).String())
		if st != 200 {
			if strings.Contains(body, "TimedOut") {
				continue
			}
			t.Fatalf("receive: %d %s", st, body)
		}
		d, code, err := winrm.ParseSlurpOutputErrResponse(body, &out, &errOut)
		if err != nil {
			t.Fatal(err)
		}
		if d || strings.Contains(out.String(), "\n") {
			return out.String(), errOut.String(), d, code
		}
	}
	t.Fatal("no answer within 10s")
	return
}

func scriptLine(firstLine string) string {
	return base64.StdEncoding.EncodeToString([]byte(firstLine+"\nfunction C($W,$D,$N,$B){}\n")) + "\n"
}

// TestPersistentCollectorOverStdin: the bootstrap runs, waits for stdin,
// answers each request line as it comes and ends when stdin ends.
func TestPersistentCollectorOverStdin(t *testing.T) {
	l := newLab(t, false)
	h := l.hosts["dc01.lab.example"]
	shellID, _ := l.createShell(t, "dc01.lab.example")
	cmdID, _ := l.startCommand(t, "dc01.lab.example", shellID, sessionCommandLine)
	// Split the script over two Sends: stdin is a stream, not messages.
	sl := scriptLine(winhost.CollectorMarkerV2)
	l.send(t, "dc01.lab.example", shellID, cmdID, sl[:10], false)
	l.send(t, "dc01.lab.example", shellID, cmdID, sl[10:], false)

	var digest string
	for i, apply := range []string{"", "psexec"} {
		if apply != "" {
			if err := h.Apply(apply); err != nil {
				t.Fatal(err)
			}
		}
		req := winhost.CollectRequest{Digest: "0", MaxEvents: 100, Lookback: 86400}
		if digest != "" {
			req.Digest = digest
		}
		l.send(t, "dc01.lab.example", shellID, cmdID, req.RequestLine()+"\n", false)
		out, errOut, done, _ := l.receiveUntil(t, "dc01.lab.example", shellID, cmdID)
		if done || errOut != "" {
			t.Fatalf("request %d: the collector ended (stderr %q)", i, errOut)
		}
		if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
			t.Fatalf("request %d: answer is not one line: %q", i, out[:min(100, len(out))])
		}
		var a struct {
			Digest  string `json:"digest"`
			Changed bool   `json:"changed"`
		}
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatal(err)
		}
		if !a.Changed || a.Digest != h.Digest() {
			t.Errorf("request %d: changed %v digest %s, want changed and %s", i, a.Changed, a.Digest, h.Digest())
		}
		digest = a.Digest
	}
	if st := l.srv.Stats("dc01.lab.example"); st.Commands != 1 || st.ShellsCreated != 1 {
		t.Errorf("two requests took %d commands in %d shells, want 1 and 1", st.Commands, st.ShellsCreated)
	}
	l.send(t, "dc01.lab.example", shellID, cmdID, "", true) // End: the session ends
	_, _, done, exit := l.receiveUntil(t, "dc01.lab.example", shellID, cmdID)
	if !done || exit != 0 {
		t.Errorf("after End: done %v exit %d, want done with 0", done, exit)
	}
}

func TestPersistentCollectorRefuses(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		stderr string
	}{
		{"v1 script", scriptLine(winhost.CollectorMarker), "does not start with"},
		{"not base64", "$W=1; Remove-Item C:\\\n", "FromBase64String"},
		{"interpolated request", scriptLine(winhost.CollectorMarkerV2) + "1 0'; Remove-Item C:\\ ;' 100 0\n", "bad request line"},
		{"out of range", scriptLine(winhost.CollectorMarkerV2) + "1 0 10001 0\n", "out of range"},
		{"watermark above int64", scriptLine(winhost.CollectorMarkerV2) + "9999999999999999999 0 10 0\n", "bad request line"},
		{"upper-case digest", scriptLine(winhost.CollectorMarkerV2) + "1 " + strings.Repeat("AB", 32) + " 10 0\n", "bad request line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, false)
			shellID, _ := l.createShell(t, "dc01.lab.example")
			cmdID, _ := l.startCommand(t, "dc01.lab.example", shellID, sessionCommandLine)
			l.send(t, "dc01.lab.example", shellID, cmdID, tt.input, false)
			out, errOut, done, exit := l.receiveUntil(t, "dc01.lab.example", shellID, cmdID)
			if !done || exit != 1 || out != "" || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("done %v exit %d stdout %q stderr %q; want exit 1 saying %q", done, exit, out, errOut, tt.stderr)
			}
		})
	}
}

// TestPersistentCollectorTerminate: a Signal ends a collector that waits
// for stdin; a Delete ends it too and frees the shell.
func TestPersistentCollectorTerminate(t *testing.T) {
	l := newLab(t, false)
	shellID, _ := l.createShell(t, "dc01.lab.example")
	cmdID, _ := l.startCommand(t, "dc01.lab.example", shellID, sessionCommandLine)
	st, body := l.post(t, "dc01.lab.example", winrm.NewSignalRequest(endpointURL, shellID, cmdID, params).String())
	if st != 200 {
		t.Fatalf("signal: %d %s", st, body)
	}
	_, _, done, exit := l.receiveUntil(t, "dc01.lab.example", shellID, cmdID)
	if !done || exit != exitTerminated {
		t.Errorf("after terminate: done %v exit %d", done, exit)
	}
	shell2, _ := l.createShell(t, "dc01.lab.example")
	l.startCommand(t, "dc01.lab.example", shell2, sessionCommandLine)
	if st, body := l.post(t, "dc01.lab.example", winrm.NewDeleteShellRequest(endpointURL, shell2, params).String()); st != 200 {
		t.Fatalf("delete: %d %s", st, body)
	}
	if st, body := l.post(t, "dc01.lab.example", winrm.NewDeleteShellRequest(endpointURL, shellID, params).String()); st != 200 {
		t.Fatalf("delete: %d %s", st, body)
	}
	if n := l.srv.OpenShells("dc01.lab.example"); n != 0 {
		t.Errorf("%d shells open", n)
	}
}
