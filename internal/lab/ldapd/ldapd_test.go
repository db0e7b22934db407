package ldapd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

const (
	testBase = "DC=lab,DC=example"
	testPass = "W4tch-Lab-Passw0rd!"
)

// testTLS returns a server config with a fresh self-signed certificate for
// 127.0.0.1 and a client config that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dc1.lab.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"dc1.lab.example"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, ServerName: "dc1.lab.example", MinVersion: tls.VersionTLS12}
}

type fixture struct {
	srv    *Server
	client *tls.Config
}

func startLab(t *testing.T, mutate func(*Options)) fixture {
	t.Helper()
	d := NewDirectory(testBase)
	if err := SeedSambaLab(d); err != nil {
		t.Fatal(err)
	}
	stls, ctls := testTLS(t)
	opts := Options{TLS: stls, Users: map[string]string{"CN=svc-watch,CN=Users," + testBase: testPass}}
	if mutate != nil {
		mutate(&opts)
	}
	srv, err := Start(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return fixture{srv: srv, client: ctls}
}

func (f fixture) dial(t *testing.T) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(f.srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(5 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

func (f fixture) bound(t *testing.T) *ldap.Conn {
	t.Helper()
	c := f.dial(t)
	if err := c.Bind("svc-watch@lab.example", testPass); err != nil {
		t.Fatal(err)
	}
	return c
}

func cns(entries []*ldap.Entry) string {
	var out []string
	for _, e := range entries {
		cn, _, _ := strings.Cut(strings.TrimPrefix(e.DN, "CN="), ",")
		out = append(out, cn)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func resultCode(err error) uint16 {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0
}

func TestBind(t *testing.T) {
	f := startLab(t, nil)
	tests := []struct {
		name, user, pass string
		code             uint16
	}{
		{"dn", "CN=svc-watch,CN=Users," + testBase, testPass, 0},
		{"dn other case and spacing", "cn=SVC-WATCH, cn=users, dc=LAB, dc=example", testPass, 0},
		{"upn", "svc-watch@lab.example", testPass, 0},
		{"down-level", `LAB\svc-watch`, testPass, 0},
		{"wrong password", "svc-watch@lab.example", "nope", ldap.LDAPResultInvalidCredentials},
		{"unknown user", "CN=nobody,CN=Users," + testBase, testPass, ldap.LDAPResultInvalidCredentials},
		{"other account with same password", "CN=Administrator,CN=Users," + testBase, testPass, ldap.LDAPResultInvalidCredentials},
		{"other domain", `CORP\svc-watch`, testPass, ldap.LDAPResultInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.dial(t).Bind(tt.user, tt.pass)
			if got := resultCode(err); got != tt.code || (tt.code == 0 && err != nil) {
				t.Fatalf("bind %q: code %d (%v), want %d", tt.user, got, err, tt.code)
			}
		})
	}
}

func TestAnonymousRootDSEOnly(t *testing.T) {
	f := startLab(t, nil)
	c := f.dial(t)
	res, err := c.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"defaultNamingContext", "dnsHostName", "supportedControl", "supportedExtension"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	e := res.Entries[0]
	if got := e.GetAttributeValue("defaultNamingContext"); got != testBase {
		t.Errorf("defaultNamingContext %q", got)
	}
	if got := e.GetAttributeValue("dnsHostName"); got != "dc1.lab.example" {
		t.Errorf("dnsHostName %q", got)
	}
	if !slices.Contains(e.GetAttributeValues("supportedControl"), ldap.ControlTypePaging) ||
		!slices.Contains(e.GetAttributeValues("supportedExtension"), "1.3.6.1.4.1.1466.20037") {
		t.Errorf("rootDSE lacks paging or StartTLS: %v", e.Attributes)
	}
	_, err = c.Search(ldap.NewSearchRequest(testBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", nil, nil))
	if resultCode(err) != ldap.LDAPResultOperationsError {
		t.Fatalf("anonymous subtree search: %v, want operationsError", err)
	}
}

func TestSearchFilters(t *testing.T) {
	f := startLab(t, nil)
	c := f.bound(t)
	sidDA, _ := encodeSID(f.srv.Directory().DomainSID() + "-512")
	nest := "CN=Tier0 Servers,OU=Tier0," + testBase
	tests := []struct{ name, base, filter, want string }{
		{"writable DCs 803", testBase, "(&(objectCategory=computer)(userAccountControl:1.2.840.113556.1.4.803:=8192))", "DC1 DC2 DC3"},
		{"RODC 803", testBase, "(&(objectCategory=computer)(userAccountControl:1.2.840.113556.1.4.803:=67108864))", "RODC1"},
		{"disabled 803", testBase, "(&(objectCategory=computer)(userAccountControl:1.2.840.113556.1.4.803:=2))", "OLD-SRV-01"},
		{"804 bit-or", testBase, "(&(objectCategory=computer)(userAccountControl:1.2.840.113556.1.4.804:=67117056))", "DC1 DC2 DC3 RODC1"},
		{"nested 1941 memberOf", testBase, "(&(objectCategory=computer)(memberOf:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(nest) + "))", "OLD-SRV-01 SRV-APP-01 SRV-T0-01"},
		{"nested and enabled", testBase, "(&(objectCategory=computer)(memberOf:1.2.840.113556.1.4.1941:=" + nest + ")(!(userAccountControl:1.2.840.113556.1.4.803:=2)))", "SRV-APP-01 SRV-T0-01"},
		{"direct memberOf", testBase, "(memberOf=" + nest + ")", "OLD-SRV-01 SRV-T0-01 Tier0 Nested Servers"},
		{"member 1941 (groups of)", testBase, "(member:1.2.840.113556.1.4.1941:=CN=SRV-APP-01,CN=Computers," + testBase + ")", "Tier0 Nested Servers Tier0 Servers"},
		{"OU subtree", "OU=Tier0," + testBase, "(objectCategory=computer)", "SRV-T0-01 SRV-T0-02"},
		{"objectCategory full DN", testBase, "(objectCategory=CN=Computer,CN=Schema,CN=Configuration," + testBase + ")", "DC1 DC2 DC3 OLD-SRV-01 RODC1 SRV-APP-01 SRV-APP-02 SRV-T0-01 SRV-T0-02"},
		{"objectClass computer", testBase, "(objectClass=computer)", "DC1 DC2 DC3 OLD-SRV-01 RODC1 SRV-APP-01 SRV-APP-02 SRV-T0-01 SRV-T0-02"},
		{"objectCategory=user means Person", testBase, "(objectCategory=user)", "Administrator svc-watch"},
		{"substrings", testBase, "(dNSHostName=srv-*-0*.lab.example)", "SRV-APP-01 SRV-APP-02 SRV-T0-01 SRV-T0-02"},
		{"substrings any", testBase, "(operatingSystem=*2012*)", "OLD-SRV-01"},
		{"case-insensitive equality", testBase, "(operatingSystem=windows server 2016 STANDARD)", "SRV-APP-02"},
		{"or", testBase, "(|(cn=DC2)(cn=RODC1))", "DC2 RODC1"},
		{"not presence", "OU=Domain Controllers," + testBase, "(&(objectCategory=computer)(!(operatingSystem=Windows*)))", "DC1"},
		{">= numeric", testBase, "(&(objectCategory=computer)(userAccountControl>=532480))", "DC1 DC2 DC3 RODC1"},
		{"<= numeric", testBase, "(&(objectCategory=computer)(userAccountControl<=4096))", "SRV-APP-01 SRV-APP-02 SRV-T0-01 SRV-T0-02"},
		{"binary objectSid", testBase, "(objectSid=" + ldap.EscapeFilter(string(sidDA)) + ")", "Domain Admins"},
		{"builtin SID", testBase, "(objectSid=" + ldap.EscapeFilter(string(mustSID("S-1-5-32-544"))) + ")", "Administrators"},
		{"absent attribute is undefined under not", testBase, "(&(objectClass=group)(!(description=x)))", ""},
		{"in-chain privileged", testBase, "(&(sAMAccountName=Administrator)(memberOf:1.2.840.113556.1.4.1941:=CN=Administrators,CN=Builtin," + testBase + "))", "Administrator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Search(ldap.NewSearchRequest(tt.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
				tt.filter, []string{"dn"}, nil))
			if err != nil {
				t.Fatalf("%s: %v", tt.filter, err)
			}
			if got := cns(res.Entries); got != tt.want {
				t.Fatalf("%s:\n got [%s]\nwant [%s]", tt.filter, got, tt.want)
			}
		})
	}
}

func TestScopesAndErrors(t *testing.T) {
	f := startLab(t, nil)
	c := f.bound(t)
	search := func(base string, scope int, attrs ...string) (*ldap.SearchResult, error) {
		return c.Search(ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", attrs, nil))
	}
	res, err := search("OU=Tier0,"+testBase, ldap.ScopeSingleLevel)
	if err != nil || cns(res.Entries) != "SRV-T0-01 SRV-T0-02 Tier0 Nested Servers Tier0 Servers" {
		t.Fatalf("one-level: %v %s", err, cns(res.Entries))
	}
	res, err = search("CN=SRV-APP-01,CN=Computers,"+testBase, ldap.ScopeBaseObject, "memberOf", "objectSid")
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("base: %v", err)
	}
	e := res.Entries[0]
	if got := e.GetAttributeValues("memberOf"); len(got) != 1 || got[0] != "CN=Tier0 Nested Servers,OU=Tier0,"+testBase {
		t.Errorf("computed memberOf %v", got)
	}
	if sid, ok := decodeSID(e.GetRawAttributeValue("objectSid")); !ok || !strings.HasPrefix(sid, f.srv.Directory().DomainSID()+"-") {
		t.Errorf("objectSid %q", sid)
	}
	if len(e.Attributes) != 2 {
		t.Errorf("asked for 2 attributes, got %d", len(e.Attributes))
	}
	_, err = search("CN=Missing,OU=Tier0,"+testBase, ldap.ScopeBaseObject)
	if resultCode(err) != ldap.LDAPResultNoSuchObject {
		t.Fatalf("missing base: %v, want noSuchObject", err)
	}
	if le := (*ldap.Error)(nil); errors.As(err, &le) && le.MatchedDN != "OU=Tier0,"+testBase {
		t.Errorf("matchedDN %q", le.MatchedDN)
	}
	_, err = c.Search(ldap.NewSearchRequest(testBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false, "(objectClass=computer)", nil, nil))
	if resultCode(err) != ldap.LDAPResultSizeLimitExceeded {
		t.Fatalf("size limit 2: %v", err)
	}
	_, err = c.Search(ldap.NewSearchRequest(testBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=computer)", nil,
		[]ldap.Control{ldap.NewControlString("1.2.3.4.5", true, "")}))
	if resultCode(err) != ldap.LDAPResultUnavailableCriticalExtension {
		t.Fatalf("critical unknown control: %v", err)
	}
	if err := c.Add(ldap.NewAddRequest("CN=x,"+testBase, nil)); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
		t.Fatalf("add over LDAP: %v", err)
	}
}

