package wsman

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/svcwatch/svcwatch/internal/lab/winhost"
)

// FuzzServeHTTP sends arbitrary request bodies: the server must answer with a
// status and never panic.
func FuzzServeHTTP(f *testing.F) {
	for _, seed := range []string{
		winrm.NewOpenShellRequest(endpointURL, params).String(),
		winrm.NewExecuteCommandRequest(endpointURL, "ABC", "hostname", nil, params).String(),
		winrm.NewGetOutputRequest(endpointURL, "ABC", "DEF", "stdout stderr", params).String(),
		winrm.NewSignalRequest(endpointURL, "ABC", "DEF", params).String(),
		winrm.NewDeleteShellRequest(endpointURL, "ABC", params).String(),
		"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Header/></s:Envelope>",
		"not xml",
		"",
	} {
		f.Add(seed)
	}
	h := winhost.New("dc01.lab.example", winhost.Options{Small: true})
	srv := NewServer(ResolverFunc(func(string) (*winhost.Host, bool) { return h, true }))
	defer srv.Close()
	f.Fuzz(func(t *testing.T, body string) {
		// Short operation timeouts keep a fuzzed Receive from waiting a minute.
		body = strings.ReplaceAll(body, "PT60S", "PT0.05S")
		req := httptest.NewRequest(http.MethodPost, "/wsman", strings.NewReader(body))
		req.Host = "dc01.lab.example:5985"
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { defer close(done); srv.ServeHTTP(rec, req) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("request hung: %.200q", body)
		}
		if rec.Code != 200 && rec.Code != 500 && rec.Code != 413 {
			t.Fatalf("status %d for %.200q", rec.Code, body)
		}
	})
}
