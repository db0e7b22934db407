// Package lab runs a simulated Windows domain on loopback for tests,
// benchmarks and `svcwatch lab`: domain controllers and member servers
// (package winhost) behind a real WS-Management server (package wsman) that
// authenticates like Windows (package wsauth: NTLM with sealing on http,
// NTLM or Basic on https), an LDAP directory holding their computer objects
// (package ldapd) and a Slack Web API sink (package slacksink). Config
// returns a svcwatch configuration pointing at all of it; Handler is the
// control API of DESIGN.md.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/svcwatch/svcwatch/internal/lab/ldapd"
	"github.com/svcwatch/svcwatch/internal/lab/slacksink"
	"github.com/svcwatch/svcwatch/internal/lab/winhost"
	"github.com/svcwatch/svcwatch/internal/lab/wsauth"
	"github.com/svcwatch/svcwatch/internal/lab/wsman"
)

// Defaults for Options.
const (
	DefaultDomain     = "lab.example"
	DefaultDCs        = 3
	DefaultMembers    = 2
	DefaultUser       = "svcwatch" // the poller's account (LAB\svcwatch, svcwatch@lab.example)
	AttackerUser      = winhost.LabUserName
	OSDomainControl   = "Windows Server 2022 Datacenter"
	OSMemberServer    = "Windows Server 2019 Standard"
	defaultPoll       = 5 * time.Second
	defaultDiscovery  = time.Minute
	defaultWinRMWait  = 20 * time.Second
	defaultLookback   = time.Hour
	serverShutdownMax = 5 * time.Second
	firstComputerRID  = 2000 // seeded accounts use 500..1104
)

// Roles of computer objects (userAccountControl values AD writes).
const (
	RoleDC     = "dc"     // writable DC: SERVER_TRUST_ACCOUNT | TRUSTED_FOR_DELEGATION = 532480
	RoleRODC   = "rodc"   // read-only DC: 83890176
	RoleMember = "member" // WORKSTATION_TRUST_ACCOUNT = 4096

	uacDC     = "532480"
	uacRODC   = "83890176"
	uacMember = "4096"
)

// Options configures a lab. The zero value is 3 DCs and 2 member servers in
// lab.example, polled over https with NTLM.
type Options struct {
	Domain  string // DNS domain; default lab.example (realm LAB.EXAMPLE, NetBIOS LAB)
	DCs     int    // writable DCs dc01..; default 3 (when Hosts is 0)
	Members int    // member servers srv01..; default 2 (when Hosts is 0)
	RODCs   int    // read-only DCs rodc01..; default 0
	Hosts   int    // total hosts when > 0: min(3, Hosts) DCs and the rest member servers
	// Small gives every host the ~50-entry inventory (fast tests) instead of ~260.
	Small bool
	// Scheme is what Config polls over: "https" (default) or "http" (NTLM sealing).
	Scheme string
	// Auth is Config's winrm.auth: "ntlm" (default), "basic" or "certificate"
	// (both https only; the lab CA issues the client certificate).
	Auth string
	// Latency delays every WS-Management request (the benchmark uses 5 ms).
	Latency time.Duration
	// PollInterval, DiscoveryInterval and Lookback go into Config
	// (defaults 5s, 1m, 1h: a demo sees results quickly).
	PollInterval, DiscoveryInterval, Lookback time.Duration
	// SlowDelay is the hosts' "slow" fault delay (default winhost's 2 minutes).
	SlowDelay time.Duration
	// Dir holds the CA, the secrets and the state file; default a new temp
	// dir, removed by Close.
	Dir string
	// Now is the hosts' clock; default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Ready is called by Serve once the lab and its control API listen.
	Ready func(l *Lab, controlAddr string)
}

// Lab is a running simulated domain. Its methods are safe for concurrent use.
type Lab struct {
	opts      Options
	dir       string
	ownDir    bool
	realm     string
	netbios   string
	baseDN    string
	password  string // LAB\svcwatch's password (WinRM and LDAP)
	caFile    string
	authority *authority

	ws        *wsman.Server
	auth      *wsauth.Auth
	https     *http.Server
	http      *http.Server
	httpsAddr string
	httpAddr  string
	ldap      *ldapd.Server
	directory *ldapd.Directory
	slack     *slacksink.Sink

	mu        sync.RWMutex
	hosts     map[string]*winhost.Host // by DNS name
	order     []string
	computers map[string]string // DNS name -> DN of the computer object in the directory
	nextRID   int               // RIDs for computer objects, clear of the seeded accounts'

	closeOnce sync.Once
	closeErr  error
}

