package ntlmtransport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/svcwatch/svcwatch/internal/lab/wsauth"
	"github.com/svcwatch/svcwatch/internal/ntlm"
)

const (
	labUser     = `LAB\svcwatch`
	labPassword = "S3cret!pw"
)

// labServer is the lab's independent NTLM server (internal/lab/wsauth) in
// front of a SOAP handler, with a hook to misbehave before wsauth sees a request.
type labServer struct {
	srv        *httptest.Server
	auth       *wsauth.Auth
	handshakes atomic.Int32 // successful NTLM logons
	failed     atomic.Int32
	mu         sync.Mutex
	inject     func(w http.ResponseWriter, r *http.Request) bool
}

func startLab(t *testing.T, inner http.Handler, useTLS bool) *labServer {
	t.Helper()
	ls := &labServer{}
	ls.auth = wsauth.New(wsauth.Options{
		Users:  map[string]string{labUser: labPassword},
		Domain: "LAB", DNSDomain: "lab.example", ServerName: "DC01",
		RequireSealing: true,
		OnAttempt: func(a wsauth.Attempt) {
			if a.Method != wsauth.MethodNTLM {
				return
			}
			if a.OK {
				ls.handshakes.Add(1)
			} else {
				ls.failed.Add(1)
			}
		},
	})
	wrapped := ls.auth.Wrap(inner)
	ls.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ls.mu.Lock()
		f := ls.inject
		ls.mu.Unlock()
		if f != nil && f(w, r) {
			return
		}
		wrapped.ServeHTTP(w, r)
	}))
	ls.auth.Configure(ls.srv.Config)
	if useTLS {
		ls.srv.StartTLS()
	} else {
		ls.srv.Start()
	}
	t.Cleanup(ls.srv.Close)
	return ls
}

func (ls *labServer) setInject(f func(w http.ResponseWriter, r *http.Request) bool) {
	ls.mu.Lock()
	ls.inject = f
	ls.mu.Unlock()
}

func (ls *labServer) endpoint(t *testing.T) *winrm.Endpoint {
	t.Helper()
	u, err := url.Parse(ls.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	e := &winrm.Endpoint{Host: u.Hostname(), Port: port, HTTPS: u.Scheme == "https", Timeout: 10 * time.Second}
	if e.HTTPS {
		e.CACert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ls.srv.Certificate().Raw})
		e.TLSServerName = "example.com" // httptest's certificate names example.com and 127.0.0.1
	}
	return e
}

