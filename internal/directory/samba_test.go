package directory

// Integration tests against the real Samba AD DC of ../shared/lab/samba-ad-lab.sh.
// They run when its environment is exported (scripts/samba-test.sh does it:
// `set -a; . $SAMBA_AD_DIR/env.sh; set +a`) and are skipped otherwise.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/svcwatch/svcwatch/internal/config"
	"github.com/svcwatch/svcwatch/internal/inventory"
	"github.com/svcwatch/svcwatch/internal/lab/ldapd"
)

type sambaEnv struct {
	ldapURL, ldapsURL, base, bindDN, bindUPN, pass string
	adminDN, adminPass, ca, tlsName, realm, domain string
	krb5                                           string
}

func samba(t *testing.T) sambaEnv {
	t.Helper()
	e := sambaEnv{
		ldapURL: os.Getenv("SAMBA_AD_LDAP_URL"), ldapsURL: os.Getenv("SAMBA_AD_LDAPS_URL"), base: os.Getenv("SAMBA_AD_BASE_DN"),
		bindDN: os.Getenv("SAMBA_AD_BIND_DN"), bindUPN: os.Getenv("SAMBA_AD_BIND_UPN"), pass: os.Getenv("SAMBA_AD_BIND_PASSWORD"),
		adminDN: os.Getenv("SAMBA_AD_ADMIN_DN"), adminPass: os.Getenv("SAMBA_AD_ADMIN_PASSWORD"), ca: os.Getenv("SAMBA_AD_CA_CERT"),
		tlsName: os.Getenv("SAMBA_AD_TLS_SERVER_NAME"), realm: os.Getenv("SAMBA_AD_REALM"), domain: os.Getenv("SAMBA_AD_DOMAIN"),
		krb5: os.Getenv("SAMBA_AD_KRB5_CONFIG"),
	}
	if e.ldapsURL == "" || e.base == "" || e.pass == "" {
		if os.Getenv("SVCWATCH_REQUIRE_SAMBA") == "1" {
			t.Fatal("SVCWATCH_REQUIRE_SAMBA=1 but the SAMBA_AD_* variables are not set")
		}
		t.Skip("Samba AD lab not running: run scripts/samba-test.sh (or source $SAMBA_AD_DIR/env.sh with set -a)")
	}
	return e
}

func (e sambaEnv) dns() string { return strings.ToLower(e.realm) }

func (e sambaEnv) config() config.Directory {
	return config.Directory{URLs: []string{e.ldapsURL}, CAFile: e.ca, Timeout: 10 * time.Second,
		Bind: config.Bind{Method: "simple", Username: e.bindDN}}
}

func TestSambaDiscoverTargets(t *testing.T) {
	e := samba(t)
	runCases(t, e.base, e.dns(), func(tg config.Targets) config.Directory {
		c := e.config()
		c.Targets = tg
		return c
	}, e.pass)
}

