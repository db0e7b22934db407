package wsauth

import (
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

const (
	testRealm = "LAB.EXAMPLE"
	testSPN   = "HTTP/dc01.lab.example"
)

func serviceKeytab(t *testing.T, password string) *keytab.Keytab {
	t.Helper()
	kt := keytab.New()
	if err := kt.AddEntry(testSPN, testRealm, password, time.Now(), 1, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		t.Fatal(err)
	}
	return kt
}

// apReq makes a Kerberos AP-REQ for testSPN as a KDC would have issued it,
// the ticket encrypted with the key in kdcKeytab (no KDC needed).
func apReq(t *testing.T, kdcKeytab *keytab.Keytab) spnego.KRB5Token {
	t.Helper()
	now := time.Now().UTC()
	cname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "svcwatch")
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_INST, testSPN)
	tkt, key, err := messages.NewTicket(cname, testRealm, sname, testRealm, asn1.BitString{Bytes: make([]byte, 4), BitLength: 32},
		kdcKeytab, etypeID.AES256_CTS_HMAC_SHA1_96, 1, now, now, now.Add(time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword("svcwatch", testRealm, "unused", config.New())
	tok, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, []int{1, 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func negotiateHeader(t *testing.T, k spnego.KRB5Token) string {
	t.Helper()
	mt, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	st := spnego.SPNEGOToken{Init: true, NegTokenInit: spnego.NegTokenInit{
		MechTypes: []asn1.ObjectIdentifier{k.OID}, MechTokenBytes: mt,
	}}
	b, err := st.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return "Negotiate " + base64.StdEncoding.EncodeToString(b)
}

func kerberosHeader(t *testing.T, k spnego.KRB5Token) string {
	t.Helper()
	mt, err := k.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return "Kerberos " + base64.StdEncoding.EncodeToString(mt)
}

func TestKerberos(t *testing.T) {
	good := serviceKeytab(t, "svc-key-password")
	other := serviceKeytab(t, "another-password")
	tests := []struct {
		name       string
		kerb       *KerberosOptions
		header     func(t *testing.T) string
		wantStatus int
		wantUser   string
		wantAuth   string // WWW-Authenticate prefix
	}{
		{"spnego negotiate", &KerberosOptions{Keytab: good, ServicePrincipal: testSPN},
			func(t *testing.T) string { return negotiateHeader(t, apReq(t, good)) }, 200, "svcwatch@" + testRealm, "Negotiate oRQw"},
		{"kerberos scheme, bare token", &KerberosOptions{Keytab: good},
			func(t *testing.T) string { return kerberosHeader(t, apReq(t, good)) }, 200, "svcwatch@" + testRealm, ""},
		{"ticket for another key", &KerberosOptions{Keytab: good},
			func(t *testing.T) string { return negotiateHeader(t, apReq(t, other)) }, 401, "", "Negotiate"},
		{"no keytab", &KerberosOptions{},
			func(t *testing.T) string { return negotiateHeader(t, apReq(t, good)) }, 401, "", "Negotiate oQcwBaADCgEC"},
		{"kerberos disabled", nil,
			func(t *testing.T) string { return negotiateHeader(t, apReq(t, good)) }, 401, "", "Negotiate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := labOptions(&attempts{})
			o.Kerberos = tc.kerb
			a := New(o)
			srv := startTLS(t, a, nil)
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/wsman", strings.NewReader("<k/>"))
			req.Header.Set("Authorization", tc.header(t))
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.wantStatus, body)
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, tc.wantAuth) {
				t.Errorf("WWW-Authenticate %q, want prefix %q", got, tc.wantAuth)
			}
			if tc.wantStatus == 200 && !strings.HasPrefix(string(body), "user="+tc.wantUser+" method=kerberos ") {
				t.Errorf("body %q", body)
			}
			if tc.name == "no keytab" && !strings.Contains(string(body), "no keytab") {
				t.Errorf("no-keytab answer does not say why: %q", body)
			}
		})
	}

	t.Run("replayed authenticator", func(t *testing.T) {
		o := labOptions(&attempts{})
		o.Kerberos = &KerberosOptions{Keytab: good}
		a := New(o)
		srv := startTLS(t, a, nil)
		h := negotiateHeader(t, apReq(t, good))
		for i, want := range []int{200, 401} {
			tr := &http.Transport{TLSClientConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/wsman", strings.NewReader("<k/>"))
			req.Header.Set("Authorization", h)
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			tr.CloseIdleConnections()
			if resp.StatusCode != want {
				t.Errorf("attempt %d: status %d, want %d", i, resp.StatusCode, want)
			}
		}
	})
}
