package wsman

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/svcwatch/svcwatch/internal/lab/winhost"
	"github.com/svcwatch/svcwatch/internal/refdata"
)

// lab is a test world: hosts behind a Server on an httptest listener.
type lab struct {
	hosts map[string]*winhost.Host
	srv   *Server
	ts    *httptest.Server
}

func newLab(t *testing.T, tls bool, opts ...Option) *lab {
	t.Helper()
	l := &lab{hosts: map[string]*winhost.Host{}}
	for _, name := range []string{"dc01.lab.example", "srv01.lab.example"} {
		l.hosts[name] = winhost.New(name, winhost.Options{Small: true, Role: winhost.RoleDC, SlowDelay: time.Minute})
	}
	var mu sync.Mutex
	l.srv = NewServer(ResolverFunc(func(name string) (*winhost.Host, bool) {
		mu.Lock()
		defer mu.Unlock()
		h, ok := l.hosts[name]
		return h, ok
	}), opts...)
	handler := l.srv.Front(l.srv)
	if tls {
		l.ts = httptest.NewTLSServer(handler)
	} else {
		l.ts = httptest.NewServer(handler)
	}
	t.Cleanup(func() {
		l.ts.Close()
		l.srv.Close()
	})
	return l
}

// client is a masterzen/winrm client for host, dialling the test listener.
func (l *lab) client(t *testing.T, host string, timeout string) *winrm.Client {
	t.Helper()
	https := l.ts.TLS != nil
	ep := winrm.NewEndpoint(host, 5985, https, true, nil, nil, nil, 10*time.Second)
	params := winrm.NewParameters(timeout, "en-US", 153600)
	addr := l.ts.Listener.Addr().String()
	params.Dial = func(network, _ string) (net.Conn, error) { return net.DialTimeout(network, addr, 5*time.Second) }
	c, err := winrm.NewClientWithParameters(ep, "svc_svcwatch", "pw", params)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// post sends a raw envelope for host and returns status and body.
func (l *lab) post(t *testing.T, host string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, l.ts.URL+"/wsman", strings.NewReader(body))
	req.Host = host + ":5985"
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth("svc_svcwatch", "pw")
	resp, err := l.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var params = winrm.NewParameters("PT60S", "en-US", 153600)

const endpointURL = "http://dc01.lab.example:5985/wsman"

func (l *lab) createShell(t *testing.T, host string) (string, string) {
	t.Helper()
	st, body := l.post(t, host, winrm.NewOpenShellRequest(endpointURL, params).String())
	if st != 200 {
		t.Fatalf("create: %d %s", st, body)
	}
	id, err := winrm.ParseOpenShellResponse(body)
	if err != nil || id == "" {
		t.Fatalf("create: shell id %q %v", id, err)
	}
	return id, body
}

func (l *lab) startCommand(t *testing.T, host, shellID, cmd string, args ...string) (string, string) {
	t.Helper()
	st, body := l.post(t, host, winrm.NewExecuteCommandRequest(endpointURL, shellID, cmd, args, params).String())
	if st != 200 {
		t.Fatalf("command: %d %s", st, body)
	}
	id, err := winrm.ParseExecuteCommandResponse(body)
	if err != nil || id == "" {
		t.Fatalf("command id %q %v", id, err)
	}
	return id, body
}

func TestRoundTripWithMasterzen(t *testing.T) {
	for _, tls := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tls], func(t *testing.T) {
			l := newLab(t, tls)
			h := l.hosts["dc01.lab.example"]
			req := winhost.CollectRequest{Digest: "0", MaxEvents: 100, Lookback: 86400}
			cmd := collectorCommand(req)
			c := l.client(t, "DC01.lab.example", "PT60S")
			stdout, stderr, exit, err := c.RunCmdWithContext(context.Background(), cmd)
			if err != nil || exit != 0 || stderr != "" {
				t.Fatalf("run: exit %d err %v stderr %q", exit, err, stderr)
			}
			var a struct {
				Host   string          `json:"host"`
				Digest string          `json:"digest"`
				Log    json.RawMessage `json:"log"`
			}
			if err := json.Unmarshal([]byte(stdout), &a); err != nil || a.Host != "DC01" || a.Digest != h.Digest() {
				t.Fatalf("answer %q: %v", stdout[:min(200, len(stdout))], err)
			}
			st := l.srv.Stats("dc01.lab.example")
			if st.Requests != 5 || st.ShellsCreated != 1 || st.Commands != 1 || st.Faults != 0 {
				t.Errorf("one poll took %+v, want Create, Command, Receive, Signal, Delete", st)
			}
			if st.WireIn <= st.SOAPIn || st.WireOut <= st.SOAPOut || st.HTTPRequests != 5 {
				t.Errorf("wire counters %+v", st)
			}
			if l.srv.OpenShells("dc01.lab.example") != 0 {
				t.Errorf("shell left open")
			}
			// RunPSWithContext (the naive way) works too.
			out, _, exit, err := c.RunPSWithContext(context.Background(), "Get-Service | ConvertTo-Json")
			if err != nil || exit != 0 || !json.Valid([]byte(out)) {
				t.Errorf("naive run: exit %d err %v", exit, err)
			}
		})
	}
}

