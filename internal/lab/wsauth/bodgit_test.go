package wsauth

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
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
	hc, tr, status := bodgitLogon(t, url, nil, false)
	if status != 200 {
		t.Fatalf("handshake: status %d", status)
	}
	return hc, tr
}

// bodgitLogon runs the handshake on an empty POST, as pywinrm and winrs do,
// optionally over TLS with channel binding, and returns the final status.
func bodgitLogon(t *testing.T, url string, tlsCfg *tls.Config, cbt bool) (*ntlmhttp.Client, *http.Transport, int) {
	t.Helper()
	nc, err := ntlmssp.NewClient(ntlmssp.SetUserInfo("svcwatch", "S3cret!pw"), ntlmssp.SetDomain("LAB"),
		ntlmssp.SetWorkstation("COLLECTOR"), ntlmssp.SetVersion(ntlmssp.DefaultVersion()))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{MaxConnsPerHost: 1, TLSClientConfig: tlsCfg}
	hc, err := ntlmhttp.NewClient(&http.Client{Timeout: 10 * time.Second, Transport: tr}, nc,
		ntlmhttp.Encryption(tlsCfg == nil), ntlmhttp.SendCBT(cbt))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/wsman", http.NoBody)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 && !nc.Complete() {
		t.Fatalf("handshake: 200 before NTLM completed")
	}
	return hc, tr, resp.StatusCode
}

// TestChannelBinding checks MsvAvChannelBindings as bodgit/ntlmssp computes
// them over HTTPS (RFC 5929 tls-server-end-point), in Windows' Relaxed and
// Strict CbtHardeningLevel.
func TestChannelBinding(t *testing.T) {
	pki := newTestPKI(t, "unused")
	serverCert, err := x509.ParseCertificate(pki.server.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	_, otherCert := selfSigned(t, "dc01.lab.example")
	tests := []struct {
		name      string
		cert      *x509.Certificate // what the lab believes its certificate is
		require   bool
		clientCBT bool
		want      int
	}{
		{"relaxed, binding matches", serverCert, false, true, 200},
		{"relaxed, binding for another certificate", otherCert, false, true, 401},
		{"relaxed, no binding", serverCert, false, false, 200},
		{"relaxed, certificate unknown to the lab", nil, false, true, 200},
		{"strict, binding matches", serverCert, true, true, 200},
		{"strict, no binding", serverCert, true, false, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := labOptions(&attempts{})
			o.RequireChannelBinding = tc.require
			o.ServerCertificate = tc.cert
			a := New(o)
			srv := startTLS(t, a, &tls.Config{Certificates: []tls.Certificate{pki.server}})
			tlsCfg := &tls.Config{RootCAs: pki.caPool, ServerName: "dc01.lab.example"}
			_, tr, status := bodgitLogon(t, srv.URL, tlsCfg, tc.clientCBT)
			tr.CloseIdleConnections()
			if status != tc.want {
				t.Errorf("status %d, want %d", status, tc.want)
			}
		})
	}
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