func newTransport(t *testing.T, ls *labServer, opts Options) *Transport {
	t.Helper()
	if opts.Username == "" {
		opts.Username, opts.Password = labUser, labPassword
	}
	tr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Transport(ls.endpoint(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// echo answers with what it received, so a test sees the plaintext round trip.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", SOAPContentType)
	fmt.Fprintf(w, "user=%s body=%s", wsauth.User(r.Context()), body)
})

// wsmanFixtures answers masterzen's shell operations with real Windows
// responses from ../shared/wire/wsman; the first Receive gets the real
// OperationTimeout fault (HTTP 500) that masterzen must ride out.
type wsmanFixtures struct {
	t        *testing.T
	dir      string
	mu       sync.Mutex
	actions  []string
	receives int
}

var actionRE = regexp.MustCompile(`<a:Action[^>]*>([^<]+)</a:Action>`)

func (f *wsmanFixtures) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m := actionRE.FindSubmatch(body)
	if m == nil {
		http.Error(w, "no action", http.StatusBadRequest)
		return
	}
	action := string(m[1][bytes.LastIndexByte(m[1], '/')+1:])
	f.mu.Lock()
	f.actions = append(f.actions, action)
	file, status := "", http.StatusOK
	switch action {
	case "Create":
		file = "create-response.pypsrp-winrs_standard.xml"
	case "Command":
		file = "command-response.pypsrp-winrs_standard.xml"
	case "Receive":
		f.receives++
		file = "receive-response-done-exitcode0.pypsrp-winrs_standard.xml"
		if f.receives == 1 {
			file, status = "fault-timedout-2150858793.pypsrp-winrs_operation_timeout.xml", http.StatusInternalServerError
		}
	case "Signal":
		file = "signal-response.pypsrp-winrs_standard.xml"
	case "Delete":
		file = "delete-response.pypsrp-winrs_standard.xml"
	}
	f.mu.Unlock()
	data, err := os.ReadFile(filepath.Join(f.dir, file))
	if err != nil {
		f.t.Errorf("fixture for %s: %v", action, err)
		http.Error(w, "no fixture", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", SOAPContentType)
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

func (f *wsmanFixtures) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.actions...)
}

// A masterzen client runs a command through the transport against the lab's
// NTLM server: sealed over http, plain over https, sealed over https.
func TestMasterzenRunAgainstLab(t *testing.T) {
	tests := []struct {
		name    string
		tls     bool
		sealing Sealing
	}{
		{"http sealed", false, SealAuto},
		{"https unsealed", true, SealAuto},
		{"https sealed", true, SealAlways},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := &wsmanFixtures{t: t, dir: filepath.Join(sharedDir(t), "wire", "wsman")}
			ls := startLab(t, fx, tt.tls)
			var sealedRequests atomic.Int32
			ls.setInject(func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/encrypted") {
					sealedRequests.Add(1)
				}
				return false
			})
			tr, err := New(Options{Username: labUser, Password: labPassword, Sealing: tt.sealing, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			params := winrm.NewParameters("PT60S", "en-US", 153600)
			params.TransportDecorator = func() winrm.Transporter { return tr.WithContext(ctx) }

			for run := 1; run <= 2; run++ {
				client, err := winrm.NewClientWithParameters(ls.endpoint(t), "unused", "unused", params)
				if err != nil {
					t.Fatal(err)
				}
				var stdout, stderr bytes.Buffer
				code, err := client.RunWithContext(ctx, "echo hi", &stdout, &stderr)
				if err != nil || code != 0 {
					t.Fatalf("run %d: exit %d, err %v, stderr %q", run, code, err, stderr.String())
				}
				if stdout.String() != "hi\r\n" {
					t.Fatalf("run %d: stdout %q, want %q", run, stdout.String(), "hi\r\n")
				}
			}
			want := "Create Command Receive Receive Signal Delete Create Command Receive Signal Delete"
			if got := strings.Join(fx.seen(), " "); got != want {
				t.Errorf("actions %q, want %q", got, want)
			}
			// One logon for eleven messages: the context and its sequence
			// numbers lived across all of them on one connection.
			if n := ls.handshakes.Load(); n != 1 {
				t.Errorf("%d NTLM logons, want 1", n)
			}
			wantSealed := int32(0)
			if tt.sealing == SealAlways || !tt.tls {
				wantSealed = 11
			}
			if n := sealedRequests.Load(); n != wantSealed {
				t.Errorf("%d sealed requests, want %d", n, wantSealed)
			}
		})
	}
}

func TestEchoAndUser(t *testing.T) {
	ls := startLab(t, echo, false)
	tr := newTransport(t, ls, Options{})
	for i := 0; i < 3; i++ {
		msg := fmt.Sprintf("<s:Envelope>message %d %s</s:Envelope>", i, strings.Repeat("é", i*3000))
		out, err := tr.base.RoundTrip([]byte(msg))
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := "user=" + labUser + " body=" + msg; string(out) != want {
			t.Fatalf("message %d: got %.80q", i, out)
		}
	}
	if n := ls.handshakes.Load(); n != 1 {
		t.Errorf("%d logons, want 1", n)
	}
}

func TestWrongPassword(t *testing.T) {
	ls := startLab(t, echo, false)
	tr := newTransport(t, ls, Options{Username: labUser, Password: "wrong"})
	_, err := tr.base.RoundTrip([]byte("x"))
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("the password leaked into the error: %v", err)
	}
	if ls.failed.Load() != 1 {
		t.Errorf("%d failed logons at the server, want 1", ls.failed.Load())
	}
}

