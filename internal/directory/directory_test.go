package directory

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
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/lab/ldapd"
	"github.com/svcwatch/svcwatch/internal/testutil"
)

const (
	labBase = "DC=lab,DC=example"
	labDNS  = "lab.example"
	labPass = "W4tch-Lab-Passw0rd!"
	labUser = "svc-watch@lab.example"
)

type lab struct {
	srv    *ldapd.Server
	dir    *ldapd.Directory
	caFile string
}

// writeCA creates a CA and a server certificate for dc1.lab.example and
// 127.0.0.1; it returns the server TLS config and the CA PEM path.
func writeCA(t *testing.T) (*tls.Config, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lab test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dc1.lab.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"dc1.lab.example"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, path
}

func startLab(t *testing.T, mutate func(*ldapd.Options)) lab {
	t.Helper()
	dir := ldapd.NewDirectory(labBase)
	if err := ldapd.SeedSambaLab(dir); err != nil {
		t.Fatal(err)
	}
	stls, ca := writeCA(t)
	opts := ldapd.Options{TLS: stls, Users: map[string]string{`LAB\svc-watch`: labPass}}
	if mutate != nil {
		mutate(&opts)
	}
	srv, err := ldapd.Start(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return lab{srv: srv, dir: dir, caFile: ca}
}

func (l lab) config() config.Directory {
	return config.Directory{URLs: []string{l.srv.LDAPSURL()}, CAFile: l.caFile,
		Bind: config.Bind{Method: "simple", Username: labUser}, Timeout: 5 * time.Second}
}

func mustNew(t *testing.T, cfg config.Directory, opts ...Option) *Directory {
	t.Helper()
	d, err := New(cfg, labPass, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDiscoverTargetsLab(t *testing.T) {
	l := startLab(t, nil)
	runCases(t, labBase, labDNS, func(tg config.Targets) config.Directory {
		c := l.config()
		c.Targets = tg
		return c
	}, labPass)
}

func TestDiscoverHostDetails(t *testing.T) {
	l := startLab(t, nil)
	ts := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	ft := ts.UnixNano()/100 + 116444736000000000
	if err := l.dir.Replace("CN=DC2,OU=Domain Controllers,"+labBase, "lastLogonTimestamp", strconv.FormatInt(ft, 10)); err != nil {
		t.Fatal(err)
	}
	res, err := mustNew(t, l.config()).Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(res.Hosts, func(h inventory.Host) bool { return h.Name == "dc2.lab.example" })
	if i < 0 {
		t.Fatalf("dc2 missing: %v", res.Hosts)
	}
	h := res.Hosts[i]
	if h.OS != "Windows Server 2022 Standard" || h.DN != "CN=DC2,OU=Domain Controllers,"+labBase || !h.LastLogon.Equal(ts) || !h.IsDC() {
		t.Fatalf("dc2: %+v", h)
	}
	if len(res.Warnings) != 0 {
		t.Fatalf("warnings: %q", res.Warnings)
	}
}

func TestDiscoverWarnings(t *testing.T) {
	l := startLab(t, nil)
	if err := l.dir.Add("CN=NONAME,OU=Domain Controllers,"+labBase, map[string][]string{
		"objectClass": {"computer"}, "sAMAccountName": {"NONAME$"}, "userAccountControl": {"532480"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.dir.Add("CN=BADNAME,OU=Domain Controllers,"+labBase, map[string][]string{
		"objectClass": {"computer"}, "dNSHostName": {"bad name;rm -rf.lab.example"}, "userAccountControl": {"532480"},
	}); err != nil {
		t.Fatal(err)
	}
	cfg := l.config()
	cfg.Targets = config.Targets{Groups: []string{"No Such Group"}, OUs: []string{"OU=Gone," + labBase}}
	res, err := mustNew(t, cfg).Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s := summarize(res.Hosts, labDNS); s != "dc1[dc] dc2[dc] dc3[dc] rodc1[rodc]" {
		t.Fatalf("hosts %s", s)
	}
	want := []string{"CN=NONAME,OU=Domain Controllers," + labBase + " (sAMAccountName NONAME$) has no dNSHostName",
		"invalid dNSHostName", `group "No Such Group" not found`, "ou OU=Gone," + labBase + ": no such object"}
	for _, w := range want {
		if !slices.ContainsFunc(res.Warnings, func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("no warning containing %q in %q", w, res.Warnings)
		}
	}
}

func TestTransportsAndBinds(t *testing.T) {
	l := startLab(t, nil)
	strict := startLab(t, func(o *ldapd.Options) { o.RequireTLSForSimpleBind = true })
	plainURL := l.srv.URL()
	tests := []struct {
		name    string
		mutate  func(*config.Directory)
		newErr  string // New must fail with this
		discErr string // Discover must fail with this
		is      error  // and wrap this
	}{
		{"ldaps simple", func(c *config.Directory) {}, "", "", nil},
		{"starttls simple (default for ldap://)", func(c *config.Directory) { c.URLs, c.CAFile = []string{strict.srv.URL()}, strict.caFile }, "", "", nil},
		{"ntlm over ldaps", func(c *config.Directory) { c.Bind = config.Bind{Method: "ntlm", Username: `LAB\svc-watch`} }, "", "", nil},
		{"plain ldap refused without allow_insecure", func(c *config.Directory) {
			c.URLs, c.StartTLS = []string{plainURL}, boolp(false)
		}, "allow_insecure", "", nil},
		{"plain ldap with allow_insecure", func(c *config.Directory) {
			c.URLs, c.StartTLS, c.AllowInsecure = []string{plainURL}, boolp(false), true
		}, "", "", nil},
		{"plain ldap to a DC requiring TLS", func(c *config.Directory) {
			c.URLs, c.StartTLS, c.AllowInsecure = []string{strict.srv.URL()}, boolp(false), true
			c.CAFile = strict.caFile
		}, "", "use ldaps:// or start_tls: true", nil},
		{"wrong password", func(c *config.Directory) { c.Bind.Username = "CN=Administrator,CN=Users," + labBase }, "", "check bind.username", ErrCredentials},
		{"untrusted certificate", func(c *config.Directory) { c.CAFile = "" }, "", "ca_file", ErrTLS},
		{"name not on certificate", func(c *config.Directory) { c.TLSServerName = "dc9.lab.example" }, "", "tls_server_name", ErrTLS},
		{"nothing listening", func(c *config.Directory) { c.URLs = []string{"ldaps://127.0.0.1:" + strconv.Itoa(closedPort(t))} }, "", "connect", ErrUnreachable},
		{"tls_server_name matches", func(c *config.Directory) { c.TLSServerName = "dc1.lab.example" }, "", "", nil},
		{"explicit base DN", func(c *config.Directory) { c.BaseDN = "OU=Domain Controllers," + labBase }, "", "", nil},
		{"missing base DN", func(c *config.Directory) { c.BaseDN = "OU=Nowhere," + labBase }, "", "base_dn", nil},
		{"bad url", func(c *config.Directory) { c.URLs = []string{"http://dc1"} }, "not an ldap://", "", nil},
		{"bad filter", func(c *config.Directory) { c.Targets.Filters = []string{"(cn=x"} }, "not a valid LDAP filter", "", nil},
		{"bad exclusion", func(c *config.Directory) { c.Targets.Exclude = []string{"(cn=x"} }, "not a valid LDAP filter", "", nil},
		{"unknown method", func(c *config.Directory) { c.Bind.Method = "digest" }, "bind.method", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := l.config()
			tt.mutate(&cfg)
			d, err := New(cfg, labPass, nil)
			if tt.newErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.newErr) {
					t.Fatalf("New: %v, want error containing %q", err, tt.newErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.Discover(t.Context())
			if tt.discErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.discErr) {
					t.Fatalf("Discover: %v, want error containing %q", err, tt.discErr)
				}
				if tt.is != nil && !errors.Is(err, tt.is) {
					t.Fatalf("Discover: %v does not wrap %v", err, tt.is)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := summarize(res.Hosts, labDNS); s != "dc1[dc] dc2[dc] dc3[dc] rodc1[rodc]" {
				t.Fatalf("hosts %s", s)
			}
		})
	}
	t.Run("wrong password for ntlm", func(t *testing.T) {
		cfg := l.config()
		cfg.Bind = config.Bind{Method: "ntlm", Username: `LAB\svc-watch`}
		d, err := New(cfg, "not-it", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Discover(t.Context()); err == nil || !strings.Contains(err.Error(), "check bind.username") {
			t.Fatalf("Discover: %v", err)
		}
	})
}

// fakeSRV answers one SRV name with fixed records.
type fakeSRV struct {
	name string
	srvs []*net.SRV
}

func (f fakeSRV) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if "_"+service+"._"+proto+"."+name != f.name {
		return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	return f.name, f.srvs, nil
}

func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestServerLocationAndFailover(t *testing.T) {
	l := startLab(t, nil)
	_, portStr, _ := net.SplitHostPort(strings.TrimPrefix(l.srv.URL(), "ldap://"))
	port, _ := strconv.Atoi(portStr)
	dead := closedPort(t)
	srv := fakeSRV{name: "_ldap._tcp.dc._msdcs.lab.example", srvs: []*net.SRV{
		{Target: "127.0.0.1.", Port: uint16(port), Priority: 10, Weight: 100},
		{Target: "127.0.0.1.", Port: uint16(dead), Priority: 0, Weight: 10},
		{Target: "localhost.", Port: uint16(dead), Priority: 0, Weight: 90},
	}}
	cfg := l.config()
	cfg.URLs, cfg.Domain, cfg.TLSServerName = nil, "lab.example", "dc1.lab.example"
	d := mustNew(t, cfg, WithResolver(srv))
	urls, err := d.servers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ldap://localhost:" + strconv.Itoa(dead), "ldap://127.0.0.1:" + strconv.Itoa(dead), "ldap://127.0.0.1:" + portStr}
	if !slices.Equal(urls, want) {
		t.Fatalf("SRV order %v, want %v", urls, want)
	}
	res, err := d.Discover(t.Context())
	if err != nil {
		t.Fatalf("failover through SRV: %v", err)
	}
	if len(res.Hosts) != 4 {
		t.Fatalf("hosts %v", res.Hosts)
	}

	cfg.Domain = "other.example"
	if _, err := mustNew(t, cfg, WithResolver(srv)).Discover(t.Context()); err == nil || !strings.Contains(err.Error(), "directory.urls") {
		t.Fatalf("SRV miss: %v", err)
	}

	// urls in order: a dead one, then the lab
	cfg = l.config()
	cfg.URLs = []string{"ldaps://127.0.0.1:" + strconv.Itoa(dead), l.srv.LDAPSURL()}
	if _, err := mustNew(t, cfg).Discover(t.Context()); err != nil {
		t.Fatalf("failover through urls: %v", err)
	}
	// a rejected password is not retried on the next DC
	other := startLab(t, nil)
	cfg.URLs = []string{l.srv.LDAPSURL(), other.srv.LDAPSURL()}
	cfg.CAFile = l.caFile
	d, err = New(cfg, "wrong", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Discover(t.Context())
	if err == nil || strings.Contains(err.Error(), other.srv.LDAPSURL()) || !errors.Is(err, ErrCredentials) {
		t.Fatalf("wrong password failover: %v", err)
	}
}

func TestPagedDiscovery(t *testing.T) {
	// The server refuses unpaged answers over 2 entries, like AD over MaxPageSize.
	l := startLab(t, func(o *ldapd.Options) { o.MaxPageSize = 2 })
	cfg := l.config()
	cfg.Targets = config.Targets{OUs: []string{"OU=Tier0," + labBase}, Groups: []string{"Tier0 Servers"}}
	cfg.PageSize = 2
	res, err := mustNew(t, cfg).Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s := summarize(res.Hosts, labDNS); s != "dc1[dc] dc2[dc] dc3[dc] rodc1[rodc] srv-app-01[group Tier0 Servers] srv-t0-01[group Tier0 Servers,ou OU=Tier0,DC=lab,DC=example] srv-t0-02[ou OU=Tier0,DC=lab,DC=example]" {
		t.Fatalf("hosts %s", s)
	}
	cfg.PageSize = 3 // the server caps pages at 2; still complete
	if res, err = mustNew(t, cfg).Discover(t.Context()); err != nil || len(res.Hosts) != 7 {
		t.Fatalf("page size over server max: %v %d", err, len(res.Hosts))
	}
}

func TestResolveSID(t *testing.T) {
	l := startLab(t, nil)
	sid := l.dir.DomainSID()
	// alice is a tier-0 admin through a nested custom group; bob is ordinary
	for _, o := range []struct {
		dn    string
		attrs map[string][]string
	}{
		{"CN=alice,CN=Users," + labBase, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {"alice"}, "objectSid": {sid + "-2001"}}},
		{"CN=bob,CN=Users," + labBase, map[string][]string{"objectClass": {"user"}, "sAMAccountName": {"bob"}, "objectSid": {sid + "-2002"}}},
		{"CN=PAW Admins,CN=Users," + labBase, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"PAW Admins"}, "member": {"CN=alice,CN=Users," + labBase}}},
		{"CN=Tier0 Operators,CN=Users," + labBase, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {"Tier0 Operators"}, "member": {"CN=PAW Admins,CN=Users," + labBase}}},
	} {
		if err := l.dir.Add(o.dn, o.attrs); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	cfg := l.config()
	cfg.Tier0Groups = []string{"Tier0 Operators"}
	cfg.SIDCacheTTL = time.Hour
	d := mustNew(t, cfg, WithClock(func() time.Time { return now }))
	tests := []struct {
		sid  string
		want inventory.Account
	}{
		{"S-1-5-18", inventory.Account{Name: `NT AUTHORITY\SYSTEM`, Privileged: true}},
		{"S-1-5-19", inventory.Account{Name: `NT AUTHORITY\LOCAL SERVICE`}},
		{"S-1-5-20", inventory.Account{Name: `NT AUTHORITY\NETWORK SERVICE`}},
		{"S-1-5-32-544", inventory.Account{Name: `BUILTIN\Administrators`, Privileged: true, Groups: []string{"Administrators"}}},
		{sid + "-500", inventory.Account{Name: `LAB\Administrator`, Privileged: true, Groups: []string{"Administrators", "Domain Admins", "Enterprise Admins"}}},
		{sid + "-2001", inventory.Account{Name: `LAB\alice`, Privileged: true, Groups: []string{"Tier0 Operators"}}},
		{sid + "-2002", inventory.Account{Name: `LAB\bob`}},
		{sid + "-512", inventory.Account{Name: `LAB\Domain Admins`, Privileged: true, Groups: []string{"Administrators"}}},
		{"S-1-5-21-1-2-3-500", inventory.Account{}}, // another domain or a local account
	}
	for _, tt := range tests {
		t.Run(tt.sid, func(t *testing.T) {
			got, err := d.ResolveSID(t.Context(), tt.sid)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.SID = tt.sid
			if got.SID != tt.want.SID || got.Name != tt.want.Name || got.Privileged != tt.want.Privileged || !slices.Equal(got.Groups, tt.want.Groups) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "S-1", "S-1-5-x", "alice", "S-2-5-18"} {
		if _, err := d.ResolveSID(t.Context(), bad); err == nil {
			t.Errorf("ResolveSID(%q) accepted", bad)
		}
	}

	// cached within the TTL, looked up again after it
	if err := l.dir.Delete("CN=bob,CN=Users," + labBase); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.ResolveSID(t.Context(), sid+"-2002"); got.Name != `LAB\bob` {
		t.Fatalf("within TTL: %+v", got)
	}
	now = now.Add(61 * time.Minute)
	if got, err := d.ResolveSID(t.Context(), sid+"-2002"); err != nil || got.Name != "" {
		t.Fatalf("after TTL: %+v %v", got, err)
	}
	// well-known SIDs need no server
	l.srv.Close()
	if got, err := d.ResolveSID(t.Context(), "S-1-5-18"); err != nil || got.Name != `NT AUTHORITY\SYSTEM` {
		t.Fatalf("offline well-known: %+v %v", got, err)
	}
	if _, err := d.ResolveSID(t.Context(), sid+"-2001"); err == nil {
		t.Fatal("resolution past the TTL with the server down did not fail")
	}
}

func TestScopeChangeLab(t *testing.T) {
	l := startLab(t, nil)
	d := mustNew(t, l.config())
	before, err := d.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dn := "CN=DC4,OU=Domain Controllers," + labBase
	if err := l.dir.Add(dn, map[string][]string{"objectClass": {"computer"}, "dNSHostName": {"dc4.lab.example"},
		"userAccountControl": {"532480"}, "operatingSystem": {"Windows Server 2025 Standard"}}); err != nil {
		t.Fatal(err)
	}
	after, err := d.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	fs := inventory.ScopeFindings(before.Hosts, after.Hosts, at)
	if len(fs) != 1 || fs[0].Kind != inventory.KindScope || fs[0].Host.Name != "dc4.lab.example" || !fs[0].Host.IsDC() ||
		fs[0].Detail != "entered the monitored set (dc)" {
		t.Fatalf("findings %+v", fs)
	}
	if again := inventory.ScopeFindings(before.Hosts, after.Hosts, at); again[0].ID != fs[0].ID {
		t.Fatal("finding ID not deterministic")
	}
	if err := l.dir.Delete(dn); err != nil {
		t.Fatal(err)
	}
	final, err := d.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fs = inventory.ScopeFindings(after.Hosts, final.Hosts, at)
	if len(fs) != 1 || fs[0].Detail != "left the monitored set (was dc)" {
		t.Fatalf("findings %+v", fs)
	}
}

func TestContextCancel(t *testing.T) {
	// a server that accepts and never answers: the bind must end with the context
	addr := testutil.ServeTCP(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	cfg := config.Directory{URLs: []string{"ldap://" + addr}, StartTLS: boolp(false), AllowInsecure: true,
		Bind: config.Bind{Method: "simple", Username: labUser}, Timeout: 30 * time.Second}
	d := mustNew(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := d.Discover(ctx); err == nil {
		t.Fatal("Discover against a silent server succeeded")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("Discover took %v after the context ended", el)
	}
}

func TestWithoutLDAP(t *testing.T) {
	cfg := config.Directory{Targets: config.Targets{Hosts: []string{"B.example.", "a.example", "192.0.2.10", "skip.example", "bad host"},
		Exclude: []string{"skip"}, Groups: []string{"Tier0"}}}
	d, err := New(cfg, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s := summarize(res.Hosts, labDNS); s != "192.0.2.10[static] a.example[static] b.example[static]" {
		t.Fatalf("hosts %s", s)
	}
	if len(res.Warnings) != 2 || !strings.Contains(res.Warnings[0], "targets.groups needs LDAP") || !strings.Contains(res.Warnings[1], "bad host") {
		t.Fatalf("warnings %q", res.Warnings)
	}
	acct, err := d.ResolveSID(t.Context(), "S-1-5-21-1-2-3-500")
	if err != nil || acct.SID != "S-1-5-21-1-2-3-500" || acct.Name != "" || acct.Privileged {
		t.Fatalf("domain SID without LDAP: %+v %v", acct, err)
	}
}

// AD text a computer's owner controls (its OS string, a name in a warning)
// reaches terminals and Slack: no escape sequences, bidi overrides or broken
// UTF-8 survive, and it stays short.
func TestDiscoverCleansHostileDirectoryText(t *testing.T) {
	l := startLab(t, nil)
	hostileOS := "Windows\x1b[2J\x1b]8;;http://x\x07 Server\u202e2022" + strings.Repeat("é", 300)
	if err := l.dir.Replace("CN=DC2,OU=Domain Controllers,"+labBase, "operatingSystem", hostileOS); err != nil {
		t.Fatal(err)
	}
	if err := l.dir.Add("CN=NONAME,OU=Domain Controllers,"+labBase, map[string][]string{
		"objectClass": {"computer"}, "sAMAccountName": {"EVIL\x1b[31m$"}, "userAccountControl": {"532480"},
	}); err != nil {
		t.Fatal(err)
	}
	res, err := mustNew(t, l.config()).Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(res.Hosts, func(h inventory.Host) bool { return h.Name == "dc2.lab.example" })
	if i < 0 {
		t.Fatalf("dc2 missing: %v", res.Hosts)
	}
	texts := append([]string{res.Hosts[i].OS}, res.Warnings...)
	for _, s := range texts {
		if strings.ContainsAny(s, "\x1b\x07\u202e") || !utf8.ValidString(s) {
			t.Errorf("unsafe text kept: %q", s)
		}
	}
	if os := res.Hosts[i].OS; len(os) > 256+len("…") || !strings.HasPrefix(os, "Windows?[2J?]8;;http://x? Server?2022") {
		t.Errorf("OS = %q", os)
	}
}

// A server that accepts StartTLS and then never completes the handshake
// must not hang discovery, whose context has no deadline: the handshake is
// bounded by directory.timeout.
func TestStartTLSHandshakeBounded(t *testing.T) {
	addr := testutil.ServeTCP(t, func(c net.Conn) {
		req, err := ber.ReadPacket(c)
		if err != nil || len(req.Children) < 1 {
			return
		}
		// ExtendedResponse: success, then silence where the ServerHello should be.
		resp := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAPMessage")
		resp.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, req.Children[0].Value, "id"))
		ext := ber.Encode(ber.ClassApplication, ber.TypeConstructed, ldap.ApplicationExtendedResponse, nil, "ExtendedResponse")
		ext.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, 0, "resultCode"))
		ext.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
		ext.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "diagnosticMessage"))
		resp.AppendChild(ext)
		if _, err := c.Write(resp.Bytes()); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c) // read the ClientHello, answer nothing
	})
	cfg := config.Directory{URLs: []string{"ldap://" + addr},
		Bind: config.Bind{Method: "simple", Username: labUser}, Timeout: 300 * time.Millisecond}
	d := mustNew(t, cfg)
	done := make(chan error, 1)
	go func() { _, err := d.Discover(context.Background()); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTLS) {
			t.Fatalf("err = %v, want ErrTLS", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Discover still waits for a TLS handshake the server never answers")
	}
}