// Start runs a lab until Close. ctx bounds the start only.
func Start(ctx context.Context, opts Options) (_ *Lab, err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	opts = withDefaults(opts)
	l := &Lab{
		opts:    opts,
		realm:   strings.ToUpper(opts.Domain),
		netbios: strings.ToUpper(strings.Split(opts.Domain, ".")[0]),
		baseDN:  "DC=" + strings.Join(strings.Split(opts.Domain, "."), ",DC="),
		hosts:   map[string]*winhost.Host{},

		computers: map[string]string{},
		nextRID:   firstComputerRID,
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if err := l.prepareDir(); err != nil {
		return nil, err
	}
	if l.authority, err = newAuthority(opts.Domain, time.Now()); err != nil {
		return nil, err
	}
	if err := l.writeSecrets(); err != nil {
		return nil, err
	}
	if err := l.startDirectory(); err != nil {
		return nil, err
	}
	dcs, members := opts.DCs, opts.Members
	if opts.Hosts > 0 {
		dcs = min(DefaultDCs, opts.Hosts)
		members = opts.Hosts - dcs
	}
	for i := 1; i <= dcs; i++ {
		if _, err := l.AddComputer(Computer{Name: fmt.Sprintf("dc%02d", i), Role: RoleDC}); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= opts.RODCs; i++ {
		if _, err := l.AddComputer(Computer{Name: fmt.Sprintf("rodc%02d", i), Role: RoleRODC}); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= members; i++ {
		if _, err := l.AddComputer(Computer{Name: fmt.Sprintf("srv%02d", i), Role: RoleMember}); err != nil {
			return nil, err
		}
	}
	if err := l.startWSMan(); err != nil {
		return nil, err
	}
	if l.slack, err = slacksink.Start(); err != nil {
		return nil, fmt.Errorf("lab: slack sink: %w", err)
	}
	l.opts.Logger.Info("lab started", "domain", opts.Domain, "hosts", len(l.order),
		"https", l.httpsAddr, "http", l.httpAddr, "ldaps", l.ldap.LDAPSURL(), "slack", l.slack.URL())
	return l, nil
}

func withDefaults(o Options) Options {
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	o.Domain = strings.ToLower(o.Domain)
	if o.Hosts == 0 && o.DCs == 0 && o.Members == 0 {
		o.DCs, o.Members = DefaultDCs, DefaultMembers
	}
	if o.Scheme == "" {
		o.Scheme = "https"
	}
	if o.Auth == "" {
		o.Auth = "ntlm"
	}
	if o.PollInterval <= 0 {
		o.PollInterval = defaultPoll
	}
	if o.DiscoveryInterval <= 0 {
		o.DiscoveryInterval = defaultDiscovery
	}
	if o.Lookback <= 0 {
		o.Lookback = defaultLookback
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (l *Lab) prepareDir() error {
	if l.opts.Dir != "" {
		l.dir = l.opts.Dir
		return os.MkdirAll(l.dir, 0o700)
	}
	dir, err := os.MkdirTemp("", "svcwatch-lab-")
	if err != nil {
		return fmt.Errorf("lab: temp dir: %w", err)
	}
	l.dir, l.ownDir = dir, true
	return nil
}

// Secret files the configuration references (0600 in the lab's dir).
const (
	passwordFileName   = "winrm-password"
	ldapPasswordName   = "ldap-password"
	slackTokenFileName = "slack-token"
	caFileName         = "ca.pem"
	clientCertName     = "client.pem"
	clientKeyName      = "client-key.pem"
)

func (l *Lab) writeSecrets() error {
	b := make([]byte, 12)
	rand.Read(b)
	l.password = "Lab-" + hex.EncodeToString(b) + "!"
	l.caFile = filepath.Join(l.dir, caFileName)
	certPEM, keyPEM, err := l.authority.clientCert(DefaultUser, time.Now())
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{
		passwordFileName: []byte(l.password),
		ldapPasswordName: []byte(l.password),
		caFileName:       l.authority.caPEM,
		clientCertName:   certPEM,
		clientKeyName:    keyPEM,
	} {
		if err := os.WriteFile(filepath.Join(l.dir, name), data, 0o600); err != nil {
			return fmt.Errorf("lab: write %s: %w", name, err)
		}
	}
	return nil
}

// startDirectory seeds the domain's skeleton (containers, the privileged
// groups, the poller's bind account, the account behind the attacks) and
// starts LDAP with StartTLS and LDAPS.
func (l *Lab) startDirectory() error {
	d := ldapd.NewDirectory(l.baseDN)
	b, sid := l.baseDN, d.DomainSID()
	type obj struct {
		dn    string
		attrs map[string][]string
	}
	user := func(cn, rid, uac string) obj {
		o := obj{"CN=" + cn + ",CN=Users," + b, map[string][]string{
			"objectClass": {"user"}, "sAMAccountName": {cn}, "userAccountControl": {uac},
			"userPrincipalName": {cn + "@" + l.opts.Domain},
		}}
		if rid != "" {
			o.attrs["objectSid"] = []string{sid + "-" + rid}
		}
		return o
	}
	group := func(dn, sam, objSID, gtype string) obj {
		return obj{dn, map[string][]string{"objectClass": {"group"}, "sAMAccountName": {sam}, "groupType": {gtype}, "objectSid": {objSID}}}
	}
	for _, o := range []obj{
		{"CN=Users," + b, map[string][]string{"objectClass": {"container"}}},
		{"CN=Computers," + b, map[string][]string{"objectClass": {"container"}}},
		{"CN=Builtin," + b, map[string][]string{"objectClass": {"builtinDomain"}}},
		{"OU=Domain Controllers," + b, map[string][]string{"objectClass": {"organizationalUnit"}}},
		{"OU=Tier0," + b, map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {"Tier0"}}},
		user("Administrator", "500", "512"),
		user(DefaultUser, "1103", "66048"),
		user(AttackerUser, "1104", "512"),
		group("CN=Domain Admins,CN=Users,"+b, "Domain Admins", sid+"-512", "-2147483646"),
		group("CN=Enterprise Admins,CN=Users,"+b, "Enterprise Admins", sid+"-519", "-2147483640"),
		group("CN=Schema Admins,CN=Users,"+b, "Schema Admins", sid+"-518", "-2147483640"),
		group("CN=Administrators,CN=Builtin,"+b, "Administrators", "S-1-5-32-544", "-2147483643"),
		group("CN=Remote Management Users,CN=Builtin,"+b, "Remote Management Users", "S-1-5-32-580", "-2147483643"),
		group("CN=Event Log Readers,CN=Builtin,"+b, "Event Log Readers", "S-1-5-32-573", "-2147483643"),
	} {
		if err := d.Add(o.dn, o.attrs); err != nil {
			return fmt.Errorf("lab: seed directory: %w", err)
		}
	}
	for _, m := range [][2]string{
		{"CN=Domain Admins,CN=Users,", "CN=Administrator,CN=Users,"},
		{"CN=Administrators,CN=Builtin,", "CN=Domain Admins,CN=Users,"},
		{"CN=Remote Management Users,CN=Builtin,", "CN=" + DefaultUser + ",CN=Users,"},
		{"CN=Event Log Readers,CN=Builtin,", "CN=" + DefaultUser + ",CN=Users,"},
	} {
		if err := d.AddValues(m[0]+b, "member", m[1]+b); err != nil {
			return fmt.Errorf("lab: seed directory: %w", err)
		}
	}
	srv, err := ldapd.Start(d, ldapd.Options{
		TLS:         l.authority.serverTLS(),
		Users:       map[string]string{DefaultUser + "@" + l.opts.Domain: l.password},
		DNSHostName: "dc01." + l.opts.Domain,
	})
	if err != nil {
		return fmt.Errorf("lab: ldap: %w", err)
	}
	l.ldap, l.directory = srv, d
	return nil
}

func (l *Lab) startWSMan() error {
	l.ws = wsman.NewServer(wsman.ResolverFunc(l.Lookup),
		wsman.WithLatency(l.opts.Latency),
		wsman.WithUser(func(r *http.Request) string { return wsauth.User(r.Context()) }))
	l.auth = wsauth.New(wsauth.Options{
		Users:  map[string]string{l.netbios + `\` + DefaultUser: l.password},
		Domain: l.netbios, DNSDomain: l.opts.Domain, ServerName: "DC01",
		Basic: true, RequireSealing: true, Logger: l.opts.Logger,
		Certificates: map[string]string{DefaultUser: l.netbios + `\` + DefaultUser},
	})
	handler := l.ws.Front(l.auth.Wrap(l.ws))

	httpsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("lab: https listener: %w", err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		httpsLn.Close()
		return fmt.Errorf("lab: http listener: %w", err)
	}
	l.https = &http.Server{Handler: handler, TLSConfig: l.authority.serverTLS(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(l.opts.Logger.Handler(), slog.LevelDebug)}
	l.http = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(l.opts.Logger.Handler(), slog.LevelDebug)}
	l.auth.Configure(l.https)
	l.auth.Configure(l.http)
	l.httpsAddr, l.httpAddr = httpsLn.Addr().String(), httpLn.Addr().String()
	go l.https.ServeTLS(httpsLn, "", "")
	go l.http.Serve(httpLn)
	return nil
}

// Close stops every server and removes the lab's temp dir.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		if l.ws != nil {
			l.ws.Close() // end running commands first so that waiting Receives answer
		}
		for _, s := range []*http.Server{l.https, l.http} {
			if s != nil {
				ctx, cancel := context.WithTimeout(context.Background(), serverShutdownMax)
				if err := s.Shutdown(ctx); err != nil {
					s.Close()
				}
				cancel()
			}
		}
		if l.ldap != nil {
			errs = append(errs, l.ldap.Close())
		}
		if l.slack != nil {
			errs = append(errs, l.slack.Close())
		}
		if l.ownDir {
			errs = append(errs, os.RemoveAll(l.dir))
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// Computer is a computer object to add to the domain (and a host to simulate).
type Computer struct {
	Name string `json:"name"`           // short name ("dc04") or DNS name ("dc04.lab.example")
	Role string `json:"role,omitempty"` // dc | rodc | member (default member)
	OS   string `json:"os,omitempty"`   // operatingSystem; default by role
}

// AddComputer adds a computer object to the directory and a simulated host
// for it (a new DC being promoted, a server joining). It returns the host.
func (l *Lab) AddComputer(c Computer) (*winhost.Host, error) {
	short, fqdn, err := l.names(c.Name)
	if err != nil {
		return nil, err
	}
	if c.Role == "" {
		c.Role = RoleMember
	}
	uac, parent, role := uacMember, "OU=Tier0,", winhost.RoleMember
	switch c.Role {
	case RoleDC:
		uac, parent, role = uacDC, "OU=Domain Controllers,", winhost.RoleDC
	case RoleRODC:
		uac, parent, role = uacRODC, "OU=Domain Controllers,", winhost.RoleDC
	case RoleMember:
	default:
		return nil, fmt.Errorf("lab: computer %s: unknown role %q (want dc, rodc or member)", short, c.Role)
	}
	if c.OS == "" {
		c.OS = OSMemberServer
		if role == winhost.RoleDC {
			c.OS = OSDomainControl
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	dn := "CN=" + strings.ToUpper(short) + "," + parent + l.baseDN
	l.nextRID++
	if err := l.directory.Add(dn, map[string][]string{
		"objectSid":          {fmt.Sprintf("%s-%d", l.directory.DomainSID(), l.nextRID)},
		"objectClass":        {"computer"},
		"sAMAccountName":     {strings.ToUpper(short) + "$"},
		"dNSHostName":        {fqdn},
		"userAccountControl": {uac},
		"operatingSystem":    {c.OS},
	}); err != nil {
		return nil, fmt.Errorf("lab: add computer %s: %w", fqdn, err)
	}
	l.computers[fqdn] = dn
	h, ok := l.hosts[fqdn]
	if !ok {
		h = winhost.New(fqdn, winhost.Options{
			Role: role, OS: c.OS, Small: l.opts.Small, Domain: l.netbios,
			DomainSID: l.directory.DomainSID(), Now: l.opts.Now, SlowDelay: l.opts.SlowDelay,
		})
		l.hosts[fqdn] = h
		l.order = append(l.order, fqdn)
	}
	return h, nil
}

// RemoveComputer deletes a computer object from the directory (a DC
// demoted, a server retired). The simulated host keeps answering WinRM.
func (l *Lab) RemoveComputer(name string) error {
	_, fqdn, err := l.names(name)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	dn := l.computers[fqdn]
	if dn == "" {
		return fmt.Errorf("lab: remove computer %s: %w", fqdn, ldapd.ErrNotFound)
	}
	if err := l.directory.Delete(dn); err != nil {
		return fmt.Errorf("lab: remove computer %s: %w", fqdn, err)
	}
	delete(l.computers, fqdn)
	return nil
}

// InDirectory reports whether the host has a computer object.
func (l *Lab) InDirectory(name string) bool {
	_, fqdn, err := l.names(name)
	if err != nil {
		return false
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.computers[fqdn] != ""
}

// names validates a host name and returns its short and DNS forms.
func (l *Lab) names(name string) (short, fqdn string, err error) {
	name = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
	short, _, _ = strings.Cut(name, ".")
	if short == "" || len(short) > 15 || strings.Trim(short, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return "", "", fmt.Errorf("lab: %q is not a computer name (letters, digits and -, at most 15)", name)
	}
	if strings.Contains(name, ".") && name != short+"."+l.opts.Domain {
		return "", "", fmt.Errorf("lab: %q is not in the lab's domain %s", name, l.opts.Domain)
	}
	return short, short + "." + l.opts.Domain, nil
}

// Lookup finds a host by DNS name or short name (case-insensitive); it is
// the WS-Management server's resolver.
func (l *Lab) Lookup(name string) (*winhost.Host, bool) {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if !strings.Contains(name, ".") {
		name += "." + l.opts.Domain
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	h, ok := l.hosts[name]
	return h, ok
}

// Host is Lookup without the flag, for tests: nil when unknown.
func (l *Lab) Host(name string) *winhost.Host {
	h, _ := l.Lookup(name)
	return h
}

// Hosts returns every simulated host in creation order.
func (l *Lab) Hosts() []*winhost.Host {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]*winhost.Host, 0, len(l.order))
	for _, n := range l.order {
		out = append(out, l.hosts[n])
	}
	return out
}

// HostNames returns the DNS names of every host, sorted.
func (l *Lab) HostNames() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	names := slices.Clone(l.order)
	slices.Sort(names)
	return names
}

// Slack is the Slack sink.
func (l *Lab) Slack() *slacksink.Sink { return l.slack }

// WSMan is the WS-Management server (traffic counters per host).
func (l *Lab) WSMan() *wsman.Server { return l.ws }

// Directory is the LDAP directory.
func (l *Lab) Directory() *ldapd.Directory { return l.directory }

// HTTPSAddr and HTTPAddr are the WS-Management listeners (127.0.0.1:port).
func (l *Lab) HTTPSAddr() string { return l.httpsAddr }

// HTTPAddr is the plain-HTTP listener, which requires NTLM sealing.
func (l *Lab) HTTPAddr() string { return l.httpAddr }

// LDAPURL is the ldap:// URL (StartTLS available); LDAPSURL the ldaps:// one.
func (l *Lab) LDAPURL() string { return l.ldap.URL() }

// LDAPSURL is the ldaps:// URL of the directory.
func (l *Lab) LDAPSURL() string { return l.ldap.LDAPSURL() }

// CAFile is the PEM file of the lab's certificate authority.
func (l *Lab) CAFile() string { return l.caFile }

// CAPEM is the lab CA certificate.
func (l *Lab) CAPEM() []byte { return slices.Clone(l.authority.caPEM) }

// Dir is the directory holding the lab's files.
func (l *Lab) Dir() string { return l.dir }

// Username is the poller's account as WinRM sees it (LAB\svcwatch).
func (l *Lab) Username() string { return l.netbios + `\` + DefaultUser }

// Password is the poller's password (also in the secret files Config names).
func (l *Lab) Password() string { return l.password }

// BaseDN is the domain's naming context (DC=lab,DC=example).
func (l *Lab) BaseDN() string { return l.baseDN }
