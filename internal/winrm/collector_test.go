package winrm

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	mz "github.com/masterzen/winrm"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
)

// fakeHost is a WS-Management endpoint on 127.0.0.1 that replays the real
// Windows answers in shared/wire/wsman, with a stdout the test controls.
type fakeHost struct {
	t *testing.T

	mu       sync.Mutex
	actions  []string // SOAP actions received, in order
	bodies   []string // request bodies, in order
	hosts    []string // HTTP Host headers
	commands []string // command lines received
	deleted  int
	signaled int

	create, command, receiveTpl, deleteResp, timedOut, sendResp []byte

	// behaviour knobs
	stdout        func(cmdLine string) string
	exitCode      string
	timeoutsFirst int    // TimedOut faults before the output
	faultOn       string // action that gets fault
	fault         []byte // body of that fault (HTTP 500)
	status        int    // force this HTTP status on every request
	hang          bool   // Receive never answers (until the client gives up)
	noShellID     bool
	chunk         int // stdout bytes per Stream element

	// persistent collector (protocol v2): the bootstrap command reads stdin
	session   bool     // the command was the bootstrap
	stdin     []string // lines sent, the script first
	pending   *string  // output for the last request, not yet received
	noNewline bool     // v2: the collector ends after its output, without a newline
}

const (
	actCreate  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
	actCommand = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
	actReceive = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
	actSignal  = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
	actSend    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
	actDelete  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
	realCmdID  = "CF84C20A-0A35-43FA-AF78-0B4711DA5F30"
)

func newFakeHost(t *testing.T) *fakeHost {
	w := func(name string) []byte { return readShared(t, filepath.Join("wire", "wsman", name)) }
	return &fakeHost{
		t:          t,
		create:     w("create-response.pypsrp-winrs_standard.xml"),
		command:    w("command-response.pypsrp-winrs_standard.xml"),
		receiveTpl: w("receive-response-done-exitcode0.pypsrp-winrs_standard.xml"),
		deleteResp: w("delete-response.pypsrp-winrs_standard.xml"),
		timedOut:   w("fault-timedout-2150858793.pypsrp-winrs_operation_timeout.xml"),
		sendResp:   w("send-response.pypsrp-winrs_send.xml"),
		exitCode:   "0",
		chunk:      1000,
	}
}

func soapAction(body string) string {
	i := strings.Index(body, "Action")
	if i < 0 {
		return ""
	}
	rest := body[i:]
	j, k := strings.Index(rest, ">"), strings.Index(rest, "</")
	if j < 0 || k < j {
		return ""
	}
	return rest[j+1 : k]
}