// Every way the server can misbehave gives the right error, and the next
// request recovers on a fresh, re-authenticated connection.
func TestServerMisbehaviour(t *testing.T) {
	tests := []struct {
		name   string
		inject func(w http.ResponseWriter, r *http.Request)
		want   error
		logons int32 // after the recovery request
	}{
		{
			name: "plaintext 200",
			inject: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", SOAPContentType)
				_, _ = io.WriteString(w, "<s:Envelope>forged</s:Envelope>")
			},
			want: ErrNotEncrypted, logons: 2,
		},
		{
			name: "plaintext 500",
			inject: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", SOAPContentType)
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = io.WriteString(w, "<s:Envelope>forged fault</s:Envelope>")
			},
			want: ErrNotEncrypted, logons: 2,
		},
		{
			name: "garbage multipart",
			inject: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ContentType)
				_, _ = io.WriteString(w, "--Encrypted Boundary\r\n\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n\tOriginalContent: type=x;Length=999999\r\n--Encrypted Boundary\r\n\tContent-Type: application/octet-stream\r\n\x10\x00\x00\x00abc")
			},
			want: ErrProtocol, logons: 2,
		},
		{
			name: "forged sealed answer",
			inject: func(w http.ResponseWriter, r *http.Request) {
				s, _ := ntlm.NewSession(bytes.Repeat([]byte{7}, 16), ntlm.DefaultFlags, ntlm.RoleServer)
				sig, sealed := s.Seal([]byte("<s:Envelope>forged</s:Envelope>"))
				w.Header().Set("Content-Type", ContentType)
				_, _ = w.Write(EncodeEncrypted(EncryptedPart{Signature: sig, Sealed: sealed}))
			},
			want: ntlm.ErrSignature, logons: 2,
		},
		{
			name: "401 on an authenticated connection",
			inject: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", "Negotiate")
				w.WriteHeader(http.StatusUnauthorized)
			},
			want: nil, logons: 2, // re-authenticated on a new connection and resent
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := startLab(t, echo, false)
			tr := newTransport(t, ls, Options{})
			if _, err := tr.base.RoundTrip([]byte("first")); err != nil {
				t.Fatal(err)
			}
			var once atomic.Bool
			ls.setInject(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Header.Get("Authorization") != "" || !once.CompareAndSwap(false, true) {
					return false
				}
				_, _ = io.Copy(io.Discard, r.Body)
				tt.inject(w, r)
				return true
			})
			out, err := tr.base.RoundTrip([]byte("second"))
			if tt.want == nil {
				if err != nil || !strings.HasSuffix(string(out), "body=second") {
					t.Fatalf("got %q, %v", out, err)
				}
			} else {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if out != nil {
					t.Fatalf("returned %q with the error", out)
				}
				var ue *url.Error
				if errors.As(err, &ue) {
					t.Fatal("a *url.Error escaped")
				}
				var he *HTTPError
				if errors.As(err, &he) {
					t.Fatalf("an unverified answer was handed on as an HTTPError: %v", he)
				}
				out, err = tr.base.RoundTrip([]byte("third"))
				if err != nil || !strings.HasSuffix(string(out), "body=third") {
					t.Fatalf("recovery: %q, %v", out, err)
				}
			}
			if n := ls.handshakes.Load(); n != tt.logons {
				t.Errorf("%d logons, want %d", n, tt.logons)
			}
		})
	}
}

func TestResponseTooLarge(t *testing.T) {
	big := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", SOAPContentType)
		_, _ = w.Write(bytes.Repeat([]byte("x"), 300<<10))
	})
	ls := startLab(t, big, false)
	tr := newTransport(t, ls, Options{MaxResponseBytes: 256 << 10})
	if _, err := tr.base.RoundTrip([]byte("q")); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("err = %v, want ErrResponseTooLarge", err)
	}
}

