package wsauth

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bodgit/ntlmssp"
	ntlmhttp "github.com/bodgit/ntlmssp/http"
)

// TestSealedHTTPWithBodgitClient runs the sealing path against
// bodgit/ntlmssp (the NTLM client masterzen/winrm encrypts with), a second
// client we did not write, on a plain-HTTP listener that requires sealing.
func TestSealedHTTPWithBodgitClient(t *testing.T) {
	rec := &attempts{}
	a, srv := newSealedServer(t, rec)

	nc, err := ntlmssp.NewClient(ntlmssp.SetUserInfo("svcwatch", "S3cret!pw"), ntlmssp.SetDomain("LAB"),
		ntlmssp.SetWorkstation("COLLECTOR"), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc, err := ntlmhttp.NewClient(&http.Client{Timeout: 10 * time.Second, Transport: tr}, nc, ntlmhttp.Encryption(true))
	if err != nil {
		t.Fatal(err)
	}

	// The handshake on an empty POST, as pywinrm and winrs do it.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/wsman", http.NoBody)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !nc.Complete() {
		t.Fatalf("handshake: status %d complete %v", resp.StatusCode, nc.Complete())
	}

	for i := range 3 {
		msg := fmt.Sprintf("<s:Envelope>bodgit %d</s:Envelope>", i)
		// bodgit's wrap replaces the body but not ContentLength; an opaque
		// body makes net/http send it chunked instead.
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/wsman", io.NopCloser(bytes.NewReader([]byte(msg))))
		req.Header.Set("Content-Type", soapContentType)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("message %d: status %d", i, resp.StatusCode)
		}
		want := fmt.Sprintf(`user=LAB\svcwatch method=ntlm type=%s body=%s`, soapContentType, msg)
		if string(body) != want {
			t.Fatalf("message %d: answer %q, want %q", i, body, want)
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/soap+xml") {
			t.Errorf("unsealed Content-Type %q", resp.Header.Get("Content-Type"))
		}
	}
	if rec.count(true) != 1 || a.Contexts() != 1 {
		t.Errorf("handshakes %d contexts %d", rec.count(true), a.Contexts())
	}
}