func (f *fakeHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	body := string(b)
	action := soapAction(body)
	f.mu.Lock()
	f.actions = append(f.actions, action)
	f.bodies = append(f.bodies, body)
	f.hosts = append(f.hosts, r.Host)
	status := f.status
	f.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != `CORP\svcwatch` || pass != "s3cret" {
		w.Header().Set("WWW-Authenticate", `Basic realm="WSMAN"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	if action == f.faultOn {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(f.fault)
		return
	}
	switch action {
	case actCreate:
		if f.noShellID {
			_, _ = w.Write(f.deleteResp)
			return
		}
		_, _ = w.Write(f.create)
	case actCommand:
		i := strings.Index(body, "<![CDATA[")
		j := strings.Index(body, "]]>")
		f.mu.Lock()
		if i >= 0 && j > i {
			f.commands = append(f.commands, body[i+9:j])
			f.session = body[i+9:j] == sessionCommand
		}
		f.mu.Unlock()
		_, _ = w.Write(f.command)
	case actSend:
		m := sendStreamRE.FindStringSubmatch(body)
		if m == nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		data, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for _, line := range strings.SplitAfter(string(data), "\n") {
			if line == "" {
				continue
			}
			f.mu.Lock()
			f.stdin = append(f.stdin, line)
			request := len(f.stdin) > 1
			f.mu.Unlock()
			if request && f.stdout != nil {
				out := f.stdout(strings.TrimSuffix(line, "\n"))
				f.mu.Lock()
				f.pending = &out
				f.mu.Unlock()
			}
		}
		_, _ = w.Write(f.sendResp)
	case actReceive:
		f.mu.Lock()
		pending := f.timeoutsFirst
		if pending > 0 {
			f.timeoutsFirst--
		}
		cmd := ""
		if len(f.commands) > 0 {
			cmd = f.commands[len(f.commands)-1]
		}
		session, output := f.session, f.pending
		if pending == 0 && !f.hang {
			f.pending = nil
		}
		f.mu.Unlock()
		if f.hang {
			<-r.Context().Done()
			return
		}
		if pending > 0 {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(f.timedOut)
			return
		}
		if session {
			if output == nil {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write(f.timedOut)
				return
			}
			if f.exitCode != "0" || f.noNewline {
				_, _ = w.Write(f.receive(*output))
				return
			}
			_, _ = w.Write(f.receiveRunning(*output + "\n"))
			return
		}
		_, _ = w.Write(f.receive(f.stdout(cmd)))
	case actSignal:
		f.mu.Lock()
		f.signaled++
		f.mu.Unlock()
		_, _ = w.Write(f.deleteResp)
	case actDelete:
		f.mu.Lock()
		f.deleted++
		f.mu.Unlock()
		_, _ = w.Write(f.deleteResp)
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

// receive builds a Done answer from the real capture, with stdout split
// into several Stream elements.
func (f *fakeHost) receive(stdout string) []byte {
	tpl := string(f.receiveTpl)
	one := `<rsp:Stream Name="stdout" CommandId="` + realCmdID + `">aGkNCg==</rsp:Stream>`
	if !strings.Contains(tpl, one) {
		f.t.Fatalf("receive template changed")
	}
	var streams strings.Builder
	for len(stdout) > 0 {
		n := min(f.chunk, len(stdout))
		streams.WriteString(strings.Replace(one, "aGkNCg==", base64.StdEncoding.EncodeToString([]byte(stdout[:n])), 1))
		stdout = stdout[n:]
	}
	out := strings.Replace(tpl, one, streams.String(), 1)
	out = strings.Replace(out, "<rsp:ExitCode>0</rsp:ExitCode>", "<rsp:ExitCode>"+f.exitCode+"</rsp:ExitCode>", 1)
	return []byte(out)
}

var sendStreamRE = regexp.MustCompile(`<rsp:Stream[^>]*Name="stdin"[^>]*>([A-Za-z0-9+/=]*)</rsp:Stream>`)

// receiveRunning is receive with the command still running, as Windows
// answers a Receive while the process lives (receive-response-running).
func (f *fakeHost) receiveRunning(stdout string) []byte {
	out := string(f.receive(stdout))
	for _, end := range []string{
		`<rsp:Stream Name="stdout" CommandId="` + realCmdID + `" End="true"></rsp:Stream>`,
		`<rsp:Stream Name="stderr" CommandId="` + realCmdID + `" End="true"></rsp:Stream>`,
	} {
		out = strings.Replace(out, end, "", 1)
	}
	done := `State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>`
	if !strings.Contains(out, done) {
		f.t.Fatalf("receive template changed")
	}
	return []byte(strings.Replace(out, done, `State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"></rsp:CommandState>`, 1))
}

func (f *fakeHost) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.actions {
		if a == action {
			n++
		}
	}
	return n
}

// startTLS serves f on 127.0.0.1 over HTTPS and returns a config that reaches
// it through connect_to, verifying its certificate with ca_file.
func startTLS(t *testing.T, f *fakeHost) config.WinRM {
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS failures are the point of some tests
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.WinRM{
		Scheme: "https", Port: 5986, Auth: "basic", Username: `CORP\svcwatch`,
		CAFile: caFile, TLSServerName: "example.com", // httptest's certificate names example.com
		ConnectTo: srv.Listener.Addr().String(), Timeout: 5 * time.Second,
	}
}

// answerFor plays the host: it reads the preamble of the command it got
// (v1), or the request line (v2).
func answerFor(t *testing.T) func(string) string {
	return func(cmd string) string {
		if !strings.HasPrefix(cmd, "powershell") {
			if cmd != "41 0 100 3600" {
				t.Errorf("request line %q, want 41 0 100 3600", cmd)
			}
			return string(encode(t, validAnswerWith(42)))
		}
		script := decodeCommandString(t, cmd)
		if !strings.HasPrefix(script, "$W=41;$D='0';$N=100;$B=3600;\n# svcwatch-collector v1\n") {
			t.Errorf("unexpected script start %q", script[:min(80, len(script))])
		}
		return string(encode(t, validAnswerWith(42)))
	}
}

func decodeCommandString(t *testing.T, cmd string) string {
	return decodeCommand(t, cmd)
}

func validAnswerWith(rec uint64) map[string]any {
	a := validAnswer()
	a["events"].([]any)[0].(map[string]any)["rec"] = rec
	return a
}

var pollReq = inventory.CollectRequest{Watermark: 41, Lookback: time.Hour, MaxEvents: 100}

// sessionModes: every collector test runs in both protocols.
var sessionModes = []string{SessionPerPoll, SessionShell, SessionPersistent}

func TestCollectOverHTTPSWithRealAnswers(t *testing.T) {
	for _, mode := range sessionModes {
		t.Run(mode, func(t *testing.T) { testCollectOverHTTPSWithRealAnswers(t, mode) })
	}
}

func testCollectOverHTTPSWithRealAnswers(t *testing.T, mode string) {
	f := newFakeHost(t)
	f.stdout = answerFor(t)
	f.timeoutsFirst = 2 // Windows' TimedOut fault on Receive: keep receiving
	cfg := startTLS(t, f)
	cfg.Session = mode
	c, err := New(cfg, "s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	obs, err := c.Collect(context.Background(), inventory.Host{Name: "DC01.corp.example"}, pollReq)
	if err != nil {
		t.Fatal(err)
	}
	if obs.Host != "dc01.corp.example" || len(obs.Events) != 1 || obs.Events[0].RecordID != 42 || len(obs.Services) != 1 {
		t.Fatalf("observation %+v", obs)
	}
	if got := f.count(actReceive); got != 3 {
		t.Errorf("%d receives, want 3 (two TimedOut faults, then the output)", got)
	}
	wantDeleted := map[string]int{SessionPerPoll: 1, SessionShell: 0, SessionPersistent: 0}[mode] // a kept shell stays until Close
	if got := f.count(actDelete); got != wantDeleted {
		t.Errorf("%d shell deletes, want %d", got, wantDeleted)
	}
	for _, h := range f.hosts {
		if h != "dc01.corp.example:5986" {
			t.Errorf("Host header %q, want the target name, not the connect_to address", h)
		}
	}
	// Per-collector parameters (never masterzen's shared DefaultParameters):
	// OperationTimeout is half of winrm.timeout, so a Receive returns in time.
	if !strings.Contains(f.bodies[0], ">PT2S<") || !strings.Contains(f.bodies[0], ">153600<") {
		t.Errorf("create request lacks OperationTimeout PT2S / MaxEnvelopeSize 153600:\n%s", f.bodies[0])
	}
	if mz.DefaultParameters.Timeout != "PT60S" || mz.DefaultParameters.TransportDecorator != nil {
		t.Errorf("masterzen's DefaultParameters were modified: %+v", mz.DefaultParameters)
	}
	// A second poll reuses the collector (and, shell and persistent, the shell).
	if _, err := c.Collect(context.Background(), inventory.Host{Name: "dc01.corp.example"}, pollReq); err != nil {
		t.Fatal(err)
	}
	wantCreates := map[string]int{SessionPerPoll: 2, SessionShell: 1, SessionPersistent: 1}[mode]
	if got := f.count(actCreate); got != wantCreates {
		t.Errorf("%d shells created for 2 polls, want %d", got, wantCreates)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := f.count(actDelete); got != f.count(actCreate) {
		t.Errorf("after Close: %d shells deleted of %d created", got, f.count(actCreate))
	}
}

func TestCollectErrors(t *testing.T) {
	w := func(t *testing.T, name string) []byte { return readShared(t, filepath.Join("wire", "wsman", name)) }
	tests := []struct {
		name       string
		setup      func(t *testing.T, f *fakeHost, cfg *config.WinRM)
		want       error
		wantDelete int
		wantText   string
	}{
		{name: "quota on create", want: ErrQuota, wantDelete: 0, wantText: "back off", setup: func(t *testing.T, f *fakeHost, _ *config.WinRM) {
			f.faultOn, f.fault = actCreate, w(t, "fault-quotalimit-2150859173-max-shells.winrb-wmi_error_v2.xml")
		}},
		{name: "access denied on command", want: ErrAccessDenied, wantDelete: 1, wantText: "Event Log Readers", setup: func(t *testing.T, f *fakeHost, _ *config.WinRM) {
			f.faultOn, f.fault = actCommand, []byte(accessDeniedFault)
		}},
		{name: "max operations on receive", want: ErrQuota, wantDelete: 1, setup: func(t *testing.T, f *fakeHost, _ *config.WinRM) {
			f.faultOn, f.fault = actReceive, w(t, "fault-internalerror-wmierror-2150859174-max-operations.pywinrm-test_exceptions.xml")
		}},
		{name: "shell gone on receive", want: ErrShellNotFound, wantDelete: 1, setup: func(t *testing.T, f *fakeHost, _ *config.WinRM) {
			f.faultOn, f.fault = actReceive, w(t, "fault-invalidselectors-2150858843-unknown-command.pypsrp-winrs_bad_cmd_id.xml")
		}},
		{name: "command too long", want: ErrCommandTooLong, wantDelete: 1, setup: func(t *testing.T, f *fakeHost, _ *config.WinRM) {
			f.faultOn, f.fault = actCommand, w(t, "fault-internalerror-2147942606-filename-too-long.masterzen-fixture.xml")
		}},
		{name: "wrong password", want: ErrAuth, wantDelete: 0, setup: func(t *testing.T, f *fakeHost, cfg *config.WinRM) {
			cfg.Username = `CORP\other`
		}},
		{name: "no shell id", want: ErrProtocol, wantDelete: 0, setup: func(t *testing.T, f *fakeHost, _ *config.WinRM) { f.noShellID = true }},
		{name: "garbage output", want: ErrProtocol, wantDelete: 1, setup: func(t *testing.T, f *fakeHost, _ *config.WinRM) {
			f.stdout = func(string) string { return "#< CLIXML\r\n<Objs>" }
		}},
		{name: "truncated output", want: ErrProtocol, wantDelete: 1, setup: func(t *testing.T, f *fakeHost, _ *config.WinRM) {
			f.stdout = func(string) string { s := string(encode(t, validAnswerWith(42))); return s[:len(s)/2] }
		}},
		{name: "script failed", want: ErrScript, wantDelete: 1, wantText: "exit code 1", setup: func(t *testing.T, f *fakeHost, _ *config.WinRM) {
			f.exitCode = "1"
			f.stdout = func(string) string { return "" }
		}},
		{name: "huge output", want: ErrOutputTooLarge, wantDelete: 1, setup: func(t *testing.T, f *fakeHost, cfg *config.WinRM) {
			cfg.MaxOutputBytes = 4096
			f.chunk = 1000
			f.stdout = func(string) string { return strings.Repeat("x", 20000) }
		}},
		{name: "deadline while receiving", want: ErrTimeout, wantDelete: 1, setup: func(t *testing.T, f *fakeHost, cfg *config.WinRM) {
			cfg.Timeout = 300 * time.Millisecond
			f.hang = true
		}},
		{name: "not WS-Management", want: ErrProtocol, wantDelete: 0, setup: func(t *testing.T, f *fakeHost, _ *config.WinRM) { f.status = http.StatusNotFound }},
	}
	for _, mode := range sessionModes {
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) { testCollectError(t, mode, tt.setup, tt.want, tt.wantDelete, tt.wantText) })
		}
	}
}