// slow blocks each SOAP request until release is closed or the client gives up.
func slow(release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !bytes.Contains(body, []byte("fast")) {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", SOAPContentType)
		_, _ = w.Write(body)
	})
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ls := startLab(t, slow(release), false)
	tr := newTransport(t, ls, Options{Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := tr.base.RoundTrip([]byte("slow please"))
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout and DeadlineExceeded", err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		t.Fatal("a *url.Error escaped: masterzen would retry it forever")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
	if out, err := tr.base.RoundTrip([]byte("fast")); err != nil || string(out) != "fast" {
		t.Fatalf("after a timeout: %q, %v", out, err)
	}
}

// Cancelling the bound context aborts the request in flight; requests made
// afterwards (masterzen's Signal and Delete) share the cleanup budget.
func TestCancelAndCleanupBudget(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ls := startLab(t, slow(release), false)
	tr := newTransport(t, ls, Options{CleanupTimeout: 400 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	b := tr.WithContext(ctx)
	if _, err := b.RoundTrip([]byte("fast")); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := b.RoundTrip([]byte("slow"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cancellation took %v", d)
	}
	// Cleanup after the cancel still goes out...
	if out, err := b.RoundTrip([]byte("fast cleanup")); err != nil || string(out) != "fast cleanup" {
		t.Fatalf("cleanup request: %q, %v", out, err)
	}
	// ...but within one shared budget.
	start = time.Now()
	if _, err := b.RoundTrip([]byte("slow cleanup")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the cleanup budget to expire", err)
	}
	if _, err := b.RoundTrip([]byte("fast again")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the spent budget to refuse at once", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("cleanup took %v past a 400ms budget", d)
	}

	// With cleanup disabled, a done context refuses at once.
	tr2 := newTransport(t, ls, Options{CleanupTimeout: -1})
	if _, err := tr2.WithContext(ctx).RoundTrip([]byte("fast")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// A connection the server closed while idle is replaced transparently; one
// idle past IdleTimeout is not even tried.
func TestReconnect(t *testing.T) {
	ls := startLab(t, echo, false)
	tr := newTransport(t, ls, Options{IdleTimeout: time.Hour})
	if _, err := tr.base.RoundTrip([]byte("a")); err != nil {
		t.Fatal(err)
	}
	ls.srv.CloseClientConnections()
	if out, err := tr.base.RoundTrip([]byte("b")); err != nil || !strings.HasSuffix(string(out), "body=b") {
		t.Fatalf("after the server closed the connection: %q, %v", out, err)
	}
	if n := ls.handshakes.Load(); n != 2 {
		t.Errorf("%d logons, want 2", n)
	}

	tr2 := newTransport(t, ls, Options{IdleTimeout: 50 * time.Millisecond})
	for _, m := range []string{"c", "d"} {
		if _, err := tr2.base.RoundTrip([]byte(m)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := ls.handshakes.Load(); n != 4 {
		t.Errorf("%d logons, want 4 (each idle connection replaced)", n)
	}
}

// A server that offers only the NTLM scheme gets NTLM tokens.
func TestNTLMSchemeOnly(t *testing.T) {
	ls := startLab(t, echo, false)
	var negotiateSeen atomic.Int32
	ls.setInject(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Negotiate ") {
			negotiateSeen.Add(1)
			w.Header().Set("WWW-Authenticate", "NTLM")
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		return false
	})
	tr := newTransport(t, ls, Options{})
	for _, m := range []string{"a", "b"} {
		if out, err := tr.base.RoundTrip([]byte(m)); err != nil || !strings.HasSuffix(string(out), "body="+m) {
			t.Fatalf("%q, %v", out, err)
		}
	}
	ls.srv.CloseClientConnections()
	if _, err := tr.base.RoundTrip([]byte("c")); err != nil {
		t.Fatal(err)
	}
	if n := negotiateSeen.Load(); n != 1 {
		t.Errorf("Negotiate tried %d times, want once (the scheme is remembered)", n)
	}
}

func TestRefusesUnauthenticatedOrUnsealable(t *testing.T) {
	open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", SOAPContentType)
		_, _ = io.WriteString(w, "<s:Envelope/>")
	}))
	defer open.Close()
	tr, _ := New(Options{Username: labUser, Password: labPassword})
	u, _ := url.Parse(open.URL)
	port, _ := strconv.Atoi(u.Port())
	if err := tr.Transport(&winrm.Endpoint{Host: "127.0.0.1", Port: port}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.base.RoundTrip([]byte("x")); !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth for a server that never challenges", err)
	}

	never, _ := New(Options{Username: labUser, Password: labPassword, Sealing: SealNever})
	if err := never.Transport(&winrm.Endpoint{Host: "127.0.0.1", Port: port}); err == nil || !strings.Contains(err.Error(), "allow_insecure") {
		t.Fatalf("SealNever over http: err = %v, want a refusal naming allow_insecure", err)
	}
	allowed, _ := New(Options{Username: labUser, Password: labPassword, Sealing: SealNever, AllowUnsealedHTTP: true})
	if err := allowed.Transport(&winrm.Endpoint{Host: "127.0.0.1", Port: port}); err != nil {
		t.Fatalf("SealNever with AllowUnsealedHTTP: %v", err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without a username succeeded")
	}
	if _, err := (&Transport{}).resolve(nil); err == nil {
		t.Error("nil endpoint accepted")
	}
}

// Over http with sealing off (allowed explicitly) the lab, like Windows with
// AllowUnencrypted=false, refuses the plaintext body: the error must say so.
func TestUnsealedHTTPRefusedByServer(t *testing.T) {
	ls := startLab(t, echo, false)
	tr := newTransport(t, ls, Options{Sealing: SealNever, AllowUnsealedHTTP: true})
	if _, err := tr.base.RoundTrip([]byte("plain")); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "AllowUnencrypted") {
		t.Fatalf("err = %v, want ErrAuth (401) with the remedy", err)
	}
}

func TestTLSVerification(t *testing.T) {
	ls := startLab(t, echo, true)
	tr, _ := New(Options{Username: labUser, Password: labPassword})
	e := ls.endpoint(t)
	e.CACert = nil // the system roots do not know httptest's certificate
	if err := tr.Transport(e); err != nil {
		t.Fatal(err)
	}
	_, err := tr.base.RoundTrip([]byte("x"))
	if !errors.Is(err, ErrConnect) {
		t.Fatalf("err = %v, want ErrConnect for an unknown certificate", err)
	}
	// An explicit TLS config wins over the endpoint's settings.
	pool := ls.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tr2 := newTransport(t, ls, Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: "example.com", MinVersion: tls.VersionTLS12}})
	if out, err := tr2.base.RoundTrip([]byte("x")); err != nil || !strings.HasSuffix(string(out), "body=x") {
		t.Fatalf("%q, %v", out, err)
	}
}

func TestConnectErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	tr, _ := New(Options{Username: labUser, Password: labPassword})
	if err := tr.Transport(&winrm.Endpoint{Host: "127.0.0.1", Port: port}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.base.RoundTrip([]byte("x")); !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("err = %v, want ErrConnect naming the address", err)
	}
}

// Concurrent requests share the one connection in turn.
func TestConcurrentRequests(t *testing.T) {
	ls := startLab(t, echo, false)
	tr := newTransport(t, ls, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m := fmt.Sprintf("m%d", i)
			out, err := tr.base.RoundTrip([]byte(m))
			if err == nil && !strings.HasSuffix(string(out), "body="+m) {
				err = fmt.Errorf("got %q for %s", out, m)
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := ls.handshakes.Load(); n != 1 {
		t.Errorf("%d logons, want 1", n)
	}
}

// authenticateAV extracts one AV pair from the NTLMv2 response of an
// AUTHENTICATE message in an Authorization header (test side, by the spec's offsets).
func authenticateAV(t *testing.T, header string, id uint16) ([]byte, bool) {
	t.Helper()
	_, tok, _ := strings.Cut(header, " ")
	msg, err := base64.StdEncoding.DecodeString(tok)
	if err != nil || len(msg) < 64 || msg[8] != 3 {
		return nil, false
	}
	n := int(binary.LittleEndian.Uint16(msg[20:]))
	off := int(binary.LittleEndian.Uint32(msg[24:]))
	if off+n > len(msg) || n < 16+28 {
		t.Fatalf("bad NT response field")
	}
	av := msg[off+16+28 : off+n]
	for len(av) >= 4 {
		aid, alen := binary.LittleEndian.Uint16(av), int(binary.LittleEndian.Uint16(av[2:]))
		if aid == 0 || 4+alen > len(av) {
			break
		}
		if aid == id {
			return av[4 : 4+alen], true
		}
		av = av[4+alen:]
	}
	return nil, true
}

func TestChannelBinding(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprint("binding=", on), func(t *testing.T) {
			ls := startLab(t, echo, true)
			var got []byte
			var seen atomic.Bool
			ls.setInject(func(w http.ResponseWriter, r *http.Request) bool {
				if v, ok := authenticateAV(t, r.Header.Get("Authorization"), ntlm.AvChannelBindings); ok {
					got = v
					seen.Store(true)
				}
				return false
			})
			tr := newTransport(t, ls, Options{ChannelBinding: on})
			if _, err := tr.base.RoundTrip([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if !seen.Load() {
				t.Fatal("no AUTHENTICATE seen")
			}
			// Independent of the client's code: hash the server's certificate here.
			sum := sha256.Sum256(ls.srv.Certificate().Raw)
			app := append([]byte("tls-server-end-point:"), sum[:]...)
			st := append(make([]byte, 16), byte(len(app)), 0, 0, 0)
			want := md5.Sum(append(st, app...))
			switch {
			case on && !bytes.Equal(got, want[:]):
				t.Fatalf("channel binding %x, want %x", got, want)
			case !on && got != nil:
				t.Fatalf("channel binding sent when off: %x", got)
			}
		})
	}
}

// A hostile or broken server's answers to NEGOTIATE give clear errors.
func TestBadChallenges(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   error
		text   string
	}{
		{"garbage token", []string{"Negotiate " + base64.StdEncoding.EncodeToString([]byte("NTLMSSP\x00\x02\x00\x00\x00garbage"))}, ErrProtocol, "invalid message"},
		{"not base64", []string{"Negotiate !!!"}, ErrProtocol, "not base64"},
		{"no scheme at all", nil, ErrAuth, "no authentication scheme"},
		{"Basic only", []string{`Basic realm="WSMAN"`}, ErrAuth, `"Basic"`},
		{"NTLMv1 server", []string{"Negotiate " + base64.StdEncoding.EncodeToString(ntlmv1Challenge)}, ErrAuth, "did not agree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls := startLab(t, echo, false)
			ls.setInject(func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.HasPrefix(r.Header.Get("Authorization"), "Negotiate TlRMTVNTUAAB") { // type 1
					return false
				}
				for _, h := range tt.header {
					w.Header().Add("WWW-Authenticate", h)
				}
				w.WriteHeader(http.StatusUnauthorized)
				return true
			})
			tr := newTransport(t, ls, Options{})
			_, err := tr.base.RoundTrip([]byte("x"))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tt.want, tt.text)
			}
		})
	}
}

