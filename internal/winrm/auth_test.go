package winrm

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/lab/winhost"
	"github.com/svcwatch/svcwatch/internal/lab/wsauth"
)

const testRealm = "LAB.EXAMPLE"

// fakeKDC issues service tickets the way a KDC would (encrypted with the
// service's keytab), counting requests; there is no network KDC in tests.
type fakeKDC struct {
	mu       sync.Mutex
	kt       *keytab.Keytab
	requests map[string]int
	logins   int
}

func (k *fakeKDC) GetServiceTicket(spn string) (messages.Ticket, types.EncryptionKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.requests[spn]++
	now := time.Now().UTC()
	return messages.NewTicket(
		types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "svcwatch"), testRealm,
		types.NewPrincipalName(nametype.KRB_NT_SRV_INST, spn), testRealm,
		asn1.BitString{Bytes: make([]byte, 4), BitLength: 32},
		k.kt, etypeID.AES256_CTS_HMAC_SHA1_96, 1, now, now, now.Add(10*time.Hour), now.Add(10*time.Hour))
}

func TestKerberosAgainstLab(t *testing.T) {
	dc1 := winhost.New("dc01.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	dc2 := winhost.New("dc02.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	kt := keytab.New()
	for _, spn := range []string{"HTTP/dc01.lab.example", "HTTP/dc02.lab.example"} {
		if err := kt.AddEntry(spn, testRealm, "service-secret-"+spn, time.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
			t.Fatal(err)
		}
	}
	addr, ca := labServerWith(t, true, func(o *wsauth.Options, _ *tls.Config) {
		o.Kerberos = &wsauth.KerberosOptions{Keytab: kt}
		o.Logger = newTestLogger(testWriter{t})
	}, dc1, dc2)

	krb5 := filepath.Join(t.TempDir(), "krb5.conf")
	conf := "[libdefaults]\n default_realm = LAB.EXAMPLE\n[realms]\n LAB.EXAMPLE = {\n  kdc = 127.0.0.1:1\n }\n"
	if err := os.WriteFile(krb5, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.WinRM{Scheme: "https", Auth: "kerberos", Username: "svcwatch", KRB5Conf: krb5,
		CAFile: ca, TLSServerName: "example.com", ConnectTo: addr, Timeout: 10 * time.Second}
	c, err := New(cfg, "user-password", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ka := c.tr.rt.(*httpRoundTripper).auth.(*kerberosAuth)
	if _, ok := ka.tickets.(*client.Client); !ok {
		t.Fatalf("tickets come from %T, want the gokrb5 client (its cache keeps tickets until expiry)", ka.tickets)
	}
	kdc := &fakeKDC{kt: kt, requests: map[string]int{}}
	ka.tickets = kdc
	ka.login = func() error { kdc.logins++; return nil }

	for i := 0; i < 2; i++ {
		for _, h := range []string{"dc01.lab.example", "dc02.lab.example"} {
			if _, err := c.Collect(context.Background(), inventory.Host{Name: h}, inventory.CollectRequest{MaxEvents: 10}); err != nil {
				t.Fatalf("poll %d of %s: %v", i, h, err)
			}
		}
	}
	if kdc.logins != 1 {
		t.Errorf("%d KDC logins, want 1 per collector", kdc.logins)
	}
	for _, spn := range []string{"HTTP/dc01.lab.example", "HTTP/dc02.lab.example"} {
		if kdc.requests[spn] != 1 {
			t.Errorf("%s: %d service tickets for 2 polls (many SOAP messages), want 1", spn, kdc.requests[spn])
		}
	}

	// A ticket for a key the host does not have is refused: 401 after a
	// valid login reads as "no rights".
	other := keytab.New()
	_ = other.AddEntry("HTTP/dc01.lab.example", testRealm, "another-secret", time.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	c2, err := New(cfg, "user-password", nil)
	if err != nil {
		t.Fatal(err)
	}
	ka2 := c2.tr.rt.(*httpRoundTripper).auth.(*kerberosAuth)
	ka2.tickets = &fakeKDC{kt: other, requests: map[string]int{}}
	ka2.login = func() error { return nil }
	_, err = c2.Collect(context.Background(), inventory.Host{Name: "dc01.lab.example"}, inventory.CollectRequest{MaxEvents: 10})
	if err == nil || !(errorsIs(err, ErrAuth) && errorsIs(err, ErrAccessDenied)) {
		t.Fatalf("wrong service key: got %v", err)
	}
	if len(ka2.cache) != 0 {
		t.Errorf("a refused ticket stays cached: %v", ka2.cache)
	}
}

func TestCertificateAgainstLab(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "svcwatch test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "svcwatch"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	_ = os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	_ = os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	dc := winhost.New("dc01.lab.example", winhost.Options{Role: winhost.RoleDC, Small: true})
	addr, ca := labServerWith(t, true, func(o *wsauth.Options, tc *tls.Config) {
		o.Certificates = map[string]string{"svcwatch": `LAB\svcwatch`}
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		tc.ClientCAs = pool
	}, dc)
	cfg := config.WinRM{Scheme: "https", Auth: "certificate", CertFile: certFile, KeyFile: keyFile,
		CAFile: ca, TLSServerName: "example.com", ConnectTo: addr, Timeout: 10 * time.Second}
	c, err := New(cfg, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	obs, err := c.Collect(context.Background(), inventory.Host{Name: "dc01.lab.example"}, inventory.CollectRequest{MaxEvents: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Services) == 0 {
		t.Fatal("no inventory")
	}
}

func TestKerberosPrincipal(t *testing.T) {
	krb5 := filepath.Join(t.TempDir(), "krb5.conf")
	if err := os.WriteFile(krb5, []byte("[libdefaults]\n default_realm = LAB.EXAMPLE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ user, realm, wantUser, wantRealm string }{
		{"svcwatch", "", "svcwatch", "LAB.EXAMPLE"},
		{`LAB\svcwatch`, "", "svcwatch", "LAB.EXAMPLE"},
		{"svcwatch@corp.example", "", "svcwatch", "CORP.EXAMPLE"},
		{"svcwatch@corp.example", "other.example", "svcwatch", "OTHER.EXAMPLE"},
	}
	for _, tt := range tests {
		ka, err := newKerberosAuth(config.WinRM{Username: tt.user, Realm: tt.realm, KRB5Conf: krb5}, "pw")
		if err != nil {
			t.Fatal(err)
		}
		if got := ka.cl.Credentials.UserName(); got != tt.wantUser || ka.cl.Credentials.Realm() != tt.wantRealm {
			t.Errorf("%q: principal %s@%s, want %s@%s", tt.user, got, ka.cl.Credentials.Realm(), tt.wantUser, tt.wantRealm)
		}
	}
	for _, bad := range []config.WinRM{{Username: "u"}, {Username: "u", KRB5Conf: krb5, KeytabFile: "/nonexistent"}, {KRB5Conf: krb5}} {
		if _, err := newKerberosAuth(bad, "pw"); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := newKerberosAuth(config.WinRM{Username: "u", KRB5Conf: krb5}, ""); err == nil || !strings.Contains(err.Error(), "keytab") {
		t.Errorf("no password and no keytab: %v", err)
	}
}

// A refused Kerberos login is not retried for every host: one bad password
// would otherwise cost one failed pre-authentication per host per cycle and
// lock the account out.
func TestKerberosRefusedLoginHoldsOff(t *testing.T) {
	krb5 := filepath.Join(t.TempDir(), "krb5.conf")
	conf := "[libdefaults]\n default_realm = LAB.EXAMPLE\n[realms]\n LAB.EXAMPLE = {\n  kdc = 127.0.0.1:1\n }\n"
	if err := os.WriteFile(krb5, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ka, err := newKerberosAuth(config.WinRM{Auth: "kerberos", Username: "svcwatch", KRB5Conf: krb5}, "wrong-password")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)
	ka.now = func() time.Time { return now }
	logins := 0
	ka.login = func() error { logins++; return errors.New("KDC_ERR_PREAUTH_FAILED") }
	for i, host := range []string{"dc01.lab.example", "dc02.lab.example", "dc03.lab.example"} {
		req, _ := http.NewRequest(http.MethodPost, "https://"+host+"/wsman", nil)
		err := ka.authorize(req, host)
		if !errorsIs(err, ErrAuth) || !strings.Contains(err.Error(), "KDC_ERR_PREAUTH_FAILED") {
			t.Fatalf("host %d: err = %v, want ErrAuth with the KDC's reason", i, err)
		}
		now = now.Add(time.Minute)
	}
	if logins != 1 {
		t.Errorf("%d logins for 3 hosts within the hold-off, want 1", logins)
	}
	now = now.Add(loginHoldOff)
	req, _ := http.NewRequest(http.MethodPost, "https://dc01.lab.example/wsman", nil)
	_ = ka.authorize(req, "dc01.lab.example")
	if logins != 2 {
		t.Errorf("%d logins after the hold-off, want 2", logins)
	}
	ka.close()
	_ = ka.authorize(req, "dc01.lab.example")
	if logins != 3 {
		t.Errorf("Close (a config reload) should allow a new login at once: %d logins", logins)
	}
}
