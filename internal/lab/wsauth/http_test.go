package wsauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	ntlmssp "github.com/Azure/go-ntlmssp"
)

// echoSOAP stands in for the WS-Management layer: it answers with the user
// and the request body it saw.
var echoSOAP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", soapContentType)
	fmt.Fprintf(w, "user=%s method=%s type=%s body=%s", User(r.Context()), Method(r.Context()), r.Header.Get("Content-Type"), body)
})

type attempts struct {
	mu  sync.Mutex
	all []Attempt
}

func (a *attempts) record(at Attempt) {
	a.mu.Lock()
	a.all = append(a.all, at)
	a.mu.Unlock()
}

func (a *attempts) count(ok bool) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, at := range a.all {
		if at.OK == ok {
			n++
		}
	}
	return n
}

func labOptions(rec *attempts) Options {
	return Options{
		Users: map[string]string{
			`LAB\svcwatch`:        "S3cret!pw",
			"auditor@lab.example": "Aud1tor#",
			"localadmin":          "L0cal!",
		},
		Domain: "LAB", DNSDomain: "lab.example", ServerName: "DC01",
		Basic:     true,
		OnAttempt: rec.record,
	}
}

// startTLS serves a.Wrap(echoSOAP) over HTTPS on 127.0.0.1.
func startTLS(t *testing.T, a *Auth, tlsCfg *tls.Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(a.Wrap(echoSOAP))
	a.Configure(srv.Config)
	if tlsCfg != nil {
		srv.TLS = tlsCfg
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, c *http.Client, url, user, password, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/wsman", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", soapContentType)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestHTTPSNTLMWithGoNTLMSSP authenticates Azure/go-ntlmssp's Negotiator,
// an NTLM client we did not write, against the server end to end.
func TestHTTPSNTLMWithGoNTLMSSP(t *testing.T) {
	tests := []struct {
		name, login, password, wantUser string
		wantStatus                      int
	}{
		{"netbios domain", `LAB\svcwatch`, "S3cret!pw", `LAB\svcwatch`, 200},
		{"lower-case domain and user", `lab\SVCWATCH`, "S3cret!pw", `LAB\svcwatch`, 200},
		{"upn", "auditor@lab.example", "Aud1tor#", "auditor@lab.example", 200},
		{"bare name", "localadmin", "L0cal!", "localadmin", 200},
		{"bare name of a domain user", "svcwatch", "S3cret!pw", `LAB\svcwatch`, 200},
		{"wrong password", `LAB\svcwatch`, "s3cret!pw", "", 401},
		{"unknown user", `LAB\nobody`, "S3cret!pw", "", 401},
		{"foreign domain", `OTHER\svcwatch`, "S3cret!pw", "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &attempts{}
			a := New(labOptions(rec))
			srv := startTLS(t, a, nil)
			client := &http.Client{Timeout: 10 * time.Second, Transport: ntlmssp.Negotiator{RoundTripper: srv.Client().Transport}}
			resp, body := post(t, client, srv.URL, tc.login, tc.password, "<s:Envelope>one</s:Envelope>")
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus != 200 {
				if body != "" {
					t.Errorf("401 body %q, want empty", body)
				}
				if got := resp.Header.Values("WWW-Authenticate"); len(got) != 2 || got[0] != "Negotiate" || got[1] != `Basic realm="WSMAN"` {
					t.Errorf("WWW-Authenticate %q", got)
				}
				if rec.count(false) != 1 || rec.count(true) != 0 {
					t.Errorf("attempts: %+v", rec.all)
				}
				return
			}
			want := fmt.Sprintf("user=%s method=ntlm type=%s body=<s:Envelope>one</s:Envelope>", tc.wantUser, soapContentType)
			if body != want {
				t.Fatalf("body %q, want %q", body, want)
			}
			// Further requests on the keep-alive connection reuse the context.
			for i := range 3 {
				_, body := post(t, client, srv.URL, tc.login, tc.password, fmt.Sprintf("<m>%d</m>", i))
				if !strings.HasSuffix(body, fmt.Sprintf("body=<m>%d</m>", i)) {
					t.Fatalf("request %d: body %q", i, body)
				}
			}
			if n := rec.count(true); n != 1 {
				t.Errorf("%d handshakes for 4 requests on one connection, want 1", n)
			}
		})
	}
}

