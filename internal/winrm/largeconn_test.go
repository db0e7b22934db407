package winrm

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcwatch/svcwatch/internal/config"
)

// TestLargeReplyConnectionClosedSooner: over net/http (Kerberos,
// certificate, Basic) a connection that carried a large reply is closed
// after largeIdle unused; one with small replies stays for keep_alive, and
// a request that takes the connection in time keeps it.
func TestLargeReplyConnectionClosedSooner(t *testing.T) {
	defer func(d time.Duration) { largeIdle = d }(largeIdle)
	largeIdle = 150 * time.Millisecond

	var (
		mu     sync.Mutex
		opened int
		closed int
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n, _ := strconv.Atoi(r.Header.Get("X-Test-Size"))
		_, _ = io.WriteString(w, strings.Repeat("x", n))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			opened++
		case http.StateClosed:
			closed++
		}
	}
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := normalize(config.WinRM{Scheme: "https", Auth: "basic", Username: "u", CAFile: caFile, TLSServerName: "example.com",
		ConnectTo: srv.Listener.Addr().String(), KeepAlive: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := newTransport(cfg, "pw", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := tr.rt.(*httpRoundTripper)
	defer h.closeIdle()
	h.auth = sizeHeader{h.auth}
	counts := func() (int, int) {
		time.Sleep(3 * largeIdle)
		mu.Lock()
		defer mu.Unlock()
		return opened, closed
	}
	for _, step := range []struct {
		name               string
		size               int
		pause              time.Duration
		wantOpen, wantShut int
	}{
		{"small replies keep the connection", 1000, 0, 1, 0},
		// The request within largeIdle reuses the connection, which is
		// closed largeIdle after that request.
		{"a large reply, then another request within largeIdle", largeReply + 1, largeIdle / 3, 1, 1},
		{"the next request opens a new connection", 10, 0, 2, 1},
		{"a large reply, then nothing", largeReply + 1, 0, 2, 2},
		{"and again a new one", 10, 0, 3, 2},
	} {
		if _, _, err := h.roundTrip(context.Background(), "dc01.corp.example", []byte(strconv.Itoa(step.size))); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if step.pause > 0 {
			time.Sleep(step.pause)
			if _, _, err := h.roundTrip(context.Background(), "dc01.corp.example", []byte("10")); err != nil {
				t.Fatalf("%s: %v", step.name, err)
			}
			mu.Lock()
			if opened != step.wantOpen {
				t.Errorf("%s: the request within largeIdle opened a connection (%d in all)", step.name, opened)
			}
			mu.Unlock()
		}
		if o, c := counts(); o != step.wantOpen || c != step.wantShut {
			t.Errorf("%s: %d connections opened, %d closed; want %d, %d", step.name, o, c, step.wantOpen, step.wantShut)
		}
	}
}

// sizeHeader asks the test server for a reply of the size in the body.
type sizeHeader struct{ authorizer }

func (s sizeHeader) authorize(req *http.Request, host string) error {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(strings.NewReader(string(body)))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(body))), nil }
	req.Header.Set("X-Test-Size", string(body))
	return s.authorizer.authorize(req, host)
}

// net/http hands a connection to the next request as soon as a body is
// read, before the previous request's end: the timer waits for both.
func TestTrackedConnOverlappingRequests(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := &trackedConn{Conn: client, idle: 30 * time.Millisecond}
	open := func() bool { return client.SetDeadline(time.Time{}) == nil } // a closed pipe refuses
	c.begin()                                                             // request A
	c.begin()                                                             // request B took the connection from the pool
	c.end(largeReply + 1)                                                 // A ends with a large reply while B still runs
	time.Sleep(100 * time.Millisecond)
	if !open() {
		t.Fatal("the connection was closed under a request still using it")
	}
	c.end(10) // B ends: the connection carried a large reply, so it goes after idle
	time.Sleep(100 * time.Millisecond)
	if open() {
		t.Error("the idle connection that carried a large reply is still open")
	}
}