func collectorCommand(req winhost.CollectRequest) string {
	script := req.Preamble() + "\n" + winhost.CollectorMarker + "\n# body\n"
	return "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + encodePS(script)
}

func encodePS(s string) string {
	b := make([]byte, 0, 2*len(s))
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestHugeOutputIsChunked(t *testing.T) {
	l := newLab(t, false)
	host := "dc01.lab.example"
	l.hosts[host].SetFault(winhost.FaultHuge)
	shellID, _ := l.createShell(t, host)
	cmdID, _ := l.startCommand(t, host, shellID, collectorCommand(winhost.CollectRequest{Digest: "0", MaxEvents: 1}))
	var total int64
	receives := 0
	for done := false; !done; {
		st, body := l.post(t, host, winrm.NewGetOutputRequest(endpointURL, shellID, cmdID, "stdout stderr", params).String())
		if st != 200 || len(body) > 153600 {
			t.Fatalf("receive %d: status %d, %d bytes (client MaxEnvelopeSize 153600)", receives, st, len(body))
		}
		receives++
		var env struct {
			Streams []struct {
				Name string `xml:"Name,attr"`
				Data string `xml:",chardata"`
			} `xml:"Body>ReceiveResponse>Stream"`
			State struct {
				State string `xml:"State,attr"`
			} `xml:"Body>ReceiveResponse>CommandState"`
		}
		if err := xml.Unmarshal([]byte(body), &env); err != nil {
			t.Fatal(err)
		}
		for _, s := range env.Streams {
			b, err := base64.StdEncoding.DecodeString(s.Data)
			if err != nil {
				t.Fatal(err)
			}
			total += int64(len(b))
		}
		done = strings.HasSuffix(env.State.State, "/Done")
	}
	if total <= 8<<20 {
		t.Errorf("received %d bytes, want > 8 MiB", total)
	}
	if receives < 8<<20/153600 {
		t.Errorf("%d Receive requests for %d bytes: not chunked to the envelope size", receives, total)
	}
}

func TestFaultKinds(t *testing.T) {
	t.Run("quota", func(t *testing.T) {
		l := newLab(t, false)
		l.hosts["dc01.lab.example"].SetFault(winhost.FaultQuota)
		// masterzen/winrm hands a fault body back as a response with a nil
		// error, so the run fails one step later; the raw answer carries the code.
		_, _, _, err := l.client(t, "dc01.lab.example", "PT60S").RunCmdWithContext(context.Background(), "hostname")
		if err == nil || !strings.Contains(err.Error(), "wsman/fault") {
			t.Errorf("err %v", err)
		}
		st, body := l.post(t, "dc01.lab.example", winrm.NewOpenShellRequest(endpointURL, params).String())
		if st != 500 || !strings.Contains(body, "w:QuotaLimit") || !strings.Contains(body, "2150859173") {
			t.Errorf("%d %s", st, body)
		}
	})
	t.Run("access-denied", func(t *testing.T) {
		l := newLab(t, false)
		l.hosts["dc01.lab.example"].SetFault(winhost.FaultAccessDenied)
		_, _, _, err := l.client(t, "dc01.lab.example", "PT60S").RunCmdWithContext(context.Background(), "hostname")
		if err == nil || !strings.Contains(err.Error(), "wsman/fault") {
			t.Errorf("err %v", err)
		}
		st, body := l.post(t, "dc01.lab.example", winrm.NewOpenShellRequest(endpointURL, params).String())
		if st != 500 || !strings.Contains(body, `Code="2147942405"`) || !strings.Contains(body, "w:InternalError") {
			t.Errorf("%d %s", st, body)
		}
	})
	t.Run("shell-leak", func(t *testing.T) {
		l := newLab(t, false)
		l.hosts["dc01.lab.example"].SetFault(winhost.FaultShellLeak)
		c := l.client(t, "dc01.lab.example", "PT60S")
		for i := 0; i < DefaultMaxShellsPerUser; i++ {
			if out, _, _, err := c.RunCmdWithContext(context.Background(), "hostname"); err != nil || out != "DC01\r\n" {
				t.Fatalf("run %d: %q %v", i, out, err)
			}
		}
		if n := l.srv.OpenShells("dc01.lab.example"); n != DefaultMaxShellsPerUser {
			t.Errorf("%d shells open, want %d", n, DefaultMaxShellsPerUser)
		}
		if _, _, _, err := c.RunCmdWithContext(context.Background(), "hostname"); err == nil {
			t.Errorf("31st shell: no error")
		}
		st, body := l.post(t, "dc01.lab.example", winrm.NewOpenShellRequest(endpointURL, params).String())
		if st != 500 || !strings.Contains(body, "2150859173") {
			t.Errorf("31st shell: %d %.300s", st, body)
		}
		// Another host is not affected by this host's quota.
		if _, _, _, err := l.client(t, "srv01.lab.example", "PT60S").RunCmdWithContext(context.Background(), "hostname"); err != nil {
			t.Errorf("srv01: %v", err)
		}
	})
	t.Run("down", func(t *testing.T) {
		l := newLab(t, false)
		l.hosts["dc01.lab.example"].SetDown(true)
		_, _, _, err := l.client(t, "dc01.lab.example", "PT60S").RunCmdWithContext(context.Background(), "hostname")
		if err == nil || !(strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset")) {
			t.Errorf("err %v", err)
		}
		l.hosts["dc01.lab.example"].SetDown(false)
		if _, _, _, err := l.client(t, "dc01.lab.example", "PT60S").RunCmdWithContext(context.Background(), "hostname"); err != nil {
			t.Errorf("after up: %v", err)
		}
	})
	t.Run("logon-failure", func(t *testing.T) {
		l := newLab(t, false)
		l.hosts["dc01.lab.example"].SetFault(winhost.FaultLogonFailure)
		st, body := l.post(t, "dc01.lab.example", winrm.NewOpenShellRequest(endpointURL, params).String())
		if st != http.StatusUnauthorized || body != "" {
			t.Errorf("%d %q", st, body)
		}
	})
	t.Run("unknown host", func(t *testing.T) {
		l := newLab(t, false)
		st, body := l.post(t, "dc99.lab.example", winrm.NewOpenShellRequest(endpointURL, params).String())
		if st != 400 || !strings.Contains(body, "Invalid Hostname") {
			t.Errorf("%d %s", st, body)
		}
	})
	t.Run("slow: client timeout, then terminate", func(t *testing.T) {
		l := newLab(t, false)
		l.hosts["dc01.lab.example"].SetFault(winhost.FaultSlow)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, _, _, err := l.client(t, "dc01.lab.example", "PT1S").RunCmdWithContext(ctx, collectorCommand(winhost.CollectRequest{Digest: "0", MaxEvents: 1}))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Errorf("err %v after %v", err, time.Since(start))
		}
	})
	t.Run("operation timeout", func(t *testing.T) {
		l := newLab(t, false)
		l.hosts["dc01.lab.example"].SetFault(winhost.FaultSlow)
		shellID, _ := l.createShell(t, "dc01.lab.example")
		cmdID, _ := l.startCommand(t, "dc01.lab.example", shellID, "hostname")
		p := winrm.NewParameters("PT0.2S", "en-US", 153600)
		st, body := l.post(t, "dc01.lab.example", winrm.NewGetOutputRequest(endpointURL, shellID, cmdID, "stdout stderr", p).String())
		if st != 500 || !strings.Contains(body, "w:TimedOut") || !strings.Contains(body, "2150858793") {
			t.Errorf("%d %s", st, body)
		}
		st, _ = l.post(t, "dc01.lab.example", winrm.NewSignalRequest(endpointURL, shellID, cmdID, params).String())
		if st != 200 {
			t.Errorf("signal: %d", st)
		}
		st, body = l.post(t, "dc01.lab.example", winrm.NewGetOutputRequest(endpointURL, shellID, cmdID, "stdout stderr", params).String())
		if st != 200 || !strings.Contains(body, "CommandState/Done") {
			t.Errorf("receive after terminate: %d %s", st, body)
		}
	})
	t.Run("envelope too large", func(t *testing.T) {
		l := newLab(t, false)
		shellID, _ := l.createShell(t, "dc01.lab.example")
		st, _ := l.post(t, "dc01.lab.example", winrm.NewExecuteCommandRequest(endpointURL, shellID, "echo", []string{strings.Repeat("x", 600*1024)}, params).String())
		if st != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", st)
		}
	})
	t.Run("command line too long for CreateProcess", func(t *testing.T) {
		l := newLab(t, false)
		shellID, _ := l.createShell(t, "dc01.lab.example")
		st, body := l.post(t, "dc01.lab.example", winrm.NewExecuteCommandRequest(endpointURL, shellID, "echo "+strings.Repeat("x", 40000), nil, params).String())
		if st != 500 || !strings.Contains(body, "2147942606") {
			t.Errorf("%d %s", st, body)
		}
	})
	t.Run("command line too long for cmd.exe", func(t *testing.T) {
		l := newLab(t, false)
		_, stderr, exit, err := l.client(t, "dc01.lab.example", "PT60S").RunCmdWithContext(context.Background(), "echo "+strings.Repeat("x", 9000))
		if err != nil || exit != 1 || !strings.Contains(stderr, "The command line is too long.") {
			t.Errorf("exit %d err %v stderr %q", exit, err, stderr)
		}
	})
}