func testCollectError(t *testing.T, mode string, setup func(t *testing.T, f *fakeHost, cfg *config.WinRM), want error, wantDelete int, wantText string) {
	f := newFakeHost(t)
	f.stdout = answerFor(t)
	f.noNewline = true // v2: a collector that ends mid-answer
	cfg := startTLS(t, f)
	cfg.Session = mode
	setup(t, f, &cfg)
	c, err := New(cfg, "s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Collect(context.Background(), inventory.Host{Name: "dc02.corp.example"}, pollReq)
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	if !strings.HasPrefix(err.Error(), "dc02.corp.example: ") {
		t.Errorf("error does not start with the host: %v", err)
	}
	if wantText != "" && !strings.Contains(err.Error(), wantText) {
		t.Errorf("error does not say %q: %v", wantText, err)
	}
	if time.Since(start) > 4*time.Second {
		t.Errorf("took %s", time.Since(start))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deleted != wantDelete {
		t.Errorf("%d shell deletes, want %d (actions %v)", f.deleted, wantDelete, f.actions)
	}
}

func TestCollectCancelledDeletesShell(t *testing.T) {
	for _, mode := range sessionModes {
		t.Run(mode, func(t *testing.T) { testCollectCancelledDeletesShell(t, mode) })
	}
}

func testCollectCancelledDeletesShell(t *testing.T, mode string) {
	f := newFakeHost(t)
	f.hang = true
	cfg := startTLS(t, f)
	cfg.Session = mode
	c, err := New(cfg, "s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for f.count(actReceive) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	_, err = c.Collect(ctx, inventory.Host{Name: "dc03.corp.example"}, pollReq)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if f.count(actDelete) != 1 || f.count(actSignal) != 1 {
		t.Errorf("after cancel: %d deletes, %d signals; want 1 and 1", f.count(actDelete), f.count(actSignal))
	}
}

func TestNewRefusesInsecure(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.WinRM
		want string
	}{
		{"basic over http", config.WinRM{Scheme: "http", Auth: "basic", Username: "u"}, "clear text"},
		{"kerberos over http", config.WinRM{Scheme: "http", Auth: "kerberos", Username: "u"}, "message encryption"},
		{"certificate over http", config.WinRM{Scheme: "http", Auth: "certificate", AllowInsecure: true}, "https"},
		{"unknown scheme", config.WinRM{Scheme: "ftp", Auth: "ntlm", Username: "u"}, "https or http"},
		{"unknown auth", config.WinRM{Scheme: "https", Auth: "digest", Username: "u"}, "want ntlm"},
		{"ntlm without user", config.WinRM{Scheme: "https", Auth: "ntlm"}, "username"},
		{"bad connect_to", config.WinRM{Scheme: "https", Auth: "ntlm", Username: "u", ConnectTo: "nohost"}, "connect_to"},
		{"certificate without files", config.WinRM{Scheme: "https", Auth: "certificate"}, "cert_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, "pw", nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
	var logs strings.Builder
	logger := newTestLogger(&logs)
	if _, err := New(config.WinRM{Scheme: "http", Auth: "basic", Username: "u", AllowInsecure: true}, "pw", logger); err != nil {
		t.Fatal(err)
	}
	if _, err := New(config.WinRM{Scheme: "https", Auth: "ntlm", Username: "u", InsecureSkipVerify: true}, "pw", logger); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "NOT encrypted") || !strings.Contains(logs.String(), "NOT verified") {
		t.Errorf("no warnings logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), "pw") {
		t.Errorf("password in the log: %s", logs.String())
	}
	// http + ntlm is sealed: accepted without allow_insecure.
	if _, err := New(config.WinRM{Scheme: "http", Auth: "ntlm", Username: `CORP\u`}, "pw", nil); err != nil {
		t.Fatalf("http+ntlm (sealed): %v", err)
	}
}

func TestCollectRejectsHostileHostNames(t *testing.T) {
	c, err := New(config.WinRM{Scheme: "https", Auth: "basic", Username: "u"}, "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "dc01/../x", "dc01:5985", "evil host", "dc01.corp.example@attacker", strings.Repeat("a", 64) + ".corp"} {
		if _, err := c.Collect(context.Background(), inventory.Host{Name: name}, pollReq); err == nil || !strings.Contains(err.Error(), "host name") {
			t.Errorf("%q: got %v", name, err)
		}
	}
}

func TestCollectUnreachable(t *testing.T) {
	f := newFakeHost(t)
	good := startTLS(t, f)
	for _, auth := range []string{"basic", "ntlm"} {
		tests := []struct {
			name string
			mod  func(c *config.WinRM)
			text string
		}{
			{"closed port", func(c *config.WinRM) { c.ConnectTo = "127.0.0.1:1" }, "connect"},
			{"certificate for another name", func(c *config.WinRM) { c.TLSServerName = "dc09.corp.example" }, "certificate"},
			{"unknown CA", func(c *config.WinRM) { c.CAFile = "" }, "certificate"},
		}
		for _, tt := range tests {
			t.Run(auth+"/"+tt.name, func(t *testing.T) {
				cfg := good
				cfg.Auth = auth
				tt.mod(&cfg)
				c, err := New(cfg, "s3cret", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_, err = c.Collect(context.Background(), inventory.Host{Name: "dc01.corp.example"}, pollReq)
				if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), tt.text) {
					t.Fatalf("got %v, want ErrUnreachable saying %q", err, tt.text)
				}
			})
		}
	}
}

func TestCollectIgnoresMalformedStoredDigest(t *testing.T) {
	for _, mode := range sessionModes {
		t.Run(mode, func(t *testing.T) { testCollectIgnoresMalformedStoredDigest(t, mode) })
	}
}

func testCollectIgnoresMalformedStoredDigest(t *testing.T, mode string) {
	f := newFakeHost(t)
	var script string
	f.stdout = func(cmd string) string {
		if mode == SessionPersistent {
			script = cmd
		} else {
			script = decodeCommand(t, cmd)
		}
		return string(encode(t, validAnswerWith(42)))
	}
	cfg := startTLS(t, f)
	cfg.Session = mode
	c, err := New(cfg, "s3cret", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := pollReq
	req.Digest = "'; Remove-Item -Recurse C:\\ ; '"
	if _, err := c.Collect(context.Background(), inventory.Host{Name: "dc01.corp.example"}, req); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{SessionPerPoll: "$W=41;$D='0';", SessionPersistent: "41 0 100 3600"}[mode]
	if !strings.HasPrefix(script, want) || strings.Contains(script, "Remove-Item") {
		t.Fatalf("script starts %q", script[:min(60, len(script))])
	}
}