// ntlmv1Challenge is MS-NLMP 4.2.2.3's CHALLENGE: no target information, so no NTLMv2.
var ntlmv1Challenge = []byte("NTLMSSP\x00\x02\x00\x00\x00\x0c\x00\x0c\x00\x38\x00\x00\x00\x33\x82\x02\xe2\x01\x23\x45\x67\x89\xab\xcd\xef" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x70\x17\x00\x00\x00\x0fS\x00e\x00r\x00v\x00e\x00r\x00")

func FuzzChallengeHeader(f *testing.F) {
	f.Add("Negotiate TlRMTVNTUAACAAAA", "NTLM")
	f.Add("Negotiate, NTLM", `Basic realm="x"`)
	f.Add("", "Negotiate !!!")
	f.Fuzz(func(t *testing.T, a, b string) {
		offered, token, err := challengeToken([]string{a, b}, "Negotiate")
		if err == nil && token != nil && !containsFold(offered, "Negotiate") {
			t.Fatalf("a token without the scheme being offered: %q", offered)
		}
	})
}

// An unused connection is closed once IdleTimeout passes, without waiting
// for a next request (a host that left the monitored set has none).
func TestIdleConnectionClosedWithoutNextRequest(t *testing.T) {
	ls := startLab(t, echo, false)
	tr := newTransport(t, ls, Options{IdleTimeout: 100 * time.Millisecond})
	current := func() *conn {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.conn
	}
	for _, m := range []string{"a", "b"} { // the second use re-arms the timer
		if _, err := tr.base.RoundTrip([]byte(m)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	if n := ls.handshakes.Load(); n != 1 {
		t.Fatalf("%d logons, want 1 (the connection is reused while in use)", n)
	}
	c := current()
	if c == nil {
		t.Fatal("no connection after two requests")
	}
	deadline := time.Now().Add(5 * time.Second)
	for current() != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if current() != nil {
		t.Fatal("the idle connection is still held")
	}
	// The socket itself is closed, not just forgotten.
	if _, err := c.nc.Write([]byte("x")); err == nil {
		t.Error("the idle connection's socket is still open")
	}
	if out, err := tr.base.RoundTrip([]byte("c")); err != nil || !strings.HasSuffix(string(out), "body=c") {
		t.Fatalf("after the idle close: %q, %v", out, err)
	}
}

// A connection that carried a large response is closed after
// LargeIdleTimeout, one with small responses only after IdleTimeout: a
// poller of thousands of hosts does not keep TLS buffers sized for a full
// inventory per host between polls.
func TestLargeResponseConnectionClosedSooner(t *testing.T) {
	ls := startLab(t, echo, false)
	tr := newTransport(t, ls, Options{IdleTimeout: time.Hour, LargeResponse: 4096, LargeIdleTimeout: 50 * time.Millisecond})
	current := func() *conn {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.conn
	}
	for _, tt := range []struct {
		msg      string
		wantKept bool
	}{
		{"small", true},
		{strings.Repeat("x", 1000), true},
		{strings.Repeat("y", 5000), false},
		{"small again", true}, // a new connection starts small
	} {
		out, err := tr.base.RoundTrip([]byte(tt.msg))
		if err != nil || !strings.HasSuffix(string(out), "body="+tt.msg) {
			t.Fatalf("%.12s: %.40q, %v", tt.msg, out, err)
		}
		time.Sleep(200 * time.Millisecond)
		if kept := current() != nil; kept != tt.wantKept {
			t.Errorf("%.12s (%d bytes): connection kept %v, want %v", tt.msg, len(tt.msg), kept, tt.wantKept)
		}
	}
	if n := ls.handshakes.Load(); n != 2 {
		t.Errorf("%d logons, want 2 (one before the large response, one after)", n)
	}
}

// A response followed by more bytes leaves the connection out of step with
// the server: the response stands, but the exchange reports the connection
// unusable (the caller drops it) instead of reading those bytes as the next
// answer.
func TestTrailingDataAfterResponse(t *testing.T) {
	for _, tt := range []struct {
		name  string
		reply string
		want  bool
	}{
		{"exact", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
		{"trailing bytes", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			go func() {
				defer server.Close()
				req, err := http.ReadRequest(bufio.NewReader(server))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				_, _ = io.WriteString(server, tt.reply)
			}()
			cr := &countingReader{r: client}
			c := &conn{nc: client, cr: cr, lastUsed: time.Now()}
			req, _ := http.NewRequest(http.MethodPost, "http://dc01.corp.example/wsman", strings.NewReader("x"))
			res, _, err := c.exchange(context.Background(), req, 1<<20, DefaultLargeResponse)
			if err != nil || string(res.body) != "ok" {
				t.Fatalf("exchange = %q, %v; want the response", res.body, err)
			}
			if res.outOfStep != tt.want {
				t.Errorf("outOfStep = %v, want %v", res.outOfStep, tt.want)
			}
		})
	}
}