func TestUnauthenticatedChallengeHeaders(t *testing.T) {
	tests := []struct {
		name string
		opts func(*Options)
		tls  bool
		want []string
	}{
		{"https with basic", func(*Options) {}, true, []string{"Negotiate", `Basic realm="WSMAN"`}},
		{"http hides basic", func(*Options) {}, false, []string{"Negotiate"}},
		{"kerberos", func(o *Options) { o.Basic = false; o.Kerberos = &KerberosOptions{} }, true, []string{"Negotiate", "Kerberos"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := labOptions(&attempts{})
			tc.opts(&o)
			a := New(o)
			srv := httptest.NewUnstartedServer(a.Wrap(echoSOAP))
			a.Configure(srv.Config)
			if tc.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			resp, body := post(t, srv.Client(), srv.URL, "", "", "<x/>")
			if resp.StatusCode != 401 || body != "" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			got := resp.Header.Values("WWW-Authenticate")
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBasic(t *testing.T) {
	tests := []struct {
		name, user, password string
		tls, overHTTP        bool
		want                 int
		wantUser             string
	}{
		{"https", `LAB\svcwatch`, "S3cret!pw", true, false, 200, `LAB\svcwatch`},
		{"https upn", "auditor@lab.example", "Aud1tor#", true, false, 200, "auditor@lab.example"},
		{"https wrong password", `LAB\svcwatch`, "nope", true, false, 401, ""},
		{"https unknown user", "ghost", "S3cret!pw", true, false, 401, ""},
		{"http refused", `LAB\svcwatch`, "S3cret!pw", false, false, 401, ""},
		{"http allowed when told", `LAB\svcwatch`, "S3cret!pw", false, true, 200, `LAB\svcwatch`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := labOptions(&attempts{})
			o.BasicOverHTTP = tc.overHTTP
			a := New(o)
			srv := httptest.NewUnstartedServer(a.Wrap(echoSOAP))
			a.Configure(srv.Config)
			if tc.tls {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			resp, body := post(t, srv.Client(), srv.URL, tc.user, tc.password, "<b/>")
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 200 && !strings.HasPrefix(body, "user="+tc.wantUser+" method=basic ") {
				t.Errorf("body %q", body)
			}
			// Basic is per request: a following request without credentials is challenged.
			if tc.want == 200 {
				resp, _ := post(t, srv.Client(), srv.URL, "", "", "<b/>")
				if resp.StatusCode != 401 {
					t.Errorf("request without credentials after Basic: %d", resp.StatusCode)
				}
			}
		})
	}
}

// testPKI is a CA with a server and client certificates, made per test run.
type testPKI struct {
	caPool *x509.CertPool
	server tls.Certificate
	client map[string]tls.Certificate
	rogue  tls.Certificate // signed by another CA
}

func newTestPKI(t *testing.T, clientCNs ...string) *testPKI {
	t.Helper()
	caKey, caCert := selfSigned(t, "svcwatch lab CA")
	p := &testPKI{caPool: x509.NewCertPool(), client: map[string]tls.Certificate{}}
	p.caPool.AddCert(caCert)
	p.server = issue(t, caCert, caKey, "dc01.lab.example", x509.ExtKeyUsageServerAuth)
	for _, cn := range clientCNs {
		p.client[cn] = issue(t, caCert, caKey, cn, x509.ExtKeyUsageClientAuth)
	}
	otherKey, otherCert := selfSigned(t, "rogue CA")
	p.rogue = issue(t, otherCert, otherKey, clientCNs[0], x509.ExtKeyUsageClientAuth)
	return p
}

func selfSigned(t *testing.T, cn string) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, c
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: []string{cn}, IPAddresses: nil,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestClientCertificate(t *testing.T) {
	pki := newTestPKI(t, "svcwatch-collector", "unmapped-client")
	tests := []struct {
		name       string
		cert       *tls.Certificate
		header     string
		verifyInTL bool // TLS layer verifies (VerifyClientCertIfGiven) vs. wsauth with ClientCAs
		want       int
	}{
		{"mapped, tls verifies", ptr(pki.client["svcwatch-collector"]), CertificateAuthorization, true, 200},
		{"mapped, wsauth verifies", ptr(pki.client["svcwatch-collector"]), CertificateAuthorization, false, 200},
		{"unmapped", ptr(pki.client["unmapped-client"]), CertificateAuthorization, false, 401},
		{"rogue CA", &pki.rogue, CertificateAuthorization, false, 401},
		{"no certificate", nil, CertificateAuthorization, false, 401},
		{"certificate without the header", ptr(pki.client["svcwatch-collector"]), "", false, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := labOptions(&attempts{})
			o.Certificates = map[string]string{"svcwatch-collector": `LAB\svcwatch`}
			serverTLS := &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientAuth: tls.RequestClientCert}
			if tc.verifyInTL {
				serverTLS.ClientAuth = tls.VerifyClientCertIfGiven
				serverTLS.ClientCAs = pki.caPool
			} else {
				o.ClientCAs = pki.caPool
			}
			a := New(o)
			srv := startTLS(t, a, serverTLS)
			clientTLS := &tls.Config{RootCAs: pki.caPool, ServerName: "dc01.lab.example"}
			if tc.cert != nil {
				clientTLS.Certificates = []tls.Certificate{*tc.cert}
			}
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS}}
			defer c.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/wsman", strings.NewReader("<c/>"))
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 200 && !strings.HasPrefix(string(body), `user=LAB\svcwatch method=certificate `) {
				t.Errorf("body %q", body)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestLookupForms(t *testing.T) {
	a := New(labOptions(&attempts{}))
	tests := []struct{ user, domain, want string }{
		{"svcwatch", "LAB", `LAB\svcwatch`},
		{"SVCWATCH", "lab", `LAB\svcwatch`},
		{"svcwatch", "lab.example", `LAB\svcwatch`},
		{"svcwatch", "", `LAB\svcwatch`},
		{"svcwatch@lab.example", "", `LAB\svcwatch`},
		{"svcwatch@LAB", "", `LAB\svcwatch`},
		{"auditor", "LAB", "auditor@lab.example"},
		{"auditor@lab.example", "", "auditor@lab.example"},
		{"localadmin", "DC01", "localadmin"},
		{"localadmin", ".", "localadmin"},
		{"svcwatch", "OTHER", ""},
		{"svcwatch@other.example", "", ""},
		{"", "LAB", ""},
	}
	for _, tc := range tests {
		key, _, ok := a.lookupNTLM(tc.user, tc.domain)
		if key != tc.want || ok != (tc.want != "") {
			t.Errorf("lookup(%q, %q) = %q %v, want %q", tc.user, tc.domain, key, ok, tc.want)
		}
	}
}

// TestPlainNTLMOnSealingListener: an NTLM client that cannot seal (go-ntlmssp)
// gets 401 from a listener that requires sealing, as from Windows with
// AllowUnencrypted=false.
func TestPlainNTLMOnSealingListener(t *testing.T) {
	rec := &attempts{}
	o := labOptions(rec)
	o.RequireSealing = true
	a := New(o)
	srv := httptest.NewUnstartedServer(a.Wrap(echoSOAP))
	a.Configure(srv.Config)
	srv.Start()
	defer srv.Close()
	client := &http.Client{Timeout: 10 * time.Second, Transport: ntlmssp.Negotiator{RoundTripper: srv.Client().Transport}}
	resp, body := post(t, client, srv.URL, `LAB\svcwatch`, "S3cret!pw", "<s:Envelope/>")
	if resp.StatusCode != 401 || body != "" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	// The logon itself succeeds; the unsealed message is what is refused.
	if rec.count(true) != 1 || rec.count(false) != 1 || !strings.Contains(fmt.Sprint(rec.all[1].Err), "unencrypted") {
		t.Errorf("attempts %+v", rec.all)
	}
}