// ---- structure comparison against real Windows captures ----

func sharedDir(t *testing.T) string { return refdata.Require(t) }

// keyAttrs are attributes whose values are part of the structure.
var keyAttrs = map[string]bool{"Name": true, "State": true, "End": true, "provider": true, "Code": true}

// valueElems are elements whose text is part of the structure.
var valueElems = map[string]bool{"Action": true, "Value": true, "ResourceURI": true, "ResourceUri": true, "FaultDetail": true, "error_Code": true, "InputStreams": true}

// optional are header elements Windows adds only sometimes.
var optional = regexp.MustCompile(`/\{http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\}ActivityId`)

// structure returns the set of element paths (namespace + local name, key
// attributes, value texts) and the root's namespace declarations.
func structure(t *testing.T, doc []byte, withValues bool) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	set := map[string]bool{}
	var stack []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, doc)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			var attrs []string
			for _, a := range el.Attr {
				switch {
				case a.Name.Space == "xmlns" && len(stack) == 0:
					set["xmlns:"+a.Name.Local+"="+a.Value] = true
				case a.Name.Space == "xmlns" || a.Name.Local == "xmlns":
				case keyAttrs[a.Name.Local] && withValues && !(a.Name.Local == "Code" && el.Name.Local != "WSManFault"):
					attrs = append(attrs, "@"+a.Name.Local+"="+a.Value)
				default:
					attrs = append(attrs, "@"+a.Name.Local)
				}
			}
			sort.Strings(attrs)
			p := "{" + el.Name.Space + "}" + el.Name.Local
			if len(attrs) > 0 {
				p += "[" + strings.Join(attrs, ",") + "]"
			}
			stack = append(stack, p)
			set[strings.Join(stack, "/")] = true
		case xml.CharData:
			if len(stack) > 0 && withValues {
				top := stack[len(stack)-1]
				local := top[strings.Index(top, "}")+1:]
				if i := strings.IndexByte(local, '['); i >= 0 {
					local = local[:i]
				}
				if valueElems[local] && strings.TrimSpace(string(el)) != "" {
					set[strings.Join(stack, "/")+"="+strings.TrimSpace(string(el))] = true
				}
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	var out []string
	for p := range set {
		if !optional.MatchString(p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func diff(a, b []string) (onlyA, onlyB []string) {
	in := func(s []string, x string) bool { i := sort.SearchStrings(s, x); return i < len(s) && s[i] == x }
	for _, x := range a {
		if !in(b, x) {
			onlyA = append(onlyA, x)
		}
	}
	for _, x := range b {
		if !in(a, x) {
			onlyB = append(onlyB, x)
		}
	}
	return
}

// replaceID makes ids in captures and in our answers comparable.
var idRE = regexp.MustCompile(`[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}`)

func TestResponsesMatchWindowsCaptures(t *testing.T) {
	shared := sharedDir(t)
	l := newLab(t, false)
	host := "dc01.lab.example"
	timeoutParams := winrm.NewParameters("PT0.2S", "en-US", 153600)

	shellID, createBody := l.createShell(t, host)
	cmdID, commandBody := l.startCommand(t, host, shellID, "cmd.exe", "/c", "echo", "hi")
	_, receiveDone := l.post(t, host, winrm.NewGetOutputRequest(endpointURL, shellID, cmdID, "stdout stderr", params).String())
	if !strings.Contains(receiveDone, ">aGkNCg==<") {
		t.Errorf("echo hi did not produce the capture's stdout bytes: %s", receiveDone)
	}
	_, signalBody := l.post(t, host, winrm.NewSignalRequest(endpointURL, shellID, cmdID, params).String())
	_, unknownCmd := l.post(t, host, winrm.NewGetOutputRequest(endpointURL, shellID, "D644AE56-61E5-4C1A-A135-E599B76B3035", "stdout stderr", params).String())

	// Running with output: the huge answer is larger than one envelope.
	l.hosts[host].SetFault(winhost.FaultHuge)
	cmd2, _ := l.startCommand(t, host, shellID, collectorCommand(winhost.CollectRequest{Digest: "0", MaxEvents: 1}))
	_, receiveRunning := l.post(t, host, winrm.NewGetOutputRequest(endpointURL, shellID, cmd2, "stdout stderr", params).String())
	l.post(t, host, winrm.NewSignalRequest(endpointURL, shellID, cmd2, params).String())

	// TimedOut: a slow command and a short OperationTimeout.
	l.hosts[host].SetFault(winhost.FaultSlow)
	cmd3, _ := l.startCommand(t, host, shellID, "hostname")
	_, timedOut := l.post(t, host, winrm.NewGetOutputRequest(endpointURL, shellID, cmd3, "stdout stderr", timeoutParams).String())
	l.post(t, host, winrm.NewSignalRequest(endpointURL, shellID, cmd3, params).String())
	l.hosts[host].SetFault("")

	_, badTimeout := l.post(t, host, winrm.NewGetOutputRequest(endpointURL, shellID, cmd3, "stdout stderr", winrm.NewParameters("PT-1S", "en-US", 153600)).String())
	_, tooLong := l.post(t, host, winrm.NewExecuteCommandRequest(endpointURL, shellID, strings.Repeat("x", 33000), nil, params).String())
	_, deleteBody := l.post(t, host, winrm.NewDeleteShellRequest(endpointURL, shellID, params).String())
	_, unknownShell := l.post(t, host, winrm.NewDeleteShellRequest(endpointURL, shellID, params).String())

	l.hosts[host].SetFault(winhost.FaultQuota)
	_, quota := l.post(t, host, winrm.NewOpenShellRequest(endpointURL, params).String())
	l.hosts[host].SetFault(winhost.FaultAccessDenied)
	_, denied := l.post(t, host, winrm.NewOpenShellRequest(endpointURL, params).String())

	// A shell that ran more commands than MaxConcurrentOperationsPerUser.
	lops := newLab(t, false, WithMaxOperations(2))
	opsShell, _ := lops.createShell(t, host)
	lops.startCommand(t, host, opsShell, "hostname")
	lops.startCommand(t, host, opsShell, "hostname")
	_, maxOps := lops.post(t, host, winrm.NewExecuteCommandRequest(endpointURL, opsShell, "hostname", nil, params).String())

	tests := []struct {
		name, ours, capture string
		values              bool // compare key values (Action, codes) as well
	}{
		{"fault max operations", maxOps, "fault-internalerror-wmierror-2150859174-max-operations.pywinrm-test_exceptions.xml", true},
		{"create", createBody, "create-response.pypsrp-winrs_standard.xml", true},
		{"command", commandBody, "command-response.pypsrp-winrs_standard.xml", true},
		{"receive done", receiveDone, "receive-response-done-exitcode0.pypsrp-winrs_standard.xml", true},
		{"receive running", receiveRunning, "receive-response-running.pypsrp-winrs_operation_timeout.xml", true},
		{"signal", signalBody, "signal-response.pypsrp-winrs_standard.xml", true},
		{"delete", deleteBody, "delete-response.pypsrp-winrs_standard.xml", true},
		{"fault timed out", timedOut, "fault-timedout-2150858793.pypsrp-winrs_operation_timeout.xml", true},
		{"fault unknown command", unknownCmd, "fault-invalidselectors-2150858843-unknown-command.pypsrp-winrs_bad_cmd_id.xml", true},
		{"fault unknown shell", unknownShell, "fault-invalidselectors-2150858843-shell-not-found.pypsrp-psrp_is_alive_invalid_selectors.xml", true},
		{"fault invalid timeout header", badTimeout, "fault-invalidmessageinformationheader-2150858767.pypsrp-psrp_is_alive_other_wsman_error.xml", true},
		{"fault quota", quota, "fault-quotalimit-2150859173-max-shells.winrb-wmi_error_v2.xml", true},
		{"fault filename too long", tooLong, "fault-internalerror-2147942606-filename-too-long.masterzen-fixture.xml", true},
		// No public capture of an access-denied body exists (NOTES-access-denied.txt): its
		// shape is the plain WSManFault one; values are checked below.
		{"fault access denied (shape)", denied, "fault-timedout-2150858793.pypsrp-winrs_operation_timeout.xml", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			capture, err := os.ReadFile(filepath.Join(shared, "wire", "wsman", tt.capture))
			if err != nil {
				t.Fatal(err)
			}
			want := structure(t, []byte(idRE.ReplaceAllString(string(capture), "ID")), tt.values)
			got := structure(t, []byte(idRE.ReplaceAllString(tt.ours, "ID")), tt.values)
			if onlyOurs, onlyCapture := diff(got, want); len(onlyOurs)+len(onlyCapture) > 0 {
				t.Errorf("structure differs from %s\nonly ours:\n  %s\nonly in capture:\n  %s", tt.capture,
					strings.Join(onlyOurs, "\n  "), strings.Join(onlyCapture, "\n  "))
			}
		})
	}
	// The comparison can tell responses apart (a control against a vacuous check).
	if a, b := diff(structure(t, []byte(commandBody), true), structure(t, []byte(createBody), true)); len(a)+len(b) == 0 {
		t.Error("structure() does not distinguish a CommandResponse from a CreateResponse")
	}
	if a, b := diff(structure(t, []byte(timedOut), true), structure(t, []byte(denied), true)); len(a)+len(b) == 0 {
		t.Error("structure() does not distinguish fault codes")
	}
	for _, want := range []string{`<s:Value>s:Receiver</s:Value>`, `<s:Value>w:InternalError</s:Value>`, `Code="2147942405"`, `>Access is denied. <`} {
		if !strings.Contains(denied, want) {
			t.Errorf("access-denied fault lacks %s (NOTES-access-denied.txt)", want)
		}
	}
}