// TestSambaAndLabAgree runs the same discoveries against the real DC and the
// in-process ldapd seeded with ldapd.SeedSambaLab and compares host by host.
func TestSambaAndLabAgree(t *testing.T) {
	e := samba(t)
	dir := ldapd.NewDirectory(e.base)
	if err := ldapd.SeedSambaLab(dir); err != nil {
		t.Fatal(err)
	}
	srvTLS, ca := writeCA(t)
	srv, err := ldapd.Start(dir, ldapd.Options{TLS: srvTLS, Users: map[string]string{e.bindDN: e.pass}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tc := range discoveryCases {
		t.Run(tc.name, func(t *testing.T) {
			tg := expandTargets(tc.targets(e.base), e.base, e.dns())
			real := e.config()
			real.Targets = tg
			labCfg := real
			labCfg.URLs, labCfg.CAFile = []string{srv.LDAPSURL()}, ca
			var results [2]Result
			for i, cfg := range []config.Directory{real, labCfg} {
				d, err := New(cfg, e.pass, nil)
				if err != nil {
					t.Fatal(err)
				}
				if results[i], err = d.Discover(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			strip := func(hs []inventory.Host) []inventory.Host {
				out := slices.Clone(hs)
				for i := range out {
					out[i].LastLogon = time.Time{} // set by logons on the real DC only
				}
				return out
			}
			s, l := strip(results[0].Hosts), strip(results[1].Hosts)
			if !slices.EqualFunc(s, l, func(a, b inventory.Host) bool {
				return a.Name == b.Name && a.DN == b.DN && a.OS == b.OS && slices.Equal(a.Reasons, b.Reasons)
			}) {
				t.Fatalf("samba and ldapd disagree:\nsamba %+v\nldapd %+v", s, l)
			}
			if !slices.Equal(results[0].Warnings, results[1].Warnings) {
				t.Fatalf("warnings differ:\nsamba %q\nldapd %q", results[0].Warnings, results[1].Warnings)
			}
		})
	}
}

func TestSambaTransportsAndBinds(t *testing.T) {
	e := samba(t)
	tests := []struct {
		name   string
		mutate func(*config.Directory)
		errSub string
	}{
		{"ldaps simple bind by DN", func(c *config.Directory) {}, ""},
		{"starttls simple bind by UPN", func(c *config.Directory) {
			c.URLs, c.Bind.Username = []string{e.ldapURL}, e.bindUPN
		}, ""},
		{"ldaps simple bind DOMAIN\\user", func(c *config.Directory) { c.Bind.Username = e.domain + `\svc-watch` }, ""},
		{"plain ldap with allow_insecure", func(c *config.Directory) {
			c.URLs, c.StartTLS, c.AllowInsecure = []string{e.ldapURL}, boolp(false), true
		}, ""},
		{"kerberos over ldaps (SPN ldap/<ip>)", func(c *config.Directory) {
			c.Bind = config.Bind{Method: "kerberos", Username: "svc-watch", Realm: e.realm, KRB5Conf: e.krb5}
		}, ""},
		{"kerberos over starttls (SPN ldap/<fqdn>)", func(c *config.Directory) {
			c.URLs, c.TLSServerName = []string{e.ldapURL}, e.tlsName
			c.Bind = config.Bind{Method: "kerberos", Username: "svc-watch@" + e.realm, KRB5Conf: e.krb5}
		}, ""},
		{"kerberos wrong password", func(c *config.Directory) {
			c.Bind = config.Bind{Method: "kerberos", Username: "svc-watch", Realm: e.realm, KRB5Conf: e.krb5}
		}, "kerberos"},
		{"wrong password", func(c *config.Directory) { c.Bind.Username = e.adminDN }, "check bind.username"},
		{"ntlm is not supported by samba", func(c *config.Directory) {
			c.Bind = config.Bind{Method: "ntlm", Username: e.domain + `\svc-watch`}
		}, "does not accept NTLM"},
		{"untrusted CA", func(c *config.Directory) { c.CAFile = "" }, "ca_file"},
		{"name not on certificate", func(c *config.Directory) { c.TLSServerName = "dc9." + e.dns() }, "tls_server_name"},
		{"base DN from rootDSE vs explicit", func(c *config.Directory) { c.BaseDN = e.base }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := e.config()
			tt.mutate(&cfg)
			pass := e.pass
			if tt.name == "kerberos wrong password" {
				pass = "not-the-password"
			}
			d, err := New(cfg, pass, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.Discover(t.Context())
			if tt.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSub) {
					t.Fatalf("Discover: %v, want error containing %q", err, tt.errSub)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := summarize(res.Hosts, e.dns()); s != "dc1[dc] dc2[dc] dc3[dc] rodc1[rodc]" {
				t.Fatalf("hosts %s", s)
			}
		})
	}
}

func TestSambaPaging(t *testing.T) {
	e := samba(t)
	cfg := e.config()
	cfg.PageSize = 2
	cfg.Targets = config.Targets{Groups: []string{"Tier0 Servers"}, OUs: []string{"OU=Tier0," + e.base}, Filters: []string{"(objectCategory=computer)"}}
	res, err := mustNewPass(t, cfg, e.pass).Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// every enabled computer via the filter: 9 seeded and built-in minus the disabled one
	want := "dc1[dc,filter (objectCategory=computer)] dc2[dc,filter (objectCategory=computer)] dc3[dc,filter (objectCategory=computer)] rodc1[rodc,filter (objectCategory=computer)] " +
		"srv-app-01[group Tier0 Servers,filter (objectCategory=computer)] srv-app-02[filter (objectCategory=computer)] " +
		"srv-t0-01[group Tier0 Servers,ou OU=Tier0," + e.base + ",filter (objectCategory=computer)] srv-t0-02[ou OU=Tier0," + e.base + ",filter (objectCategory=computer)]"
	if s := summarize(res.Hosts, e.dns()); s != want {
		t.Fatalf("paged discovery:\n got %s\nwant %s", s, want)
	}
}

func mustNewPass(t *testing.T, cfg config.Directory, pass string) *Directory {
	t.Helper()
	d, err := New(cfg, pass, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sambaSID reads an account's objectSid straight from the DC.
func sambaSID(t *testing.T, e sambaEnv, sam string) string {
	t.Helper()
	c, err := ldap.DialURL(e.ldapsURL, ldap.DialWithTLSConfig(tlsFor(t, e.ca)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(e.bindDN, e.pass); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(ldap.NewSearchRequest(e.base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 10, false,
		"(sAMAccountName="+ldap.EscapeFilter(sam)+")", []string{"objectSid"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("objectSid of %s: %v", sam, err)
	}
	sid, ok := decodeSID(res.Entries[0].GetRawAttributeValue("objectSid"))
	if !ok {
		t.Fatalf("bad objectSid for %s", sam)
	}
	return sid
}

func TestSambaResolveSID(t *testing.T) {
	e := samba(t)
	admin := sambaSID(t, e, "Administrator")
	domainSID := admin[:strings.LastIndexByte(admin, '-')]
	cfg := e.config()
	cfg.Tier0Groups = []string{"Schema Admins"}
	d := mustNewPass(t, cfg, e.pass)
	tests := []struct {
		sid  string
		want inventory.Account
	}{
		{admin, inventory.Account{Name: e.domain + `\Administrator`, Privileged: true,
			Groups: []string{"Administrators", "Domain Admins", "Enterprise Admins", "Schema Admins"}}},
		{sambaSID(t, e, "svc-watch"), inventory.Account{Name: e.domain + `\svc-watch`}},
		{domainSID + "-512", inventory.Account{Name: e.domain + `\Domain Admins`, Privileged: true, Groups: []string{"Administrators"}}},
		{"S-1-5-32-544", inventory.Account{Name: `BUILTIN\Administrators`, Privileged: true, Groups: []string{"Administrators"}}},
		{"S-1-5-18", inventory.Account{Name: `NT AUTHORITY\SYSTEM`, Privileged: true}},
		{domainSID + "-99999", inventory.Account{}},
	}
	for _, tt := range tests {
		t.Run(tt.sid, func(t *testing.T) {
			got, err := d.ResolveSID(t.Context(), tt.sid)
			if err != nil {
				t.Fatal(err)
			}
			if got.SID != tt.sid || got.Name != tt.want.Name || got.Privileged != tt.want.Privileged || !slices.Equal(got.Groups, tt.want.Groups) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// ldapmodify runs the OpenLDAP client as the lab's Administrator with the
// password in a private file (-y), never on the command line.
func ldapmodify(t *testing.T, e sambaEnv, ldif string, tolerate ...string) {
	t.Helper()
	if _, err := exec.LookPath("ldapmodify"); err != nil {
		t.Skip("ldapmodify not installed (apt-get install ldap-utils)")
	}
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte(e.adminPass), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // also runs from t.Cleanup
	defer cancel()
	cmd := exec.CommandContext(ctx, "ldapmodify", "-x", "-H", e.ldapsURL, "-D", e.adminDN, "-y", pw)
	cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+e.ca, "LDAPTLS_REQCERT=demand", "LDAPCONF=/dev/null", "LDAPRC=/dev/null")
	cmd.Stdin = strings.NewReader(ldif)
	out, err := cmd.CombinedOutput()
	if err != nil {
		for _, s := range tolerate {
			if strings.Contains(string(out), s) {
				return
			}
		}
		t.Fatalf("ldapmodify: %v: %s", err, out)
	}
}

func TestSambaScopeChange(t *testing.T) {
	e := samba(t)
	dn := "CN=DC4,OU=Domain Controllers," + e.base
	del := "dn: " + dn + "\nchangetype: delete\n"
	ldapmodify(t, e, del, "No such object") // left over from an interrupted run
	d := mustNewPass(t, e.config(), e.pass)
	before, err := d.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ldapmodify(t, e, "dn: "+dn+"\nchangetype: add\nobjectClass: computer\nsAMAccountName: DC4$\ndNSHostName: dc4."+e.dns()+
		"\nuserAccountControl: 532480\noperatingSystem: Windows Server 2025 Standard\n")
	t.Cleanup(func() { ldapmodify(t, e, del, "No such object") })
	after, err := d.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	fs := inventory.ScopeFindings(before.Hosts, after.Hosts, time.Now())
	if len(fs) != 1 || fs[0].Kind != inventory.KindScope || fs[0].Host.Name != "dc4."+e.dns() ||
		fs[0].Host.OS != "Windows Server 2025 Standard" || fs[0].Detail != "entered the monitored set (dc)" {
		t.Fatalf("scope findings %+v", fs)
	}
	ldapmodify(t, e, del)
	final, err := d.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if fs := inventory.ScopeFindings(after.Hosts, final.Hosts, time.Now()); len(fs) != 1 || !strings.Contains(fs[0].Detail, "left the monitored set") {
		t.Fatalf("after delete: %+v", fs)
	}
}

func tlsFor(t *testing.T, caFile string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// TestSambaKerberosKeytab binds with a keytab holding svc-watch's keys (made
// from its password and current key version, as ktpass or
// samba-tool domain exportkeytab would) and no password.
func TestSambaKerberosKeytab(t *testing.T) {
	e := samba(t)
	c, err := ldap.DialURL(e.ldapsURL, ldap.DialWithTLSConfig(tlsFor(t, e.ca)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetTimeout(10 * time.Second)
	if err := c.Bind(e.bindDN, e.pass); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(ldap.NewSearchRequest(e.bindDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 10, false,
		"(objectClass=*)", []string{"msDS-KeyVersionNumber"}, nil))
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read msDS-KeyVersionNumber: %v", err)
	}
	kvno, err := strconv.Atoi(res.Entries[0].GetAttributeValue("msDS-KeyVersionNumber"))
	if err != nil {
		t.Fatalf("msDS-KeyVersionNumber: %v", err)
	}
	kt := keytab.New()
	for _, etype := range []int32{18, 17} { // aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96
		if err := kt.AddEntry("svc-watch", e.realm, e.pass, time.Now(), uint8(kvno), etype); err != nil {
			t.Fatal(err)
		}
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "svc-watch.keytab")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := e.config()
	cfg.Bind = config.Bind{Method: "kerberos", Username: "svc-watch", Realm: e.realm, KRB5Conf: e.krb5, KeytabFile: path}
	res2, err := mustNewPass(t, cfg, "").Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s := summarize(res2.Hosts, e.dns()); s != "dc1[dc] dc2[dc] dc3[dc] rodc1[rodc]" {
		t.Fatalf("hosts %s", s)
	}
}

// TestSambaFromConfigFile goes the way svcwatch does: YAML through
// config.Parse (defaults, validation) and ReadSecrets, then New and Discover.
func TestSambaFromConfigFile(t *testing.T) {
	e := samba(t)
	t.Setenv("TEST_WINRM_PASSWORD", "unused")
	t.Setenv("TEST_SLACK_WEBHOOK", "https://hooks.slack.invalid/x")
	y := strings.Join([]string{
		"directory:",
		"  urls: [" + e.ldapURL + "]", // start_tls defaults to true for ldap://
		"  ca_file: " + e.ca,
		"  page_size: 2",
		"  bind: {method: simple, username: " + e.bindUPN + ", password_env: SAMBA_AD_BIND_PASSWORD}",
		"  targets:",
		"    groups: [Tier0 Servers]",
		"    exclude: [rodc1]",
		"winrm: {username: 'LAB\\svc', password_env: TEST_WINRM_PASSWORD}",
		"slack: {webhook_url_env: TEST_SLACK_WEBHOOK}",
	}, "\n")
	cfg, err := config.Parse([]byte(y), "samba.yaml")
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := cfg.ReadSecrets()
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg.Directory, secrets.LDAPPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if s := summarize(res.Hosts, e.dns()); s != "dc1[dc] dc2[dc] dc3[dc] srv-app-01[group Tier0 Servers] srv-t0-01[group Tier0 Servers]" {
		t.Fatalf("hosts %s", s)
	}
}
