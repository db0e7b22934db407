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

// bodgitSession logs on with bodgit/ntlmssp's HTTP client on a new connection.
func bodgitSession(t *testing.T, url string) (*ntlmhttp.Client, *http.Transport) {
	t.Helper()
	nc, err := ntlmssp.NewClient(ntlmssp.SetUserInfo("svcwatch", "S3cret!pw"), ntlmssp.SetDomain("LAB"),
		ntlmssp.SetWorkstation("COLLECTOR"), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{MaxConnsPerHost: 1}
	hc, err := ntlmhttp.NewClient(&http.Client{Timeout: 10 * time.Second, Transport: tr}, nc, ntlmhttp.Encryption(true))
	if err != nil {
		t.Fatal(err)
	}
	// The handshake on an empty POST, as pywinrm and winrs do it.
	req, _ := http.NewRequest(http.MethodPost, url+"/wsman", http.NoBody)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !nc.Complete() {
		t.Fatalf("handshake: status %d complete %v", resp.StatusCode, nc.Complete())
	}
	return hc, tr
}

// TestSealedHTTPWithBodgitClient runs the sealing path against
// bodgit/ntlmssp (the NTLM client masterzen/winrm encrypts with), a second
// client we did not write, on a plain-HTTP listener that requires sealing.
//
// bodgit frames line by line (toWSMV/fromWSMV), which corrupts a small
// fraction of random ciphertexts: a ciphertext line that looks like a MIME
// header, or one ending in '\n' just before the closing boundary (Windows'
// own layout has no CRLF there). Such a message is retried on a new logon;
// every message must get through and the server must never be the one that
// mis-frames (its framing is checked by our parser and the fixtures).
func TestSealedHTTPWithBodgitClient(t *testing.T) {
	rec := &attempts{}
	_, srv := newSealedServer(t, rec)
	hc, tr := bodgitSession(t, srv.URL)
	defer func() { tr.CloseIdleConnections() }()
	logons := 1
	for i := range 5 {
		msg := fmt.Sprintf("<s:Envelope>bodgit %d</s:Envelope>", i)
		var answer string
		for try := 0; ; try++ {
			if try == 5 {
				t.Fatalf("message %d failed %d times", i, try)
			}
			// bodgit's wrap replaces the body but not ContentLength; an opaque
			// body makes net/http send it chunked instead.
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/wsman", io.NopCloser(bytes.NewReader([]byte(msg))))
			req.Header.Set("Content-Type", soapContentType)
			resp, err := hc.Do(req)
			if err == nil && resp.StatusCode == 200 {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/soap+xml") {
					t.Errorf("unsealed Content-Type %q", resp.Header.Get("Content-Type"))
				}
				answer = string(b)
				break
			}
			if err == nil {
				resp.Body.Close()
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			t.Logf("message %d try %d: %v (bodgit framing); logging on again", i, try, err)
			tr.CloseIdleConnections()
			hc, tr = bodgitSession(t, srv.URL)
			logons++
		}
		want := fmt.Sprintf(`user=LAB\svcwatch method=ntlm type=%s body=%s`, soapContentType, msg)
		if answer != want {
			t.Fatalf("message %d: answer %q, want %q", i, answer, want)
		}
	}
	if rec.count(true) != logons {
		t.Errorf("%d successful logons recorded, %d made", rec.count(true), logons)
	}
}