func TestPaging(t *testing.T) {
	f := startLab(t, func(o *Options) { o.MaxPageSize = 4 })
	c := f.bound(t)
	req := func() *ldap.SearchRequest {
		return ldap.NewSearchRequest(testBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(objectCategory=computer)", []string{"dn"}, nil)
	}
	if _, err := c.Search(req()); resultCode(err) != ldap.LDAPResultSizeLimitExceeded {
		t.Fatalf("unpaged search over MaxPageSize: %v, want sizeLimitExceeded", err)
	}
	all, err := c.SearchWithPaging(req(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := cns(all.Entries); got != "DC1 DC2 DC3 OLD-SRV-01 RODC1 SRV-APP-01 SRV-APP-02 SRV-T0-01 SRV-T0-02" {
		t.Fatalf("paged: %s", got)
	}
	// count the pages by hand: 9 entries in pages of 2
	paging := ldap.NewControlPaging(2)
	pages := 0
	for {
		r := req()
		r.Controls = []ldap.Control{paging}
		res, err := c.Search(r)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(res.Entries) > 2 {
			t.Fatalf("page of %d", len(res.Entries))
		}
		ctl, _ := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if ctl == nil || len(ctl.Cookie) == 0 {
			break
		}
		paging.SetCookie(ctl.Cookie)
	}
	if pages != 5 {
		t.Fatalf("%d pages, want 5", pages)
	}
	bad := ldap.NewControlPaging(2)
	bad.SetCookie([]byte("forged"))
	r := req()
	r.Controls = []ldap.Control{bad}
	if _, err := c.Search(r); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
		t.Fatalf("forged cookie: %v", err)
	}
}

func TestTLS(t *testing.T) {
	f := startLab(t, func(o *Options) { o.RequireTLSForSimpleBind = true })
	c := f.dial(t)
	if err := c.Bind("svc-watch@lab.example", testPass); resultCode(err) != ldap.LDAPResultStrongAuthRequired {
		t.Fatalf("plain simple bind with TLS required: %v", err)
	}
	if err := c.StartTLS(f.client); err != nil {
		t.Fatal(err)
	}
	if err := c.Bind("svc-watch@lab.example", testPass); err != nil {
		t.Fatalf("bind after StartTLS: %v", err)
	}
	lc, err := ldap.DialURL(f.srv.LDAPSURL(), ldap.DialWithTLSConfig(f.client))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	if err := lc.Bind(`LAB\svc-watch`, testPass); err != nil {
		t.Fatalf("LDAPS bind: %v", err)
	}
	res, err := lc.Search(ldap.NewSearchRequest(testBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(cn=DC2)", []string{"dNSHostName"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("dNSHostName") != "dc2.lab.example" {
		t.Fatalf("search over LDAPS: %v", err)
	}
	// StartTLS without a TLS config on the server
	plain, err := Start(NewDirectory(testBase), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pc, err := ldap.DialURL(plain.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := pc.StartTLS(f.client); err == nil {
		t.Fatal("StartTLS succeeded on a server without TLS")
	}
}

func TestNTLMBind(t *testing.T) {
	f := startLab(t, func(o *Options) { o.Users = map[string]string{`LAB\svc-watch`: testPass} })
	tests := []struct {
		name, domain, user, pass string
		ok                       bool
	}{
		{"down-level name", "LAB", `LAB\svc-watch`, testPass, true},
		{"upn", "", "svc-watch@lab.example", testPass, true},
		{"wrong password", "LAB", `LAB\svc-watch`, "wrong", false},
		{"unknown user", "LAB", `LAB\mallory`, testPass, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.dial(t)
			err := c.NTLMBind(tt.domain, tt.user, tt.pass)
			if tt.ok && err != nil {
				t.Fatalf("NTLM bind: %v", err)
			}
			if !tt.ok && resultCode(err) != ldap.LDAPResultInvalidCredentials {
				t.Fatalf("NTLM bind: %v, want invalidCredentials", err)
			}
			if tt.ok {
				if _, err := c.Search(ldap.NewSearchRequest(testBase, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil)); err != nil {
					t.Fatalf("search after NTLM bind: %v", err)
				}
			}
		})
	}
}

func TestDirectoryMutations(t *testing.T) {
	d := NewDirectory(testBase)
	if err := SeedSambaLab(d); err != nil {
		t.Fatal(err)
	}
	if err := d.Add("CN=DC2,OU=Domain Controllers,"+testBase, nil); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate add: %v", err)
	}
	if err := d.Add("CN=X,OU=Nowhere,"+testBase, nil); !errors.Is(err, ErrNoParent) {
		t.Errorf("orphan add: %v", err)
	}
	if err := d.Add("CN=X,DC=other", nil); !errors.Is(err, ErrNoParent) {
		t.Errorf("add outside base: %v", err)
	}
	if err := d.Delete("OU=Tier0," + testBase); err == nil {
		t.Error("deleted a non-leaf")
	}
	if err := d.Delete("CN=SRV-T0-01,OU=Tier0," + testBase); err != nil {
		t.Fatal(err)
	}
	srv, err := Start(d, Options{Users: map[string]string{"svc-watch@lab.example": testPass}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, err := ldap.DialURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind("CN=svc-watch,CN=Users,"+testBase, testPass); err != nil {
		t.Fatalf("bind by DN with the Users key a UPN: %v", err)
	}
	res, err := c.Search(ldap.NewSearchRequest("CN=Tier0 Servers,OU=Tier0,"+testBase, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", []string{"member"}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if m := res.Entries[0].GetAttributeValues("member"); len(m) != 2 {
		t.Fatalf("member values after delete: %v", m)
	}
	if err := d.Replace("CN=SRV-APP-02,CN=Computers,"+testBase, "userAccountControl", "532480"); err != nil {
		t.Fatal(err)
	}
	res, err = c.Search(ldap.NewSearchRequest(testBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(userAccountControl:1.2.840.113556.1.4.803:=8192)", []string{"dn"}, nil))
	if err != nil || cns(res.Entries) != "DC1 DC2 DC3 SRV-APP-02" {
		t.Fatalf("after Replace: %v %s", err, cns(res.Entries))
	}
}

func TestSIDCodec(t *testing.T) {
	for _, s := range []string{"S-1-5-18", "S-1-5-32-544", "S-1-5-21-1-2-3-1104", "S-1-0-0"} {
		b, err := encodeSID(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := decodeSID(b); !ok || got != s {
			t.Errorf("round trip %s: %s", s, got)
		}
	}
	for _, s := range []string{"", "S-1", "X-1-5", "S-1-5-x", "S-1-5-99999999999"} {
		if _, err := encodeSID(s); err == nil {
			t.Errorf("encodeSID(%q) accepted", s)
		}
	}
}
